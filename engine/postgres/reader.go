package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// readerPrefix starts the name of the role that reads a restored
// database.
const readerPrefix = "coffer_read_"

// What a snapshot loaded is the snapshot's: its views, functions, row
// security policies and triggers are the backup host's code. Coffer's own
// reads of it after the load (the verification dump, a drill's
// assertions) therefore run as a throwaway role that can log in and read
// every table (pg_read_all_data), bypasses row security (BYPASSRLS: the
// policies, which are the snapshot's expressions, neither hide rows nor
// run), and can do nothing else: a function the snapshot planted in a
// view runs with a reader's rights at most, never the connecting
// superuser's.
//
// It needs a superuser to create it (only one may give BYPASSRLS) and
// PostgreSQL 14 or later (pg_read_all_data); otherwise, and with
// TrustSnapshot, the reads run as the connecting user, and a note says so.

// readerEnv is pg_dump's environment for reading database db.
func (t *Target) readerEnv(ctx context.Context, db string) ([]string, error) {
	r, err := t.readerRole(ctx, db)
	if err != nil || r == nil {
		return nil, err
	}
	return t.c.envAs(db, r.name, r.password), nil
}

// OpenReader connects to the database Load loaded (the first, for a
// snapshot of several) as the reader role, for queries a drill runs on
// it (assertions), on one connection; then the reader may log in no
// more. Those queries run the snapshot's code (a view's functions) as the
// reader, and that code can change the reader's password (any role may
// change its own), but not give it back the right to log in: nobody can
// use the reader's rights from outside. Call it after Digests. The caller
// closes it before Commit or Abort, which drop the role.
func (t *Target) OpenReader(ctx context.Context) (*sql.DB, error) {
	if len(t.dbs) == 0 {
		return nil, fmt.Errorf("restore target %s: nothing was loaded", t)
	}
	db := t.dbs[0].into
	cfg, err := t.c.config(db)
	if err != nil {
		return nil, err
	}
	r, err := t.readerRole(ctx, db)
	if err != nil {
		return nil, err
	}
	if r != nil {
		cfg.User, cfg.Password = r.name, r.password
	}
	// The operator's queries name tables as they would in psql; the
	// database's own search_path setting was the snapshot's, and was reset.
	cfg.RuntimeParams["search_path"] = `"$user", public`
	sdb := stdlib.OpenDB(*cfg)
	sdb.SetMaxOpenConns(1)
	sdb.SetMaxIdleConns(1)
	sdb.SetConnMaxLifetime(0)
	sdb.SetConnMaxIdleTime(0)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, t.c.explain(err, db)
	}
	if r != nil {
		pc, err := t.admin(ctx)
		if err == nil {
			_, err = pc.Exec(ctx, "ALTER ROLE "+quoteIdent(r.name)+" NOLOGIN")
			pc.Close(ctx)
		}
		if err != nil {
			sdb.Close()
			return nil, fmt.Errorf("close the reader role %q to new logins at %s: %w", r.name, t.c.addr(), err)
		}
	}
	return sdb, nil
}

// readerRole creates the reader role once; nil when it cannot be used.
func (t *Target) readerRole(ctx context.Context, db string) (*loadRole, error) {
	if t.reader != nil {
		return t.reader, nil
	}
	if t.srv == nil || t.opts.TrustSnapshot || t.noReader {
		return nil, nil
	}
	if !t.srv.superuser || t.srv.major < 14 {
		t.note("the restored data was read for verification as %q: a reader role without superuser rights needs a superuser and PostgreSQL 14 or later", t.c.user)
		t.noReader = true
		return nil, nil
	}
	pc, err := t.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer pc.Close(ctx)
	r := &loadRole{name: readerPrefix + randomHex(8), password: randomHex(24)}
	until := time.Now().Add(24 * time.Hour).UTC().Format("2006-01-02 15:04:05+00")
	for _, s := range []string{
		"CREATE ROLE " + quoteIdent(r.name) + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS INHERIT" +
			" PASSWORD " + quoteLiteral(scramVerifier(r.password)) + " VALID UNTIL " + quoteLiteral(until),
		"COMMENT ON ROLE " + quoteIdent(r.name) + " IS " + quoteLiteral(loadComment+db),
		"GRANT pg_read_all_data TO " + quoteIdent(r.name),
	} {
		if _, err := pc.Exec(ctx, s); err != nil {
			t.dropRole(ctx, pc, r.name)
			return nil, fmt.Errorf("create the role %q that reads database %q at %s: %w", r.name, db, t.c.addr(), err)
		}
	}
	t.reader = r
	return r, nil
}

// dropReader drops the reader role, if one was made.
func (t *Target) dropReader(ctx context.Context, pc *pgx.Conn) error {
	if t.reader == nil {
		return nil
	}
	if err := t.dropRole(ctx, pc, t.reader.name); err != nil {
		return fmt.Errorf("drop the reader role %q at %s: %w", t.reader.name, t.c.addr(), err)
	}
	t.reader = nil
	return nil
}
