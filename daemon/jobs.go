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

	"github.com/coffer-backup/coffer/config"
)

// runner runs coffer commands as child processes: the same code paths,
// audit records and error messages as an operator's, and a failure or crash
// of one job cannot take the daemon down. Secrets reach children through
// their environment, never their command line.
type runner struct {
	exe string
	env []string // the repository settings every child gets
}

// repoEnv turns the config's repository section into coffer's environment.
func repoEnv(c *config.Config) ([]string, error) {
	r := c.Repository
	env := []string{"COFFER_REPO=" + r.URL}
	set := func(name, value string) {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	set("COFFER_S3_ENDPOINT", r.S3Endpoint)
	set("AWS_REGION", r.S3Region)
	set("COFFER_WRITER_KEY_FILE", r.WriterKeyFile)
	set("COFFER_WRITER_FINGERPRINT", r.WriterFingerprint)
	set("COFFER_IDENTITY_FILE", r.IdentityFile)
	set("COFFER_IDENTITY_PASSPHRASE_FILE", r.IdentityPassphraseFile)
	return secretEnv(env, envSecret{"AWS_ACCESS_KEY_ID", r.AccessKeyID()}, envSecret{"AWS_SECRET_ACCESS_KEY", r.SecretAccessKey()})
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

// coffer runs `coffer args…` with extra environment and returns its
// standard output; a failure carries the end of its standard error.
func (r *runner) coffer(ctx context.Context, extra []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.exe, args...)
	// Its own process group: a signal to the daemon (Ctrl-C, SIGTERM) is
	// not a signal to the backup it lets finish.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(append(os.Environ(), r.env...), extra...)
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
	args := []string{"forget", "--source", s.Name, "--time-zone", tz}
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
	BytesRead   int64  `json:"bytes_read"`
	BytesStored int64  `json:"bytes_stored"`
}

// drillResult is what the daemon reads of `coffer drill --json`.
type drillResult struct {
	Passed bool `json:"passed"`
	Runs   []struct {
		RTO int64 `json:"rto_ns"`
	} `json:"runs"`
}

func parseJSON[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// walStatus is what the daemon reads of `coffer wal-status --json`.
type walStatus struct {
	Archived     int64   `json:"archived_count"`
	Failed       int64   `json:"failed_count"`
	LastArchived string  `json:"last_archived_wal"`
	LastTime     float64 `json:"last_archived_unix"`
	Ready        int64   `json:"ready_files"`
}
