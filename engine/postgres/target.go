package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
)

// Target is a PostgreSQL server that snapshots are restored into. A
// snapshot of one database is loaded into the address's database (or,
// without one, under its own name); a snapshot of several databases loads
// each under its own name, and the address's database is then only used
// to connect.
//
// A snapshot is treated as hostile: the backup host that wrote it may be
// the attacker. So, unless TargetOptions.TrustSnapshot:
//
//   - Nothing of it reaches psql or a shell. The globals (roles) are
//     applied only with TargetOptions.Globals, by coffer, from parsed
//     statements that create missing roles and never alter an existing
//     one or the connecting user (see applyGlobals).
//   - Each database is loaded by pg_restore logged in as a throwaway role,
//     coffer_load_<random>: LOGIN, not a superuser, without CREATEDB,
//     CREATEROLE, REPLICATION or BYPASSRLS, owner of the new database and
//     of nothing else, with a random password that only that pg_restore
//     gets. Whatever the archive runs (a function behind a materialized
//     view, COPY … TO PROGRAM, SET ROLE, ALTER SYSTEM, CREATE EXTENSION of
//     an untrusted extension, event triggers, DDL on other databases) runs
//     with those rights and fails the load, naming the TOC entry and the
//     remedy, --trust-snapshot.
//   - Owners and grants are then applied by coffer with statements it
//     builds from parsed values and quoted identifiers (applyOwnership),
//     never as a superuser's replay of archive text, and never making a
//     privileged role (roleSet.ownable) an owner; chooseOwner says who
//     owns the database. Settings the load gave the database are reset,
//     and every coffer session runs with search_path pg_catalog, pg_temp.
//   - With Clean a database is loaded beside the one it replaces, which
//     stays untouched until Commit swaps the names.
//
// With TrustSnapshot the snapshot is loaded as the connecting user, with
// the owners and grants it records, as pg_restore does; the globals are
// still only applied as above.
type Target struct {
	c     *conn
	opts  TargetOptions
	jobs  int
	stamp string // when the load started, in the names of kept and new databases

	t     *tools
	srv   *server
	roles roleSet   // the server's roles, kept up to date as Load creates some
	dbs   []*loadDB // what Load loads, in the snapshot's order

	created []createdRole // roles Load created, for Abort
	reader  *loadRole     // the role that reads what was loaded (reader.go)
	// noReader: reads run as the connecting user (noted once)
	noReader bool
	notes    []string
	mv       *maskVerify // what a masked load proves afterwards

	// TempDir is where a dump is spooled for a parallel restore (the
	// system's temporary directory when empty). The file is unlinked as
	// soon as it is opened.
	TempDir string
}

// loadDB is a database of the snapshot and where it is loaded.
type loadDB struct {
	from     string    // its name in the snapshot
	to       string    // its name on the target once committed
	into     string    // where it is loaded: to, or with Clean beside it
	exists   bool      // to existed before the load (empty, or replaced with Clean)
	created  bool      // Load created into: Abort drops it
	loaded   bool      // loaded completely
	oldOwner string    // the owner of the existing database to
	owner    string    // the owner the loaded database ends with
	load     *loadRole // the role loading it, until dropped
	settings []string  // with exists: its settings before the load (ALTER DATABASE … SET)
}

// replaces reports whether the database is loaded beside one that Commit
// replaces.
func (x *loadDB) replaces() bool { return x.into != x.to }

// NewTarget returns the target at dsn (postgres://USER@HOST:PORT/[DATABASE]).
// Databases that hold tables are refused, before anything is loaded,
// unless opts.Clean: then each is loaded into a new database beside it,
// and Commit swaps the two. With opts.Jobs > 1 each dump is spooled to an
// unlinked temporary file and restored by pg_restore with that many jobs.
func NewTarget(dsn string, opts TargetOptions) (*Target, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	switch opts.Globals {
	case "", "roles", "all":
	default:
		return nil, fmt.Errorf("globals %q: give roles (create the snapshot's missing roles, without SUPERUSER, REPLICATION or BYPASSRLS) or all (those attributes too)", opts.Globals)
	}
	if opts.DropOld && !opts.Clean {
		return nil, errors.New("dropping the old database (--drop-old) needs --clean: without it nothing is replaced")
	}
	c.password = opts.Password
	return &Target{c: c, opts: opts, jobs: max(opts.Jobs, 1), TempDir: opts.TempDir}, nil
}

// TargetOptions tune a Target; see restore.TargetOptions, which they mirror.
type TargetOptions struct {
	Clean, DropOld, Force bool
	Jobs                  int
	Globals               string // "", "roles" or "all"
	Owner                 string
	TrustSnapshot         bool
	Scratch               bool
	TempDir               string
	Password              string // the connecting user's, when not in the environment
	// Mask, when set, loads a masked copy (maskload.go).
	Mask *Masking
}

