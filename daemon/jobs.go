package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/engine/command"
)

// runner runs coffer commands as child processes: the same code paths,
// audit records and error messages as an operator's, and a failure or crash
// of one job cannot take the daemon down. Secrets reach children through
// their environment or a pipe, never their command line; each child's
// environment is built from nothing, so the daemon's own (whatever the
// service manager or a shell put there) does not reach it.
type runner struct {
	exe string
	env []string // the repository settings every child gets
	// identity holds the variables of the operator identity, given only
	// to the jobs that decrypt (drills, check --read-data); passphrase is
	// its passphrase read from identity_passphrase_env, given through a
	// pipe (COFFER_IDENTITY_PASSPHRASE_FILE=/dev/fd/3).
	identity   []string
	passphrase string
}

// passVars are the variables of the daemon's environment that every
// child gets when set, besides command.Env's PATH, locale, TZ and TMPDIR:
// where its home and cache are (the index cache, ~/.pgpass), and the TLS
// roots for S3.
var passVars = []string{"HOME", "USER", "LOGNAME", "XDG_CACHE_HOME", "COFFER_CACHE_DIR", "PGPASSFILE", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// passphraseFD is the descriptor a child reads the identity's passphrase
// from: the first of cmd.ExtraFiles.
const passphraseFD = 3

// newRunner turns the config's repository section into coffer's
// environment.
func newRunner(exe string, c *config.Config) (*runner, error) {
	r := c.Repository
	run := &runner{exe: exe, env: []string{"COFFER_REPO=" + r.URL}}
	set := func(env *[]string, name, value string) {
		if value != "" {
			*env = append(*env, name+"="+value)
		}
	}
	set(&run.env, "COFFER_S3_ENDPOINT", r.S3Endpoint)
	set(&run.env, "AWS_REGION", r.S3Region)
	set(&run.env, "COFFER_WRITER_KEY_FILE", r.WriterKeyFile)
	set(&run.env, "COFFER_WRITER_FINGERPRINT", r.WriterFingerprint)
	set(&run.identity, "COFFER_IDENTITY_FILE", r.IdentityFile)
	set(&run.identity, "COFFER_IDENTITY_PASSPHRASE_FILE", r.IdentityPassphraseFile)
	var err error
	run.env, err = secretEnv(run.env, envSecret{"AWS_ACCESS_KEY_ID", r.AccessKeyID()}, envSecret{"AWS_SECRET_ACCESS_KEY", r.SecretAccessKey()})
	if err != nil {
		return nil, err
	}
	if r.IdentityPassphraseEnv != "" {
		v, err := r.IdentityPassphrase().Read(os.LookupEnv)
		if err != nil {
			return nil, err
		}
		run.passphrase = v
	}
	return run, nil
}

// envSecret is an environment variable of a child and the secret it gets.
type envSecret struct {
	name   string
	secret config.Secret
}

// secretEnv appends NAME=value to env for each secret that is set.
func secretEnv(env []string, secrets ...envSecret) ([]string, error) {
	for _, s := range secrets {
		if !s.secret.IsSet() {
			continue
		}
		v, err := s.secret.Read(os.LookupEnv)
		if err != nil {
			return nil, err
		}
		env = append(env, s.name+"="+v)
	}
	return env, nil
}

// copyEnv is the environment of a copy's child: the destination's
// settings and credentials as COFFER_COPY_*.
func copyEnv(cp config.Copy) ([]string, error) {
	var env []string
	set := func(name, value string) {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	set("COFFER_COPY_S3_ENDPOINT", cp.S3Endpoint)
	set("COFFER_COPY_AWS_REGION", cp.S3Region)
	return secretEnv(env, envSecret{"COFFER_COPY_AWS_ACCESS_KEY_ID", cp.AccessKeyID()}, envSecret{"COFFER_COPY_AWS_SECRET_ACCESS_KEY", cp.SecretAccessKey()})
}

// job is what one child gets besides the repository settings.
type job struct {
	identity bool     // it decrypts: give it the operator identity
	extra    []string // more KEY=VALUE, e.g. a database password
}

// coffer runs `coffer args…` and returns its standard output; a failure
// carries the end of its standard error.
func (r *runner) coffer(ctx context.Context, j job, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.exe, args...)
	// Its own process group: a signal to the daemon (Ctrl-C, SIGTERM) is
	// not a signal to the backup it lets finish.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	env := append([]string{}, r.env...)
	if j.identity {
		env = append(env, r.identity...)
		if r.passphrase != "" {
			pr, err := command.SecretPipe(r.passphrase)
			if err != nil {
				return nil, err
			}
			defer pr.Close()
			cmd.ExtraFiles = []*os.File{pr}
			env = append(env, "COFFER_IDENTITY_PASSPHRASE_FILE=/dev/fd/"+strconv.Itoa(passphraseFD))
		}
	}
	cmd.Env = command.Env(passVars, append(env, j.extra...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return out.Bytes(), fmt.Errorf("coffer %s: %w: %s", args[0], err, msg)
	}
	return out.Bytes(), nil
}

// backupArgs returns the arguments and environment of a source's backup.
func backupArgs(s config.Source) ([]string, []string, error) {
	args := []string{"backup", "--json", "--source", s.Name}
	for _, t := range s.Tags {
		args = append(args, "--tag", t)
	}
	engine, target := s.Engine()
	args = append(args, "--"+engine, target)
	if s.AllDatabases {
		args = append(args, "--all-databases")
	}
	if s.Physical {
		args = append(args, "--physical")
	}
	var env []string
	if s.Password().IsSet() {
		pw, err := s.Password().Read(os.LookupEnv)
		if err != nil {
			return nil, nil, err
		}
		switch engine {
		case "postgres":
			env = append(env, "PGPASSWORD="+pw)
		case "mysql":
			env = append(env, "MYSQL_PWD="+pw)
		}
	}
	return args, env, nil
}

// forgetArgs applies a source's retention after its backup.
func forgetArgs(s config.Source, tz string) []string {
	r := s.Retention
	args := []string{"forget", "--json", "--source", s.Name, "--time-zone", tz}
	for _, kv := range []struct {
		flag string
		n    int
	}{{"--keep-last", r.KeepLast}, {"--keep-hourly", r.KeepHourly}, {"--keep-daily", r.KeepDaily},
		{"--keep-weekly", r.KeepWeekly}, {"--keep-monthly", r.KeepMonthly}, {"--keep-yearly", r.KeepYearly}} {
		if kv.n != 0 {
			args = append(args, kv.flag, strconv.Itoa(kv.n))
		}
	}
	if r.KeepWithin > 0 {
		args = append(args, "--keep-within", r.KeepWithin.String())
	}
	for _, t := range r.KeepTags {
		args = append(args, "--keep-tag", t)
	}
	return args
}

// backupResult is what the daemon reads of `coffer backup --json`.
type backupResult struct {
	Snapshot    string `json:"snapshot"`
	BytesRead   int64  `json:"size_bytes"`
	BytesStored int64  `json:"stored_bytes"`
}

// forgetResult is what the daemon reads of `coffer forget --json`: one
// group per source and host.
type forgetResult struct {
	Snapshots []struct {
		ID   string `json:"snapshot"`
		Keep bool   `json:"keep"`
	} `json:"snapshots"`
}

// drillResult is what the daemon reads of `coffer drill --json`.
type drillResult struct {
	Passed bool `json:"passed"`
	Runs   []struct {
		RTO float64 `json:"rto_seconds"`
	} `json:"runs"`
}

func parseJSON[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// walStatus is what the daemon reads of `coffer wal-status --json`.
type walStatus struct {
	Archived     int64     `json:"archived_count"`
	Failed       int64     `json:"failed_count"`
	LastArchived string    `json:"last_archived_wal"`
	LastTime     time.Time `json:"last_archived_time"`
	Ready        int64     `json:"ready_files"`
}
