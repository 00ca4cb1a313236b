package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/engine"
)

// Target is a MariaDB or MySQL server that snapshots are restored into.
// A snapshot of one database is loaded into the address's database (or,
// without one, under its own name); a snapshot of several databases
// loads each under its own name.
//
// A snapshot is input from an adversary. coffer splits each database's
// dump into statements itself and executes them one by one (the mariadb
// client, which runs client commands, never sees a dump), as a temporary
// account that may use only the database it loads (coffer_load_…, see
// account.go): a statement that reaches for another database, an account,
// a global setting or a file fails, and fails the load, naming its line.
// Only TrustSnapshot loads as the address's user.
//
// With Clean, a database that holds tables is not touched by Load: the
// snapshot is loaded into a new database beside it, and Commit swaps them
// (see swap.go); Abort drops only the new one.
//
// The stream arrives in order and is loaded one statement at a time, so
// databases are loaded one after the other: jobs is accepted for
// symmetry with other engines and does not apply.
type Target struct {
	c      *conn
	t      *tools
	opts   TargetOptions
	loaded []*mapping
	admin  *admin       // kept from Load to Commit or Abort while a new database awaits its swap
	reader *loadAccount // the account OpenReader and Digests connect as, dropped by Commit and Abort
	// readerDBs are the databases the reader account may read
	readerDBs map[string]bool
	notes     []string
	now       func() time.Time
	mv        *maskVerify // a masked load's, for its verification
}

// mapping is a database of the snapshot and where it is loaded.
type mapping struct {
	from    string // its name in the snapshot
	to      string // where it belongs
	into    string // where Load loads it: to, or with Clean a new database beside it
	exists  bool   // to existed before Load
	created bool   // Load created into
	started bool   // Load began to load into
}

// swapping reports whether x is loaded beside the database it replaces.
func (x *mapping) swapping() bool { return x.into != x.to }

// NewTarget returns the target at dsn (mysql://USER@HOST:PORT/[DATABASE]).
// Without Clean, databases that hold tables are refused. The password
// comes from MYSQL_PWD or the file named by COFFER_MYSQL_PASSWORD_FILE;
// the user must be allowed to create accounts and to grant privileges on
// the databases it restores (unless TrustSnapshot).
func NewTarget(dsn string, opts TargetOptions) (*Target, error) {
	ctx := context.Background() // two short local commands: the option file, --version
	c, err := newConn(ctx, dsn)
	if err != nil {
		return nil, err
	}
	t, err := findTools(ctx)
	if err != nil {
		return nil, err
	}
	return &Target{c: c, t: t, opts: opts, now: time.Now}, nil
}

// TargetOptions tune a Target; see restore.TargetOptions, which they mirror.
type TargetOptions struct {
	Clean, DropOld bool
	Jobs           int
	TrustSnapshot  bool
	Scratch        bool
	Mask           *Masking // a masked copy (mask.go)
}

// Notes implements restore.Target.
func (t *Target) Notes() []string { return t.notes }

func (t *Target) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// Engine implements restore.Target.
func (t *Target) Engine() string { return "mysql" }

// String names the target without secrets.
func (t *Target) String() string { return t.c.String() }

// plan maps the snapshot's parts to target databases.
func (t *Target) plan(parts []engine.Part) ([]*mapping, error) {
	if len(parts) == 0 {
		return nil, errors.New("the snapshot records no databases: restore it with --output and load it by hand")
	}
	var m []*mapping
	for _, p := range parts {
		name, ok := strings.CutSuffix(p.Name, ".sql")
		if !ok || name == "" {
			return nil, fmt.Errorf("snapshot part %q is not a MySQL dump (<database>.sql)", p.Name)
		}
		// Backups never hold the server's own databases: a part that
		// claims one would replace the grant tables.
		if slices.ContainsFunc(systemDatabases, func(s string) bool { return strings.EqualFold(s, name) }) {
			return nil, fmt.Errorf("snapshot part %q names the server's own database %q, which coffer never backs up nor restores; nothing was loaded", p.Name, name)
		}
		m = append(m, &mapping{from: name, to: name, into: name})
	}
	if t.c.db != "" {
		if len(m) > 1 {
			names := make([]string, len(m))
			for i := range m {
				names[i] = fmt.Sprintf("%q", m[i].from)
			}
			return nil, fmt.Errorf("the snapshot holds %d databases (%s), which load under their own names: give an address without a database, e.g. mysql://%s@%s/", len(m), strings.Join(names, ", "), t.c.user, t.c.addr())
		}
		m[0].to, m[0].into = t.c.db, t.c.db
	}
	return m, nil
}