// Notes implements restore.Target: roles created, globals left out,
// owners and grants that could not be applied as the snapshot recorded.
func (t *Target) Notes() []string { return slices.Clone(t.notes) }

func (t *Target) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// Engine implements restore.Target.
func (t *Target) Engine() string { return "postgres" }

// String names the target without secrets.
func (t *Target) String() string { return t.c.String() }

// plan maps the snapshot's database parts to target databases.
func (t *Target) plan(parts []engine.Part) ([]*loadDB, error) {
	var m []*loadDB
	for i, p := range parts {
		if p.Name == GlobalsPart && i == 0 {
			continue
		}
		name, ok := strings.CutSuffix(p.Name, partSuffix)
		if !ok || name == "" {
			return nil, fmt.Errorf("snapshot part %q is not a PostgreSQL dump (%s, then <database>%s)", p.Name, GlobalsPart, partSuffix)
		}
		m = append(m, &loadDB{from: name, to: name, into: name})
	}
	if len(m) == 0 {
		return nil, errors.New("the snapshot records no databases: restore it with --output and load it by hand")
	}
	if len(m) == 1 && t.c.db != "" {
		m[0].to, m[0].into = t.c.db, t.c.db
	}
	seen := map[string]bool{}
	for _, x := range m {
		if seen[x.to] {
			return nil, fmt.Errorf("the snapshot holds database %q twice: restore it with --output and load it by hand", x.to)
		}
		seen[x.to] = true
		// A name the snapshot chose must not pick a template, which
		// every new database would copy (check refuses any database
		// that is a template on the target, too).
		if x.to == "template0" || x.to == "template1" {
			return nil, fmt.Errorf("the snapshot holds a database named %q, the server's template: restore it under another name (postgres://USER@HOST:PORT/NEWNAME, for a snapshot of one database)", x.to)
		}
	}
	return m, nil
}

// admin connects to a maintenance database, to create and drop others.
func (t *Target) admin(ctx context.Context) (*pgx.Conn, error) {
	pc, err := t.c.connect(ctx, "postgres")
	if err != nil && strings.Contains(err.Error(), `database "postgres" does not exist`) {
		pc, err = t.c.connect(ctx, "template1")
	}
	return pc, err
}

// Load implements restore.Target. Every target database is checked
// before anything is loaded; each is created just before its dump is
// loaded into it. On failure Load removes what it created (databases,
// roles) and its error says in what state it left each target database.
func (t *Target) Load(ctx context.Context, r io.Reader, rep engine.Report) (err error) {
	m, err := t.plan(rep.Parts)
	if err != nil {
		return err
	}
	t.stamp = time.Now().UTC().Format("20060102_150405")
	defer func() {
		// Failed before anything was created: say that nothing was touched.
		if err != nil && t.dbs == nil {
			err = fmt.Errorf("%w\n%s", err, untouched(m))
		}
	}()
	pc, err := t.admin(ctx)
	if err != nil {
		return err
	}
	defer pc.Close(context.WithoutCancel(ctx))
	if t.srv, err = t.c.describe(ctx, pc); err != nil {
		return err
	}
	if err := t.preflight(ctx, pc); err != nil {
		return err
	}
	if err := t.check(ctx, pc, m); err != nil {
		return err
	}
	for _, x := range m {
		// Held until Load ends: tells other coffer processes that what
		// is loaded into x.into is not a killed restore's leftover.
		if _, err := pc.Exec(ctx, "SELECT pg_catalog.pg_advisory_lock($1)", restoreLockKey(x.into)); err != nil {
			return fmt.Errorf("restore target %s: lock database %q for the load: %w", t, x.into, err)
		}
	}
	if t.t, err = findTools(ctx, t.srv.major, "pg_restore", "pg_dump"); err != nil {
		return err
	}
	t.dbs = m
	defer func() {
		if err != nil {
			err = t.failed(context.WithoutCancel(ctx), err)
		}
	}()
	i := 0
	return engine.Split(r, rep.Parts, func(p engine.Part, pr io.Reader) error {
		if p.Name == GlobalsPart {
			return t.applyGlobals(ctx, pc, pr)
		}
		x := m[i]
		i++
		return t.loadDatabase(ctx, pc, x, pr)
	})
}

// untouched says that the databases m would load into were not changed.
func untouched(m []*loadDB) string {
	names := make([]string, len(m))
	for i, x := range m {
		names[i] = fmt.Sprintf("%q", x.to)
	}
	return fmt.Sprintf("nothing was changed on the server: database %s %s untouched", strings.Join(names, ", "), isAre(len(m)))
}

