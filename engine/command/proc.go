package command

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// New returns a command that runs argv with exactly the environment env
// (KEY=VALUE entries; see Env), in its own process group, killed with
// its whole group when ctx ends, and killed by the kernel when coffer
// dies (parent-death signal), so that no loader or dump outlives the
// process that feeds or reads it.
//
// Nothing of coffer's own environment reaches the child unless the
// caller put it in env: no identity paths, no repository credentials.
func New(ctx context.Context, env []string, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would mean "inherit everything"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// baseVars are the variables every child gets from coffer's environment
// when set: where programs are, the locale and the time zone, and where
// temporary files go. None of them is a secret.
var baseVars = []string{"PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"}

// Env is a minimal environment for a child: baseVars from coffer's
// environment, the named variables when set (e.g. PGPASSWORD for a
// PostgreSQL client, which needs it), and extra KEY=VALUE entries, which
// win over both.
func Env(pass []string, extra ...string) []string {
	var env []string
	seen := map[string]bool{}
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		seen[k] = true
	}
	for _, k := range append(append([]string(nil), baseVars...), pass...) {
		if seen[k] {
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
			seen[k] = true
		}
	}
	if _, ok := os.LookupEnv("PATH"); !ok && !seen["PATH"] {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	return append(env, extra...)
}

// secretPrefixes start the names of coffer's own secrets and of the
// credentials it holds: a user's command (backup --exec) inherits the
// rest of the environment, but never these.
var secretPrefixes = []string{"COFFER_", "AWS_", "AGE_", "MINIO_", "PGPASSWORD", "PGPASSFILE", "MYSQL_PWD"}

// UserEnv is coffer's environment without its secrets, for a command the
// user wrote (backup --exec): it may need the user's variables, never
// coffer's keys or storage credentials.
func UserEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		secret := false
		for _, p := range secretPrefixes {
			if strings.HasPrefix(k, p) {
				secret = true
			}
		}
		if !secret {
			env = append(env, e)
		}
	}
	return env
}

// SecretPipe returns the read end of a pipe that already holds s, for a
// child's ExtraFiles: the child reads the secret from /dev/fd/N, and no
// file, command line or environment value holds it, not even after
// kill -9. s must fit in a pipe's buffer without a reader (4 KiB); the
// caller closes the read end once the child has started.
func SecretPipe(s string) (*os.File, error) {
	if len(s) > 4096 {
		return nil, fmt.Errorf("a secret of %d bytes is longer than a pipe holds (4096)", len(s))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = pw.WriteString(s)
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		pr.Close()
		return nil, err
	}
	return pr, nil
}