// Load implements restore.Target. Every target database is checked, and
// created (or with Clean a new one made beside it), before anything is
// loaded.
func (t *Target) Load(ctx context.Context, r io.Reader, rep engine.Report) error {
	m, err := t.plan(rep.Parts)
	if err != nil {
		return err
	}
	t.loaded = m
	var spools []*os.File
	if t.opts.Mask != nil { // the whole stream is read and masked first
		if spools, err = t.maskAll(ctx, r, rep); err != nil {
			return err
		}
		defer func() {
			for _, f := range spools {
				f.Close()
			}
		}()
	}
	a, err := t.c.admin(ctx)
	if err != nil {
		return t.failed(ctx, err)
	}
	t.admin = a
	defer func() {
		if !t.pending() {
			t.release()
		}
	}()
	if !t.opts.TrustSnapshot {
		if n := a.sweepLoadAccounts(ctx); n > 0 {
			t.note("dropped %d load account(s) (coffer_load_…) that a killed restore had left on %s", n, t.c.addr())
		}
	}
	if err := t.prepare(ctx, a, m); err != nil {
		return t.failed(ctx, err)
	}
	if spools != nil {
		err = t.loadSpools(ctx, m, spools)
	} else {
		err = t.loadStream(ctx, m, r, rep.Parts)
	}
	if err != nil {
		return t.failed(ctx, err)
	}
	return nil
}

// loadSpools loads masked spools, one per database.
func (t *Target) loadSpools(ctx context.Context, m []*mapping, spools []*os.File) error {
	for i, x := range m {
		a, err := t.adminConn(ctx)
		if err == nil {
			err = t.loadOne(ctx, a, x, spools[i])
		}
		if err != nil {
			return fmt.Errorf("load database %q at %s: %w", x.to, t.c.addr(), err)
		}
	}
	return nil
}

// loadStream loads each database's dump as the stream brings it.
func (t *Target) loadStream(ctx context.Context, m []*mapping, r io.Reader, parts []engine.Part) error {
	i := 0
	return engine.Split(r, parts, func(_ engine.Part, pr io.Reader) error {
		x := m[i]
		i++
		a, err := t.adminConn(ctx)
		if err == nil {
			err = t.loadOne(ctx, a, x, pr)
		}
		if err != nil {
			return fmt.Errorf("load database %q at %s: %w", x.to, t.c.addr(), err)
		}
		return nil
	})
}

// failed undoes a failed Load at once and adds to its error what each
// target database holds now.
func (t *Target) failed(ctx context.Context, err error) error {
	state, uerr := t.undo(context.WithoutCancel(ctx))
	if uerr != nil {
		state = append(state, fmt.Sprintf("removing what the restore created failed: %v", uerr))
	}
	// Also in the notes: when the stream failed first (a damaged pack),
	// the caller reports its error, not this one.
	t.notes = append(t.notes, state...)
	if len(state) == 0 {
		return err
	}
	return fmt.Errorf("%w\n%s", err, strings.Join(state, "\n"))
}

// pending reports whether a loaded database awaits Commit or Abort.
func (t *Target) pending() bool {
	for _, x := range t.loaded {
		if x.swapping() {
			return true
		}
	}
	return false
}

func (t *Target) release() {
	t.dropReader(context.Background())
	if t.admin != nil {
		t.admin.close()
		t.admin = nil
	}
}

