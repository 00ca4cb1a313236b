package pitr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/engine/command"
	"github.com/coffer-backup/coffer/repository"
)

// OSUser is the operating-system user a restored server runs as.
type OSUser struct {
	Name     string
	UID, GID uint32
}

// LookupUser finds the system user name. The restored server holds
// customer data and runs whatever its catalog defines: never as root.
func LookupUser(name string) (*OSUser, error) {
	if !repository.ValidRoleName(name) {
		return nil, fmt.Errorf("--run-as %q: give a system user's name", name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("--run-as %s: %w", name, err)
	}
	return osUser(u)
}

// CurrentUser is the user coffer runs as.
func CurrentUser() (*OSUser, error) {
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	return osUser(u)
}

func osUser(u *user.User) (*OSUser, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("system user %s has no numeric uid and gid", u.Username)
	}
	if uid == 0 {
		return nil, errors.New("the restored server never runs as root (PostgreSQL refuses to, and it would run the backup's catalog as root): give --run-as USER, the system user to own and run it (e.g. postgres)")
	}
	return &OSUser{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}, nil
}

// credential runs a process as u, without supplementary groups, when
// coffer is someone else (root).
func (u *OSUser) credential() *syscall.Credential {
	if u.UID == uint32(os.Geteuid()) {
		return nil
	}
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
}

// Own gives dir, recursively, to u (coffer runs as root). Nothing in dir
// is a link: Extract makes directories and regular files only.
func Own(dir string, u *OSUser) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.UID), int(u.GID))
	})
}

// StartOptions say how Start runs the restored server.
type StartOptions struct {
	BinDir    string  // of postgres and psql
	User      *OSUser // who runs it (and owns the data directory)
	Superuser string  // the role Start logs in as to read recovery's state
	Port      int
	Target    Target
	Timeout   time.Duration // for recovery to reach the target
}

// Reached is where recovery stopped.
type Reached struct {
	State      string    // promoted, paused or shut down
	LSN        string    // the end of the last record replayed (not known once shut down)
	LastCommit time.Time // of the last transaction replayed; zero if none or not known
	Stop       string    // PostgreSQL's "recovery stopping …" line, when it logged one
	PID        int       // the postmaster's, while it runs
}

// States of a restored server once recovery reached its target.
const (
	Promoted = "promoted"
	Paused   = "paused"
	ShutDown = "shut down"
)

// LogName is the restored server's log, in its data directory.
const LogName = "coffer_server.log"

// StartError is a restored server that failed to start or to reach the
// target: PostgreSQL's reason, and the tail of its log.
type StartError struct {
	Reason string
	Log    string // the log's last lines (the server wrote them: escape before showing)
}

func (e *StartError) Error() string { return e.Reason }

// Start starts the restored server of dir (configured by Configure, owned
// by o.User) in the background and waits until recovery reached the
// target: the server promoted, paused at the target or shut down there,
// as o.Target.Action says. The server keeps running when Start returns
// (unless it shut down); it is in its own session, not coffer's child
// once coffer exits.
func Start(ctx context.Context, dir string, o StartOptions) (*Reached, error) {
	logPath := filepath.Join(dir, LogName)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore --start: %w", err)
	}
	defer log.Close()
	if err := log.Chown(int(o.User.UID), int(o.User.GID)); err != nil && os.Geteuid() == 0 {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(o.BinDir, "postgres"), "-D", dir)
	cmd.Env = command.Env(nil, "LC_ALL=C", "LANG=C")
	cmd.Dir = dir
	// Its own session, no death signal: the server outlives coffer.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: o.User.credential()}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("restore --start: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	w := &waiter{dir: dir, log: logPath, o: o, exited: exited}
	r, err := w.wait(ctx)
	if r != nil {
		r.PID = cmd.Process.Pid
		if r.State == ShutDown {
			r.PID = 0
		}
	}
	return r, err
}
