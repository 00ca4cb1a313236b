package pitr

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/engine/command"
)

// waiter watches a restored server until recovery reached the target.
type waiter struct {
	dir, log string
	o        StartOptions
	exited   <-chan struct{}
	db       string
	oldPause bool   // before PostgreSQL 14: pg_is_wal_replay_paused()
	last     string // the last state read, for the timeout's message
	lastErr  string // the last failed connection's, likewise
}

const pollEvery = 200 * time.Millisecond

func (w *waiter) wait(ctx context.Context) (*Reached, error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	w.db = "postgres"
	for {
		select {
		case <-w.exited:
			return w.afterExit()
		default:
		}
		r, err := w.poll(ctx)
		if r != nil || err != nil {
			return r, err
		}
		select {
		case <-w.exited:
			return w.afterExit()
		case <-ctx.Done():
			what := "the server did not admit a connection yet (it replays WAL until the cluster is consistent)"
			if w.lastErr != "" {
				what += "; the last attempt: " + w.lastErr
			}
			if w.last != "" {
				what = "it is still in recovery, replayed to " + w.last
			}
			return nil, fmt.Errorf("restore --start: recovery did not reach the target within %s: %s. The server keeps running: wait and watch %s, or stop it with pg_ctl -D %s stop (a longer --start-timeout waits longer)",
				w.o.Timeout, what, w.log, w.dir)
		case <-time.After(pollEvery):
		}
	}
}

// refused are the answers that waiting does not change: the login is
// not one the restored cluster admits.
var refused = []string{"authentication failed", "role \"", "no pg_hba.conf entry", "permission denied"}

// poll reads recovery's state once; nil, nil means not yet.
func (w *waiter) poll(ctx context.Context) (*Reached, error) {
	pause := "pg_catalog.pg_get_wal_replay_pause_state()"
	if w.oldPause {
		pause = "CASE WHEN pg_catalog.pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END"
	}
	q := `SELECT pg_catalog.pg_is_in_recovery(), CASE WHEN pg_catalog.pg_is_in_recovery() THEN ` + pause + ` ELSE '' END,
		coalesce(pg_catalog.pg_last_wal_replay_lsn()::text, ''),
		coalesce(pg_catalog.to_char(pg_catalog.pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '')`
	out, err := w.psql(ctx, q)
	if err != nil {
		// While the server starts, replays or shuts down at the target,
		// connections fail in many ways; only a refused login is final.
		msg := string(out)
		select {
		case <-w.exited:
			return w.afterExit()
		case <-time.After(pollEvery):
		}
		switch {
		case ctx.Err() != nil:
			return nil, nil // the caller reports the timeout
		case strings.Contains(msg, "pg_get_wal_replay_pause_state") && !w.oldPause:
			w.oldPause = true
			return nil, nil
		case strings.Contains(msg, `database "postgres" does not exist`) && w.db == "postgres":
			w.db = "template1"
			return nil, nil
		}
		for _, s := range refused {
			if strings.Contains(msg, s) {
				return nil, &StartError{Reason: fmt.Sprintf("restore --start: log in to the restored server as role %q to read recovery's state: %s (is that the cluster's superuser? --superuser names it)",
					w.o.Superuser, strings.TrimSpace(msg)), Log: logTail(w.log)}
			}
		}
		w.lastErr = strings.TrimSpace(msg)
		return nil, nil
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	if len(f) != 4 {
		return nil, fmt.Errorf("restore --start: unexpected answer from the restored server: %q", out)
	}
	r := &Reached{LSN: f[2]}
	if f[3] != "" {
		r.LastCommit, _ = time.Parse(time.RFC3339Nano, f[3])
	}
	switch {
	case f[0] == "f":
		r.State = Promoted
	case f[1] == "paused":
		r.State = Paused
	default:
		w.last = f[2]
		return nil, nil
	}
	r.Stop = stopLine(w.log)
	return r, nil
}

// psql runs one query as the server's user, over the socket in the data
// directory. The client's settings win over any the restored catalog
// sets for the role or database at login.
func (w *waiter) psql(ctx context.Context, query string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := command.New(ctx, command.Env(nil, "LC_ALL=C", "LANG=C", "PGCONNECT_TIMEOUT=5", "PGAPPNAME=coffer restore",
		"PGOPTIONS=-c session_preload_libraries= -c local_preload_libraries= -c search_path=pg_catalog,pg_temp -c statement_timeout=10000"),
		filepath.Join(w.o.BinDir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", w.dir, "-p", strconv.Itoa(w.o.Port),
		"-U", w.o.Superuser, "-d", w.db, "-c", query)
	cmd.Dir = w.dir
	cmd.SysProcAttr.Credential = w.o.User.credential()
	return cmd.CombinedOutput()
}

// afterExit explains why the server exited: at the target (shutdown), or
// with PostgreSQL's reason.
func (w *waiter) afterExit() (*Reached, error) {
	b, _ := readTail(w.log, 64<<10)
	tail := logTail(w.log)
	switch {
	case bytes.Contains(b, []byte("shutdown at recovery target")):
		return &Reached{State: ShutDown, Stop: stopLine(w.log)}, nil
	case bytes.Contains(b, []byte("recovery ended before configured recovery target was reached")):
		return nil, &StartError{Reason: "restore --start: recovery ended before configured recovery target was reached (PostgreSQL's words): the archived WAL ends before the target; the server stopped. Choose an earlier target, or check that the server archived its latest WAL (coffer wal-status)", Log: tail}
	}
	reason := "the server exited"
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "FATAL:") || strings.Contains(line, "PANIC:") {
			reason = "the server exited: " + strings.TrimSpace(line)
		}
	}
	return nil, &StartError{Reason: "restore --start: " + reason, Log: tail}
}

// stopLine is the last "recovery stopping …" line of the log.
func stopLine(path string) string {
	b, _ := readTail(path, 1<<20)
	line := ""
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, "recovery stopping "); i >= 0 {
			line = strings.TrimSpace(l[i:])
		}
	}
	return line
}

// readTail reads at most max bytes from the end of the file at path.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, 0)
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// logTail is the last lines of the log.
func logTail(path string) string {
	b, _ := readTail(path, 4096)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
