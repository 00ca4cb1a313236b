package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxName is the longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes);
// a longer one is cut by the server, which could make two names equal.
const maxName = 63

// suffixed is name with suffix, name cut (at a character boundary) so
// that the whole fits in maxName bytes.
func suffixed(name, suffix string) string {
	n := maxName - len(suffix)
	if len(name) > n {
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name = name[:n]
	}
	return name + suffix
}

// Commit implements restore.Target. With Clean, each database loaded
// beside the one it replaces takes its name: the old one is renamed
// NAME_before_TIME, then the new one NAME, in one transaction. Other
// sessions on the old database make Commit fail, naming them, unless
// Force: then new connections to it are refused and they are ended. With
// DropOld the old database is dropped once the swap succeeded.
func (t *Target) Commit(ctx context.Context) ([]string, error) {
	var out []string
	var pc *pgx.Conn
	conn := func() error {
		if pc != nil {
			return nil
		}
		var err error
		pc, err = t.admin(ctx)
		return err
	}
	defer func() {
		if pc != nil {
			pc.Close(context.WithoutCancel(ctx))
		}
	}()
	// The reader's privileges are dropped in each database it read, by
	// the names they have before the swap.
	if t.reader != nil {
		if err := conn(); err != nil {
			return out, fmt.Errorf("%w\n%s", err, t.commitState(0, ""))
		}
		if err := t.dropReader(ctx, pc); err != nil {
			return out, fmt.Errorf("%w\n%s", err, t.commitState(0, ""))
		}
	}
	for i, x := range t.dbs {
		if !x.replaces() || !x.loaded {
			continue
		}
		if err := conn(); err != nil {
			return out, fmt.Errorf("%w\n%s", err, t.commitState(i, ""))
		}
		msg, before, err := t.swap(ctx, pc, x)
		if err != nil {
			return out, fmt.Errorf("%w\n%s", err, t.commitState(i, before))
		}
		out = append(out, msg)
	}
	return out, nil
}

// commitState says where each database stands after Commit failed at
// database i: those before it replaced, it and those after untouched,
// with their verified copies kept.
func (t *Target) commitState(failed int, before string) string {
	var s []string
	for i, x := range t.dbs {
		switch {
		case !x.replaces():
		case i < failed:
			s = append(s, fmt.Sprintf("database %q was replaced (the old one is %q)", x.to, x.into))
		default:
			if before == "" || i > failed {
				before = suffixed(x.to, "_before_"+t.stamp)
			}
			s = append(s, fmt.Sprintf("database %q is untouched; the verified copy of the snapshot is kept as %q: to put it in place by hand, ALTER DATABASE %s RENAME TO %s; ALTER DATABASE %s RENAME TO %s; or drop it: DROP DATABASE %s",
				x.to, x.into, quoteIdent(x.to), quoteIdent(before), quoteIdent(x.into), quoteIdent(x.to), quoteIdent(x.into)))
		}
	}
	return strings.Join(s, "\n")
}

// session is another connection to a database that is to be replaced.
type session struct {
	pid                      int
	user, app, client, state string
}

func (s session) String() string {
	return fmt.Sprintf("pid %d, user %q, application %q, from %s, %s", s.pid, s.user, s.app, s.client, s.state)
}