// prepare refuses databases with tables unless Clean, then creates the
// databases the load needs.
func (t *Target) prepare(ctx context.Context, a *admin, m []*mapping) error {
	var busy []string
	for _, x := range m {
		n, err := a.count(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", x.to)
		if err != nil {
			return fmt.Errorf("check database %q at %s: %w", x.to, t.c.addr(), err)
		}
		if x.exists = n > 0; n == 0 {
			continue
		}
		if n, err = a.count(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", x.to); err != nil {
			return fmt.Errorf("check database %q at %s: %w", x.to, t.c.addr(), err)
		}
		if n > 0 {
			busy = append(busy, fmt.Sprintf("%q (%d tables)", x.to, n))
			if t.opts.Clean {
				x.into = newDatabaseName(x.to, t.now())
			}
		}
	}
	if len(busy) > 0 && !t.opts.Clean {
		return fmt.Errorf("restore target %s: database %s is not empty; nothing was loaded: restore into another database, or pass --clean to replace it (it is kept until the snapshot is loaded and verified)", t, strings.Join(busy, ", "))
	}
	if !t.opts.TrustSnapshot {
		for _, x := range m {
			if !grantable(x.to) {
				return notGrantable(x.to)
			}
		}
	}
	for _, x := range m {
		if x.swapping() {
			t.sweepNew(ctx, a, x.to)
			if err := a.lock(ctx, newLock(x.into)); err != nil {
				return fmt.Errorf("new database %q for --clean at %s: %w; try again", x.into, t.c.addr(), err)
			}
		} else if x.exists {
			continue
		}
		if err := a.exec(ctx, "CREATE DATABASE "+quoteIdent(x.into)+" CHARACTER SET utf8mb4"); err != nil {
			return fmt.Errorf("create database %q at %s: %w", x.into, t.c.addr(), err)
		}
		x.created = true
	}
	return nil
}

func (a *admin) count(ctx context.Context, query string, args ...any) (int, error) {
	var n int
	err := a.conn.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// userConn is a connection to database db as the address's user; closing
// it closes its pool.
func (t *Target) userConn(ctx context.Context, db string) (*userConn, error) {
	p, err := t.c.openAs(ctx, t.c.user, t.c.password, db)
	if err != nil {
		return nil, err
	}
	c, err := p.Conn(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	return &userConn{Conn: c, pool: p}, nil
}

type userConn struct {
	*sql.Conn
	pool *sql.DB
}

func (c *userConn) Close() error {
	err := c.Conn.Close()
	c.pool.Close()
	return err
}

// loadOne loads one database's dump into x.into.
func (t *Target) loadOne(ctx context.Context, a *admin, x *mapping, r io.Reader) error {
	x.started = true
	if t.opts.TrustSnapshot {
		conn, err := t.userConn(ctx, x.into)
		if err != nil {
			return err
		}
		defer conn.Close()
		t.note("database %q was loaded with all the rights of user %q (--trust-snapshot), with the definers the snapshot names", x.to, t.c.user)
		return execDump(ctx, conn.Conn, x.from, r, false, t.insertCheck(x.from, x.into))
	}
	l, err := a.createLoadAccount(ctx, x.into)
	if err != nil {
		return err
	}
	defer func() { // on the admin connection, or a new one if a cancel broke it
		dctx := context.WithoutCancel(ctx)
		if b, err := t.adminConn(dctx); err == nil {
			b.dropLoadAccount(dctx, l)
		}
	}()
	db, err := t.c.openAs(ctx, l.user, l.password, x.into)
	if err != nil {
		return fmt.Errorf("connect as the load account %s: %w", l.sql(), err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var who string
	if err := conn.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&who); err != nil || who != l.definer() {
		return fmt.Errorf("the load account %s logged in as %q (%v): another account of the server matches first; remove it", l.sql(), who, err)
	}
	if err := execDump(ctx, conn, x.from, r, true, t.insertCheck(x.from, x.into)); err != nil {
		return err
	}
	conn.Close()
	n, err := a.adopt(ctx, x.into, l.account)
	if err != nil {
		return err
	}
	if n > 0 {
		t.note("the %d views, triggers, routines and events of database %q run as %s, a locked account that may use only that database; the definers the snapshot names were not applied (restore with --trust-snapshot to keep them)", n, x.to, definerFor(x.to).sql())
	}
	return nil
}

// Digests implements restore.Target: the digests of the loaded databases,
// under the names they have in the snapshot.
func (t *Target) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	if t.mv != nil {
		return t.maskedDigests(ctx)
	}
	m := t.loaded
	if m == nil {
		if t.c.db == "" {
			return nil, fmt.Errorf("restore target %s: nothing was loaded and the address names no database", t)
		}
		m = []*mapping{{from: t.c.db, to: t.c.db, into: t.c.db}}
	}
	dg := engine.NewDigester()
	for _, x := range m {
		c, err := t.digestConn(ctx, x.into)
		if err != nil {
			return nil, err
		}
		dump := engine.PartSource{Name: x.into, Open: func(ctx context.Context) (io.ReadCloser, error) {
			// Tables and views only: what the digests read.
			return c.startDump(ctx, t.t, x.into, x.from, dg, nil, "--skip-routines", "--skip-events", "--skip-triggers")
		}}
		if err := dump.Drain(ctx); err != nil {
			return nil, fmt.Errorf("digest database %q at %s: %w", x.into, t.c.addr(), err)
		}
	}
	return dg.Result(), nil
}

// Commit implements restore.Target: with Clean, each database loaded
// beside the one it replaces takes its place (see swap).
func (t *Target) Commit(ctx context.Context) ([]string, error) {
	defer t.release()
	var notes []string
	for _, x := range t.loaded {
		if !x.swapping() {
			continue
		}
		a, err := t.adminConn(ctx)
		if err != nil {
			return notes, err
		}
		n, err := t.swap(ctx, a, x)
		notes = append(notes, n...)
		if err != nil {
			return notes, err
		}
		x.into, x.created = x.to, false // it is in place now
	}
	return notes, nil
}

// Abort implements restore.Target: it drops the databases Load created,
// new ones beside a database to replace included, with their definer
// accounts. A database that existed is left as it is.
func (t *Target) Abort(ctx context.Context) error {
	state, err := t.undo(ctx)
	t.notes = append(t.notes, state...)
	return err
}

// undo drops what Load created and says what each database holds now.
func (t *Target) undo(ctx context.Context) ([]string, error) {
	defer t.release()
	var state []string
	var errs []error
	var left []*mapping // what could not be undone, for a later Abort
	for _, x := range t.loaded {
		if !x.created {
			switch {
			case x.started:
				state = append(state, fmt.Sprintf("database %q was empty before and may be partially loaded: drop it, or restore again with --clean", x.into))
			case t.opts.Clean: // nothing of it was replaced, or even read
				state = append(state, fmt.Sprintf("database %q is untouched", x.to))
			}
			continue
		}
		a, err := t.adminConn(ctx)
		if err == nil {
			err = a.exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(x.into))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drop database %q at %s: %w", x.into, t.c.addr(), err))
			state = append(state, fmt.Sprintf("database %q, created for this restore, could not be dropped: drop it yourself", x.into))
			left = append(left, x)
			continue
		}
		x.created = false
		errs = append(errs, a.dropDefiner(ctx, x.into))
		if x.swapping() {
			a.unlock(ctx, newLock(x.into))
			state = append(state, fmt.Sprintf("database %q is untouched; the partial new copy %q was dropped", x.to, x.into))
		} else {
			state = append(state, fmt.Sprintf("database %q, created for this restore, was dropped", x.into))
		}
	}
	t.loaded = left
	return state, errors.Join(errs...)
}

// adminConn is the admin connection Load kept, or a new one when there
// is none or it broke (a query cancelled with its context ends it).
func (t *Target) adminConn(ctx context.Context) (*admin, error) {
	if t.admin != nil && t.admin.conn.PingContext(ctx) != nil {
		t.release()
	}
	if t.admin == nil {
		a, err := t.c.admin(ctx)
		if err != nil {
			return nil, err
		}
		t.admin = a
	}
	return t.admin, nil
}