// check refuses, unless clean, target databases that hold tables, and
// plans where each database is loaded: into a new database beside one
// that Clean replaces.
func (t *Target) check(ctx context.Context, pc *pgx.Conn, m []*loadDB) error {
	var busy []string
	for _, x := range m {
		var n int
		var template bool
		var owner string
		err := pc.QueryRow(ctx, `SELECT count(*), coalesce(bool_or(datistemplate), false), coalesce(max(pg_get_userbyid(datdba)), '')
			FROM pg_catalog.pg_database WHERE datname = $1`, x.to).Scan(&n, &template, &owner)
		if err != nil {
			return fmt.Errorf("check database %q at %s: %w", x.to, t.c.addr(), err)
		}
		if n == 0 {
			continue
		}
		if template {
			return fmt.Errorf("restore target %s: database %q is a template; nothing was loaded: restore into another database", t, x.to)
		}
		if !t.opts.Clean && strings.HasPrefix(owner, loadRolePrefix) {
			// Still owned by a load role: the partial load of a killed
			// restore into a new database, unless a restore still runs.
			dropped, err := t.dropKilled(ctx, pc, x.to, owner)
			if err != nil {
				return fmt.Errorf("restore target %s: %w; nothing was loaded", t, err)
			}
			if dropped {
				continue
			}
		}
		x.exists, x.oldOwner = true, owner
		rels, err := t.relations(ctx, x.to)
		if err != nil {
			return err
		}
		switch {
		case t.opts.Clean:
			if err := t.sweepKilled(ctx, pc, x.to); err != nil {
				return fmt.Errorf("restore target %s: %w; nothing was loaded", t, err)
			}
			if x.into, err = freeName(ctx, pc, x.to, "_coffer_new_"+t.stamp); err != nil {
				return fmt.Errorf("restore target %s: %w; nothing was loaded", t, err)
			}
		case rels > 0:
			busy = append(busy, fmt.Sprintf("%q (%d tables, views or sequences)", x.to, rels))
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("restore target %s: database %s is not empty; nothing was loaded: restore into another database, or pass --clean to replace it (the old one is kept until the new one is verified)", t, strings.Join(busy, ", "))
	}
	return nil
}

// freeName is name with suffix (suffixed), or with suffix_2, suffix_3…
// when a database has that name.
func freeName(ctx context.Context, pc *pgx.Conn, name, suffix string) (string, error) {
	for i := 1; i <= 9; i++ {
		s := suffix
		if i > 1 {
			s += "_" + strconv.Itoa(i)
		}
		cand := suffixed(name, s)
		var taken bool
		if err := pc.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)", cand).Scan(&taken); err != nil {
			return "", fmt.Errorf("check database %q: %w", cand, err)
		}
		if !taken {
			return cand, nil
		}
	}
	return "", fmt.Errorf("databases %q and 8 more like it exist: drop those you do not need", suffixed(name, suffix))
}

// relations counts the tables, views and sequences of db outside the
// system schemas.
func (t *Target) relations(ctx context.Context, db string) (int, error) {
	pc, err := t.c.connect(ctx, db)
	if err != nil {
		return 0, err
	}
	defer pc.Close(ctx)
	var n int
	err = pc.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("check database %q at %s: %w", db, t.c.addr(), err)
	}
	return n, nil
}

// Digests implements restore.Target: the digests of the loaded
// databases (with Clean, of the new copies), under the names they have in
// the snapshot.
func (t *Target) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	m := t.dbs
	if m == nil {
		if t.c.db == "" {
			return nil, fmt.Errorf("restore target %s: nothing was loaded and the address names no database", t)
		}
		m = []*loadDB{{from: t.c.db, to: t.c.db, into: t.c.db}}
	}
	if t.t == nil || t.t.path["pg_dump"] == "" {
		pc, err := t.c.connect(ctx, m[0].into)
		if err != nil {
			return nil, err
		}
		srv, err := t.c.describe(ctx, pc)
		pc.Close(ctx)
		if err != nil {
			return nil, err
		}
		if t.t, err = findTools(ctx, srv.major, "pg_dump"); err != nil {
			return nil, err
		}
	}
	if t.opts.Mask != nil {
		return t.maskedDigests(ctx, m)
	}
	dg := engine.NewDigester()
	for _, x := range m {
		env, err := t.readerEnv(ctx, x.into)
		if err != nil {
			return nil, err
		}
		dump := engine.PartSource{Name: x.into, Open: func(ctx context.Context) (io.ReadCloser, error) {
			return startDump(ctx, t.c, t.t, x.into, x.from, dg, nil, env, "--no-blobs")
		}}
		if err := dump.Drain(ctx); err != nil {
			return nil, fmt.Errorf("digest database %q at %s: %w", x.into, t.c.addr(), err)
		}
	}
	return dg.Result(), nil
}
