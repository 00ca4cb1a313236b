package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/pgephemeral"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/pitr"
	"github.com/coffer-backup/coffer/repository"
)

// startOptions are restore --pgdata's flags that start the server.
type startOptions struct {
	start     bool
	runAs     string
	superuser string
	timeout   time.Duration
	user      *pitr.OSUser // who owns and runs the server; nil: leave the files to coffer's user
}

func addStartFlags(cmd *cobra.Command, o *startOptions) {
	f := cmd.Flags()
	f.BoolVar(&o.start, "start", false, "with --pgdata and --port: start the restored server and wait until recovery reached the target")
	f.StringVar(&o.runAs, "run-as", "", "with --pgdata: the system user to own the data directory and run the server (needed as root; default: coffer's user)")
	f.StringVar(&o.superuser, "superuser", "", "with --start: the cluster's superuser, whom --run-as may log in as (default: the one the base backup recorded, else postgres)")
	f.DurationVar(&o.timeout, "start-timeout", time.Hour, "with --start: how long recovery may take to reach the target")
}

// parse checks the flags and finds the user, before anything is fetched.
func (o *startOptions) parse(port int) error {
	switch {
	case o.start && port <= 0:
		return errors.New("restore --start: give the port the restored server listens on (--port N; it listens on no TCP address, the port names its Unix socket)")
	case !o.start && o.superuser != "":
		return errors.New("restore: --superuser goes with --start")
	case o.superuser != "" && !repository.ValidRoleName(o.superuser):
		return fmt.Errorf("restore: --superuser %q: give a plain role name (letters, digits, _ . $ -)", o.superuser)
	case o.timeout <= 0:
		return errors.New("restore: --start-timeout must be positive")
	}
	var err error
	switch {
	case os.Geteuid() == 0 && o.runAs == "":
		if o.start {
			return errors.New("restore --start: coffer runs as root, and the restored server must not: give --run-as USER, the system user to own the data directory and run the server (e.g. postgres)")
		}
		return nil
	case os.Geteuid() == 0:
		o.user, err = pitr.LookupUser(o.runAs)
	default:
		if o.user, err = pitr.CurrentUser(); err == nil && o.runAs != "" && o.runAs != o.user.Name {
			err = fmt.Errorf("restore --run-as %s: only root can give the data directory to another user; run as %s, or leave --run-as out", termsafe.String(o.runAs), termsafe.String(o.runAs))
		}
	}
	return err
}

// server is how Configure lets the server's user in.
func (o *startOptions) server(port int, info *repository.PhysicalInfo) pitr.Server {
	s := pitr.Server{Port: port}
	if o.user != nil {
		s.OSUser, s.Superuser = o.user.Name, drill.Superuser(info, o.superuser)
	}
	return s
}

// own gives the data directory to --run-as, when coffer runs as root.
func (o *startOptions) own(dirs ...string) error {
	if o.user == nil || os.Geteuid() != 0 {
		return nil
	}
	for _, dir := range dirs {
		if err := pitr.Own(dir, o.user); err != nil {
			return fmt.Errorf("restore --pgdata: give %s to %s: %w", dir, o.user.Name, err)
		}
	}
	return nil
}

// startPGData starts the restored server and reports where recovery
// stopped.
func startPGData(cmd *cobra.Command, o *pgdataOptions, info *repository.PhysicalInfo) error {
	bin, err := pgephemeral.Available()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	super := drill.Superuser(info, o.start.superuser)
	started := time.Now()
	r, err := pitr.Start(cmd.Context(), dir, pitr.StartOptions{BinDir: bin, User: o.start.user, Superuser: super,
		Port: o.port, Target: o.target, Timeout: o.start.timeout})
	var se *pitr.StartError
	if errors.As(err, &se) {
		return fmt.Errorf("%s\nthe end of the server's log (%s):\n%s", se.Reason, termsafe.String(filepath.Join(dir, pitr.LogName)), termsafe.Lines(se.Log))
	}
	if err != nil {
		return errors.New(termsafe.Lines(err.Error())) // it may quote the server's words
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "recovery reached the target in %s: the server %s\n", time.Since(started).Round(time.Millisecond), r.State)
	if r.LSN != "" {
		fmt.Fprintf(out, "replayed to:        %s\n", termsafe.String(r.LSN))
	}
	if !r.LastCommit.IsZero() {
		fmt.Fprintf(out, "last commit:        %s\n", r.LastCommit.UTC().Format(time.RFC3339Nano))
	}
	if r.Stop != "" {
		fmt.Fprintf(out, "PostgreSQL:         %s\n", termsafe.String(r.Stop))
	}
	qdir := termsafe.String(dir)
	switch r.State {
	case pitr.ShutDown:
		fmt.Fprintf(out, "the server shut down at the target, as --target-action shutdown asks; to go on, change the recovery settings in %s/postgresql.conf and start it: pg_ctl -D %s -l %s/%s start\n", qdir, qdir, qdir, pitr.LogName)
		return nil
	case pitr.Paused:
		fmt.Fprintf(out, "the server is paused at the target, read-only: look at the data, then SELECT pg_wal_replay_resume() ends recovery and promotes it\n")
	}
	fmt.Fprintf(out, "the server (pid %d) runs as %s on port %d; it listens on no TCP address, only on its Unix socket in %s (mode 0700: only %s and root can connect)\n",
		r.PID, termsafe.String(o.start.user.Name), o.port, qdir, termsafe.String(o.start.user.Name))
	fmt.Fprintf(out, "connect as %s: psql -h %s -p %d -U %s postgres\n", termsafe.String(o.start.user.Name), qdir, o.port, super)
	fmt.Fprintf(out, "stop it: pg_ctl -D %s stop\n", qdir)
	return nil
}