func sessions(ctx context.Context, pc *pgx.Conn, db string) ([]session, error) {
	rows, err := pc.Query(ctx, `SELECT pid, coalesce(usename, ''), coalesce(application_name, ''),
		coalesce(host(client_addr), 'local socket'), coalesce(state, '')
		FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY pid`, db)
	if err != nil {
		return nil, fmt.Errorf("list the sessions of database %q: %w", db, err)
	}
	defer rows.Close()
	var out []session
	for rows.Next() {
		var s session
		if err := rows.Scan(&s.pid, &s.user, &s.app, &s.client, &s.state); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// swap renames x.to to NAME_before_TIME and x.into to x.to.
func (t *Target) swap(ctx context.Context, pc *pgx.Conn, x *loadDB) (msg, before string, err error) {
	if before, err = freeName(ctx, pc, x.to, "_before_"+t.stamp); err != nil {
		return "", suffixed(x.to, "_before_"+t.stamp), fmt.Errorf("replace database %q at %s: %w", x.to, t.c.addr(), err)
	}
	var allow bool
	if err := pc.QueryRow(ctx, "SELECT datallowconn FROM pg_catalog.pg_database WHERE datname = $1", x.to).Scan(&allow); err != nil {
		return "", before, fmt.Errorf("replace database %q at %s: %w", x.to, t.c.addr(), err)
	}
	others, err := sessions(ctx, pc, x.to)
	if err != nil {
		return "", before, err
	}
	if len(others) > 0 && !t.opts.Force {
		return "", before, t.busyError(x, others)
	}
	if len(others) > 0 {
		if err := t.endSessions(ctx, pc, x); err != nil {
			return "", before, err
		}
		defer func() {
			// The old database accepts connections again, whichever name it has now.
			name := before
			if err != nil {
				name = x.to
			}
			if allow {
				pc.Exec(context.WithoutCancel(ctx), "ALTER DATABASE "+quoteIdent(name)+" WITH ALLOW_CONNECTIONS true")
			}
		}()
	}
	err = pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "ALTER DATABASE "+quoteIdent(x.to)+" RENAME TO "+quoteIdent(before)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "ALTER DATABASE "+quoteIdent(x.into)+" RENAME TO "+quoteIdent(x.to))
		return err
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" { // object in use: someone connected meanwhile
			others, _ := sessions(ctx, pc, x.to)
			return "", before, t.busyError(x, others)
		}
		return "", before, fmt.Errorf("replace database %q at %s: %w", x.to, t.c.addr(), err)
	}
	newName := x.into
	x.into = x.to
	msg = fmt.Sprintf("replaced database %q with the restored copy (loaded as %q); the old database is kept as %q", x.to, newName, before)
	if !t.opts.DropOld {
		return msg + ": drop it once you no longer need it, or pass --drop-old next time", before, nil
	}
	drop := "DROP DATABASE " + quoteIdent(before)
	if t.opts.Force {
		drop += " WITH (FORCE)"
	}
	if _, err := pc.Exec(ctx, drop); err != nil {
		return msg + fmt.Sprintf("; dropping it (--drop-old) failed: %v; drop it yourself", err), before, nil
	}
	return fmt.Sprintf("replaced database %q with the restored copy (loaded as %q) and dropped the old one (--drop-old)", x.to, newName), before, nil
}

func (t *Target) busyError(x *loadDB, others []session) error {
	list := make([]string, 0, len(others))
	for _, s := range others {
		list = append(list, s.String())
	}
	n := fmt.Sprintf("%d other sessions", len(others))
	if len(others) == 1 {
		n = "another session"
	}
	return fmt.Errorf("database %q at %s has %s (%s), so it cannot be renamed to make way for the restored copy: end them, or restore again with --force, which ends them",
		x.to, t.c.addr(), n, strings.Join(firstN(list, 5), "; "))
}

