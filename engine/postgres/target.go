package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
)

// Target is a PostgreSQL server that snapshots are restored into. The
// globals are applied first. A snapshot of one database is loaded into
// the address's database (or, without one, under its own name); a
// snapshot of several databases loads each under its own name, and the
// address's database is then only used to connect.
type Target struct {
	c      *conn
	clean  bool
	jobs   int
	t      *tools
	loaded []mapping
	// TempDir is where a dump is spooled for a parallel restore (the
	// system's temporary directory when empty).
	TempDir string
}

// mapping is a database of the snapshot and where it is loaded.
type mapping struct{ from, to string }

// NewTarget returns the target at dsn (postgres://USER@HOST:PORT/[DATABASE]).
// Databases that hold tables are refused, before anything is loaded,
// unless clean: then they are dropped and re-created. With jobs > 1 each
// dump is spooled to a private temporary file and restored by pg_restore
// with that many jobs.
func NewTarget(dsn string, opts TargetOptions) (*Target, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	return &Target{c: c, clean: opts.Clean, jobs: max(opts.Jobs, 1), TempDir: opts.TempDir}, nil
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
}

// Commit implements restore.Target.
func (t *Target) Commit(ctx context.Context) ([]string, error) { return nil, nil }

// Abort implements restore.Target.
func (t *Target) Abort(ctx context.Context) error { return nil }

// Notes implements restore.Target.
func (t *Target) Notes() []string { return nil }

// Engine implements restore.Target.
func (t *Target) Engine() string { return "postgres" }

// String names the target without secrets.
func (t *Target) String() string { return t.c.String() }

// plan maps the snapshot's database parts to target databases.
func (t *Target) plan(parts []engine.Part) ([]mapping, error) {
	var m []mapping
	for i, p := range parts {
		if p.Name == GlobalsPart && i == 0 {
			continue
		}
		name, ok := strings.CutSuffix(p.Name, partSuffix)
		if !ok || name == "" {
			return nil, fmt.Errorf("snapshot part %q is not a PostgreSQL dump (%s, then <database>%s)", p.Name, GlobalsPart, partSuffix)
		}
		m = append(m, mapping{from: name, to: name})
	}
	if len(m) == 0 {
		return nil, errors.New("the snapshot records no databases: restore it with --output and load it by hand")
	}
	if len(m) == 1 && t.c.db != "" {
		m[0].to = t.c.db
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
// before anything is loaded; each is created (with clean, re-created)
// just before its dump is loaded into it.
func (t *Target) Load(ctx context.Context, r io.Reader, rep engine.Report) error {
	m, err := t.plan(rep.Parts)
	if err != nil {
		return err
	}
	pc, err := t.admin(ctx)
	if err != nil {
		return err
	}
	srv, err := t.c.describe(ctx, pc)
	if err != nil {
		pc.Close(ctx)
		return err
	}
	exists, err := t.check(ctx, pc, m)
	pc.Close(ctx)
	if err != nil {
		return err
	}
	if t.t, err = findTools(ctx, srv.major, "pg_restore", "psql", "pg_dump"); err != nil {
		return err
	}
	t.loaded = m
	i := 0
	return engine.Split(r, rep.Parts, func(p engine.Part, pr io.Reader) error {
		if p.Name == GlobalsPart {
			if err := t.applyGlobals(ctx, pr); err != nil {
				return fmt.Errorf("apply the globals (roles, tablespaces) at %s: %w; no database was loaded", t.c.addr(), err)
			}
			return nil
		}
		x := m[i]
		i++
		return t.loadDatabase(ctx, srv, x, exists[x.to], pr)
	})
}

// check refuses, unless clean, target databases that hold tables, and
// says which exist.
func (t *Target) check(ctx context.Context, pc *pgx.Conn, m []mapping) (map[string]bool, error) {
	exists := map[string]bool{}
	var busy []string
	for _, x := range m {
		var n int
		if err := pc.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", x.to).Scan(&n); err != nil {
			return nil, fmt.Errorf("check database %q at %s: %w", x.to, t.c.addr(), err)
		}
		if n == 0 {
			continue
		}
		exists[x.to] = true
		if n, err := t.relations(ctx, x.to); err != nil {
			return nil, err
		} else if n > 0 {
			busy = append(busy, fmt.Sprintf("%q (%d tables, views or sequences)", x.to, n))
		}
	}
	if len(busy) > 0 && !t.clean {
		return nil, fmt.Errorf("restore target %s: database %s is not empty; nothing was loaded: restore into another database, or pass --clean to drop and re-create it", t, strings.Join(busy, ", "))
	}
	return exists, nil
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
	err = pc.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("check database %q at %s: %w", db, t.c.addr(), err)
	}
	return n, nil
}

