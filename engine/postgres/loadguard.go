package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// sessionsGone bounds the wait for pg_restore's own sessions to end on
// the server once pg_restore has exited.
const sessionsGone = 3 * time.Second

// ErrLoadRoleTaken says that the snapshot made the load role its own: it
// changed the role's password (any role may change its own), or somebody
// stayed logged in as it after pg_restore. Either is an attack by the
// snapshot's author, who would then hold the owner of the database being
// loaded.
var ErrLoadRoleTaken = errors.New("the snapshot took over the role that loaded it")

// closeLoadRole ends what the load role may do once pg_restore exited:
// the role may log in no more, and coffer proves that the snapshot did
// not make it its own. As a superuser coffer reads the role's stored
// verifier, which must still be the one it set; on every server no
// session of the role may outlive pg_restore (one that does is ended).
// The role's CONNECTION LIMIT meanwhile kept anybody from logging in as
// it beside pg_restore without making pg_restore fail.
func (t *Target) closeLoadRole(ctx context.Context, pc *pgx.Conn, db string, lr *loadRole) error {
	if _, err := pc.Exec(ctx, "ALTER ROLE "+quoteIdent(lr.name)+" NOLOGIN"); err != nil {
		return fmt.Errorf("lock the role %q that loaded database %q at %s: %w", lr.name, db, t.c.addr(), err)
	}
	if t.srv.superuser {
		var v string
		if err := pc.QueryRow(ctx, "SELECT coalesce(rolpassword, '') FROM pg_catalog.pg_authid WHERE rolname = $1", lr.name).Scan(&v); err != nil {
			return fmt.Errorf("read the role %q that loaded database %q at %s: %w", lr.name, db, t.c.addr(), err)
		}
		if v != lr.verifier {
			return fmt.Errorf("database %q: %w: its password was changed while it loaded; the load is undone. Find out what wrote this snapshot on the backup host before restoring it with --trust-snapshot", db, ErrLoadRoleTaken)
		}
	}
	deadline := time.Now().Add(sessionsGone)
	for {
		var n int
		if err := pc.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = $1", lr.name).Scan(&n); err != nil {
			return fmt.Errorf("list the sessions of role %q at %s: %w", lr.name, t.c.addr(), err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pc.Exec(ctx, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1", lr.name)
			return fmt.Errorf("database %q: %w: %d sessions of it were still open after pg_restore exited (ended now); the load is undone. Find out who logged in as %q and what wrote this snapshot", db, ErrLoadRoleTaken, n, lr.name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