// endSessions refuses new connections to x.to and ends the others (Force).
func (t *Target) endSessions(ctx context.Context, pc *pgx.Conn, x *loadDB) error {
	if _, err := pc.Exec(ctx, "ALTER DATABASE "+quoteIdent(x.to)+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("refuse new connections to database %q at %s (--force): %w", x.to, t.c.addr(), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left int
		err := pc.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()) s`, x.to).Scan(&left)
		if err != nil {
			return fmt.Errorf("end the sessions of database %q at %s (--force): %w", x.to, t.c.addr(), err)
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("end the sessions of database %q at %s (--force): %d sessions are still there after 10s", x.to, t.c.addr(), left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Abort implements restore.Target: it drops the databases Load created
// (with Clean, only the new copies: the databases they were to replace
// are untouched) and the roles it created (for a drill, the scratch
// roles). A database that existed empty and was loaded in place is left
// as it is.
func (t *Target) Abort(ctx context.Context) error {
	state, err := t.undo(ctx)
	t.notes = append(t.notes, state...)
	return err
}

// failed adds to a Load error what was undone and in what state each
// target database is.
func (t *Target) failed(ctx context.Context, err error) error {
	state, uerr := t.undo(ctx)
	if uerr != nil {
		state = append(state, fmt.Sprintf("removing what the restore created failed: %v", uerr))
	}
	if len(state) == 0 {
		return err
	}
	return fmt.Errorf("%w\n%s", err, strings.Join(state, "\n"))
}

// undo drops what Load created and says so.
func (t *Target) undo(ctx context.Context) ([]string, error) {
	pc, err := t.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer pc.Close(ctx)
	var state []string
	var errs []error
	for _, x := range t.dbs {
		switch {
		case x.created:
			_, err := pc.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(x.into)+" WITH (FORCE)")
			if err != nil {
				errs = append(errs, fmt.Errorf("drop database %q: %w", x.into, err))
				state = append(state, fmt.Sprintf("database %q, created for this restore, could not be dropped: drop it yourself", x.into))
				break
			}
			x.created = false
			if x.replaces() {
				state = append(state, fmt.Sprintf("database %q is untouched; the partial new copy %q was dropped", x.to, x.into))
			} else {
				state = append(state, fmt.Sprintf("database %q, created for this restore, was dropped", x.into))
			}
		case x.exists && x.load != nil:
			// Loaded in place into an empty database: back to empty.
			if err := t.emptyAgain(ctx, pc, x); err != nil {
				errs = append(errs, err)
				state = append(state, fmt.Sprintf("database %q was empty before and may be partially loaded: drop it, or restore again with --clean", x.into))
			} else {
				state = append(state, fmt.Sprintf("database %q was emptied again of what the failed load created", x.into))
			}
		case x.exists && x.loaded:
			state = append(state, fmt.Sprintf("database %q, empty before, was loaded: drop it, or restore again with --clean", x.into))
		case x.exists:
			state = append(state, fmt.Sprintf("database %q is untouched", x.to))
		}
		if x.load != nil {
			if err := t.dropRole(ctx, pc, x.load.name); err != nil {
				errs = append(errs, fmt.Errorf("drop the load role %q: %w", x.load.name, err))
			} else {
				x.load = nil
			}
		}
	}
	if err := t.dropReader(ctx, pc); err != nil {
		errs = append(errs, err)
	}
	var dropped, kept []string
	for i := len(t.created) - 1; i >= 0; i-- {
		r := t.created[i]
		if err := t.dropRole(ctx, pc, r.name); err != nil {
			kept = append(kept, fmt.Sprintf("%q (%v)", r.name, err))
			continue
		}
		dropped = append(dropped, fmt.Sprintf("%q", r.name))
		delete(t.roles, r.name)
	}
	t.created = nil
	if len(dropped) > 0 {
		state = append(state, "the roles this restore created were dropped: "+strings.Join(dropped, ", "))
	}
	if len(kept) > 0 {
		state = append(state, "roles this restore created are still there, in use: "+strings.Join(kept, ", "))
	}
	return state, errors.Join(errs...)
}

// emptyAgain gives database x back to its owner and drops what the load
// role created in it.
func (t *Target) emptyAgain(ctx context.Context, pc *pgx.Conn, x *loadDB) error {
	if _, err := pc.Exec(ctx, "ALTER DATABASE "+quoteIdent(x.into)+" OWNER TO "+quoteIdent(x.oldOwner)); err != nil {
		return fmt.Errorf("give database %q back to %q: %w", x.into, x.oldOwner, err)
	}
	if err := t.resetSettings(ctx, pc, x); err != nil {
		return err
	}
	dc, err := t.c.connect(ctx, x.into)
	if err != nil {
		return err
	}
	defer dc.Close(ctx)
	if _, err := dc.Exec(ctx, "DROP OWNED BY "+quoteIdent(x.load.name)); err != nil {
		return fmt.Errorf("database %q: drop what the failed load created: %w", x.into, err)
	}
	return nil
}

// scratchName is the shape of a drill's scratch database name.
var scratchName = regexp.MustCompile(`^coffer_drill_[0-9a-z_]+$`)

// DropScratch drops a drill's scratch database db on the server at
// serverDSN (WITH (FORCE)) and the roles coffer created for it (the load
// role and the scratch roles, found by their comments). It refuses a
// name that is not a scratch database's (coffer_drill_[0-9a-z_]+), so
// that a marker naming another database drops nothing. Scratch roles of
// drills whose databases are gone are dropped too; a role still in use by
// another drill's database is left to that drill.
func DropScratch(ctx context.Context, serverDSN, db string) error {
	if !scratchName.MatchString(db) || len(db) > maxName {
		return fmt.Errorf("refusing to drop database %q: it is not a drill's scratch database (coffer_drill_…)", db)
	}
	c, err := parseDSN(serverDSN)
	if err != nil {
		return err
	}
	t := &Target{c: c}
	pc, err := t.admin(ctx)
	if err != nil {
		return err
	}
	defer pc.Close(ctx)
	if _, err := pc.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop scratch database %q at %s: %w", db, c.addr(), err)
	}
	rows, err := pc.Query(ctx, `SELECT r.rolname, d.description FROM pg_catalog.pg_roles r
		JOIN pg_catalog.pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::pg_catalog.regclass
		WHERE NOT r.rolsuper AND (d.description LIKE $1 OR d.description LIKE $2)
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.usesysid = r.oid)`,
		loadComment+"coffer\\_drill\\_%", scratchComment+"coffer\\_drill\\_%")
	if err != nil {
		return fmt.Errorf("list the scratch roles at %s: %w", c.addr(), err)
	}
	type cand struct{ name, db string }
	var cands []cand
	for rows.Next() {
		var name, comment string
		if err := rows.Scan(&name, &comment); err != nil {
			rows.Close()
			return err
		}
		for _, p := range []string{loadComment, scratchComment} {
			if d, ok := strings.CutPrefix(comment, p); ok {
				cands = append(cands, cand{name, d})
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var errs []error
	for _, r := range cands {
		if r.db != db {
			var exists bool
			if err := pc.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)", r.db).Scan(&exists); err != nil || exists {
				continue // another drill's, still running
			}
		}
		if err := t.dropRole(ctx, pc, r.name); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "2BP01" { // still owns or may use objects of another database
				continue
			}
			errs = append(errs, fmt.Errorf("drop scratch role %q at %s: %w", r.name, c.addr(), err))
		}
	}
	return errors.Join(errs...)
}