// loadDatabase reads the dump's table of contents, (re-)creates the
// database as it was created at the source, and restores the dump.
func (t *Target) loadDatabase(ctx context.Context, srv *server, x mapping, exists bool, r io.Reader) error {
	// The header and TOC come first; keep the bytes read to replay them.
	var head bytes.Buffer
	a := newArchive(io.TeeReader(r, &head), x.from, engine.NewDigester())
	if err := a.readHeader(); err != nil {
		return fmt.Errorf("restore database %q: %w; nothing was loaded into %q", x.from, err, x.to)
	}
	if err := a.readTOC(); err != nil {
		return fmt.Errorf("restore database %q: %w; nothing was loaded into %q", x.from, err, x.to)
	}
	if err := t.create(ctx, srv, x.to, exists, a.entry("DATABASE")); err != nil {
		return err
	}
	r = io.MultiReader(&head, r)
	var err error
	if t.jobs > 1 {
		err = t.restoreSpooled(ctx, x.to, r)
	} else {
		err = t.restore(ctx, x.to, r, nil)
	}
	if err != nil {
		return fmt.Errorf("load database %q at %s: %w; it is partially loaded: drop it, or restore again with --clean", x.to, t.c.addr(), err)
	}
	return nil
}

// create drops (with clean) and creates database db with the options
// (template0, encoding, locale) the dump recorded.
func (t *Target) create(ctx context.Context, srv *server, db string, exists bool, e *tocEntry) error {
	if exists && !t.clean {
		return nil // empty: load into it as it is
	}
	pc, err := t.admin(ctx)
	if err != nil {
		return err
	}
	defer pc.Close(ctx)
	name := pgx.Identifier{db}.Sanitize()
	if exists {
		drop := "DROP DATABASE " + name
		if srv.major >= 13 {
			drop += " WITH (FORCE)"
		}
		if _, err := pc.Exec(ctx, drop); err != nil {
			return fmt.Errorf("drop database %q at %s for --clean: %w", db, t.c.addr(), err)
		}
	}
	opts := " WITH TEMPLATE = template0"
	if e != nil {
		opts = createOptions(e.defn, opts)
	}
	if _, err := pc.Exec(ctx, "CREATE DATABASE "+name+opts); err != nil {
		return fmt.Errorf("create database %q at %s: %w; nothing was loaded into it", db, t.c.addr(), err)
	}
	return nil
}

// createOptions takes the options of pg_dump's CREATE DATABASE statement,
// "CREATE DATABASE name WITH TEMPLATE = template0 ENCODING = … LOCALE = …;".
func createOptions(defn, fallback string) string {
	i := strings.Index(defn, " WITH TEMPLATE = template0")
	if !strings.HasPrefix(defn, "CREATE DATABASE ") || i < 0 {
		return fallback
	}
	opts, _, _ := strings.Cut(defn[i:], ";")
	return opts
}

// restoreSpooled writes the dump to a private temporary file, which
// pg_restore -j needs to read it in parallel, and removes it afterwards:
// it is customer data.
func (t *Target) restoreSpooled(ctx context.Context, db string, r io.Reader) error {
	dir, err := os.MkdirTemp(t.TempDir, "coffer-pg-restore-") // mode 0700
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "dump.pgdump")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool the dump to %s: %w", dir, err)
	}
	return t.restore(ctx, db, nil, []string{"--jobs=" + strconv.Itoa(t.jobs), path})
}

// restore runs pg_restore into db, reading the dump from r (or, with
// args, from the file they name).
func (t *Target) restore(ctx context.Context, db string, r io.Reader, args []string) error {
	argv := append([]string{"--exit-on-error", "--no-password", "--dbname=" + conninfoDB(db)}, args...)
	cmd := t.cmd(ctx, db, "pg_restore", argv...)
	stderr := command.NewTail(4096)
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	var in *command.Stdin
	if r != nil {
		// A stream that fails must not reach pg_restore as an end of
		// input: kill it first.
		in = command.NewStdin(r, cmd)
		cmd.Stdin = in
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pg_restore: %w", err)
	}
	err := cmd.Wait()
	if in != nil && in.Err() != nil {
		return in.Err()
	}
	return commandError("pg_restore", err, stderr.String())
}

func (t *Target) cmd(ctx context.Context, db, program string, args ...string) *exec.Cmd {
	return command.New(ctx, t.c.env(db), append([]string{t.t.path[program]}, args...)...)
}

func commandError(name string, err error, stderr string) error {
	if err == nil {
		return nil
	}
	if msg := strings.TrimSpace(stderr); msg != "" {
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// conninfoDB makes a database name safe as libpq's dbname argument,
// which would take a name with "=" or a URI prefix for a connection
// string.
func conninfoDB(db string) string {
	return "dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

// ignoredGlobalsError matches the errors of applying the globals to a
// server that already has some of them.
var ignoredGlobalsError = regexp.MustCompile(`ERROR:  (role|tablespace) "[^"]*" already exists$`)

// applyGlobals runs the globals script with psql. It runs on after an
// error (no ON_ERROR_STOP) so that roles the server already has do not
// fail the restore; any other error fails it. The statements about the
// connecting user are left out: restoring must not change the password
// or rights of the user doing it.
func (t *Target) applyGlobals(ctx context.Context, r io.Reader) error {
	script, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	script = dropRoleStatements(script, t.c.user)
	cmd := t.cmd(ctx, "postgres", "psql", "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=0", "--dbname="+conninfoDB("postgres"), "--file=-")
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(script), io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return commandError("psql", err, stderr.String())
	}
	var bad []string
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "ERROR:") && !ignoredGlobalsError.MatchString(line) {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
		}
		return fmt.Errorf("psql: %s", strings.Join(bad, "; "))
	}
	return nil
}

// dropRoleStatements removes pg_dumpall's one-line CREATE ROLE and ALTER
// ROLE statements about user.
func dropRoleStatements(script []byte, user string) []byte {
	names := []string{user, pgx.Identifier{user}.Sanitize()}
	var out bytes.Buffer
	for line := range bytes.Lines(script) {
		s := string(line)
		skip := false
		for _, n := range names {
			if strings.HasPrefix(s, "CREATE ROLE "+n+";") || strings.HasPrefix(s, "ALTER ROLE "+n+" WITH ") {
				skip = true
			}
		}
		if !skip {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// Digests implements restore.Target: the digests of the loaded
// databases, under the names they have in the snapshot.
func (t *Target) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	m := t.loaded
	if m == nil {
		if t.c.db == "" {
			return nil, fmt.Errorf("restore target %s: nothing was loaded and the address names no database", t)
		}
		m = []mapping{{from: t.c.db, to: t.c.db}}
	}
	if t.t == nil || t.t.path["pg_dump"] == "" {
		pc, err := t.c.connect(ctx, m[0].to)
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
	dg := engine.NewDigester()
	for _, x := range m {
		dump := engine.PartSource{Name: x.to, Open: func(ctx context.Context) (io.ReadCloser, error) {
			return startDump(ctx, t.c, t.t, x.to, x.from, dg, nil)
		}}
		if err := dump.Drain(ctx); err != nil {
			return nil, fmt.Errorf("digest database %q at %s: %w", x.to, t.c.addr(), err)
		}
	}
	return dg.Result(), nil
}
