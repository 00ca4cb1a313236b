package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
)

// The tests in this file load snapshots written by an attacker who holds
// the backup host: real pg_dump archives, changed where an attacker
// would change them (a TOC entry's SQL), or made at a source where the
// attacker could create objects. Each runs the attack and checks that
// the harm did not happen.

// rawStr is a string of the archive format, which may be null.
type rawStr struct {
	s    string
	null bool
}

// rawEntry is every field of a TOC entry, to write it back.
type rawEntry struct {
	id, hadDumper                    int64
	tableoid, oid, tag, desc         rawStr
	section                          int64
	defn, drop, copy, ns, tablespace rawStr
	tableam                          rawStr // from 1.14
	relkind                          int64  // from 1.16
	owner, withOids                  rawStr
	deps                             []string
	flag                             byte
	off                              []byte
}

// rewriteTOC decodes the TOC of a custom-format archive written to a pipe
// (no data offsets), lets edit change it, and encodes it again in front of
// the unchanged data blocks.
func rewriteTOC(t testing.TB, archive []byte, edit func([]*rawEntry) []*rawEntry) []byte {
	t.Helper()
	a := newArchive(bytes.NewReader(archive), "x", engine.NewDigester())
	if err := a.readHeader(); err != nil {
		t.Fatal(err)
	}
	start := a.offset()
	r := &tocCodec{b: archive[start:], intSize: a.intSize}
	var entries []*rawEntry
	n := r.int()
	for range n {
		e := &rawEntry{id: r.int(), hadDumper: r.int()}
		e.tableoid, e.oid, e.tag, e.desc = r.str(), r.str(), r.str(), r.str()
		e.section = r.int()
		e.defn, e.drop, e.copy, e.ns, e.tablespace = r.str(), r.str(), r.str(), r.str(), r.str()
		if a.version >= version1_14 {
			e.tableam = r.str()
		}
		if a.version >= version1_16 {
			e.relkind = r.int()
		}
		e.owner, e.withOids = r.str(), r.str()
		for {
			d := r.str()
			if d.null {
				break
			}
			e.deps = append(e.deps, d.s)
		}
		e.flag = r.b[0]
		e.off = r.b[1 : 1+a.offSize]
		r.b = r.b[1+a.offSize:]
		if e.flag == offsetSet {
			t.Fatal("the archive has data offsets: rewrite only archives written to a pipe")
		}
		entries = append(entries, e)
	}
	data := r.b
	entries = edit(entries)
	w := &tocCodec{intSize: a.intSize}
	w.out.Write(archive[:start])
	w.putInt(int64(len(entries)))
	for _, e := range entries {
		w.putInt(e.id)
		w.putInt(e.hadDumper)
		for _, s := range []rawStr{e.tableoid, e.oid, e.tag, e.desc} {
			w.putStr(s)
		}
		w.putInt(e.section)
		for _, s := range []rawStr{e.defn, e.drop, e.copy, e.ns, e.tablespace} {
			w.putStr(s)
		}
		if a.version >= version1_14 {
			w.putStr(e.tableam)
		}
		if a.version >= version1_16 {
			w.putInt(e.relkind)
		}
		w.putStr(e.owner)
		w.putStr(e.withOids)
		for _, d := range e.deps {
			w.putStr(rawStr{s: d})
		}
		w.putStr(rawStr{null: true})
		w.out.WriteByte(e.flag)
		w.out.Write(e.off)
	}
	w.out.Write(data)
	return w.out.Bytes()
}

type tocCodec struct {
	b       []byte
	out     bytes.Buffer
	intSize int
}

func (c *tocCodec) int() int64 {
	sign := c.b[0]
	var v int64
	for i := range c.intSize {
		v |= int64(c.b[1+i]) << (8 * i)
	}
	c.b = c.b[1+c.intSize:]
	if sign == 1 {
		return -v
	}
	return v
}

func (c *tocCodec) str() rawStr {
	n := c.int()
	if n < 0 {
		return rawStr{null: true}
	}
	s := string(c.b[:n])
	c.b = c.b[n:]
	return rawStr{s: s}
}

func (c *tocCodec) putInt(v int64) {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	c.out.WriteByte(sign)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	c.out.Write(b[:c.intSize])
}

func (c *tocCodec) putStr(s rawStr) {
	if s.null {
		c.putInt(-1)
		return
	}
	c.putInt(int64(len(s.s)))
	c.out.WriteString(s.s)
}

// replacePart returns the stream with part name changed by fn, and the
// report with the parts' new places.
func replacePart(t testing.TB, stream []byte, rep engine.Report, name string, fn func([]byte) []byte) ([]byte, engine.Report) {
	t.Helper()
	var out bytes.Buffer
	var parts []engine.Part
	found := false
	for _, p := range rep.Parts {
		b := stream[p.Offset : p.Offset+p.Size]
		if p.Name == name {
			b, found = fn(b), true
		}
		parts = append(parts, engine.Part{Name: p.Name, Offset: int64(out.Len()), Size: int64(len(b))})
		out.Write(b)
	}
	if !found {
		t.Fatalf("no part %s in %+v", name, rep.Parts)
	}
	rep.Parts = parts
	return out.Bytes(), rep
}

// hostileSource is a small database with a commented table: the attacks
// put their SQL in the comment's TOC entry, where pg_restore runs it.
func hostileSource(t testing.TB) (string, []byte, engine.Report) {
	t.Helper()
	src := createDatabase(t, "hsrc", "")
	run(t, src, `CREATE TABLE public.t (id int PRIMARY KEY, v text);
		INSERT INTO public.t SELECT i, 'row ' || i FROM generate_series(1, 500) i;
		COMMENT ON TABLE public.t IS 'to be replaced'`)
	stream, rep := backup(t, dsn(src), Options{})
	return src, stream, rep
}

// inject makes the snapshot's COMMENT entry run sql instead.
func inject(t testing.TB, src string, stream []byte, rep engine.Report, sql string) ([]byte, engine.Report) {
	t.Helper()
	return replacePart(t, stream, rep, src+partSuffix, func(b []byte) []byte {
		return rewriteTOC(t, b, func(es []*rawEntry) []*rawEntry {
			for _, e := range es {
				if e.desc.s == "COMMENT" && e.tag.s == "TABLE t" {
					e.defn = rawStr{s: sql + "\n"}
					return es
				}
			}
			t.Fatal("no COMMENT entry for table t")
			return nil
		})
	})
}

// canaryDir is a directory the server (user postgres) can write to.
func canaryDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "coffer-canary-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// load runs Load as restore.ToDatabase would, with Abort after a failure.
func load(t testing.TB, target string, opts TargetOptions, stream []byte, rep engine.Report) (*Target, error) {
	t.Helper()
	tg, err := NewTarget(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Load(context.Background(), bytes.NewReader(stream), rep)
	if err != nil {
		if aerr := tg.Abort(context.Background()); aerr != nil {
			t.Errorf("Abort: %v", aerr)
		}
	}
	return tg, err
}

// noLeftovers checks that a failed load left neither the database nor
// a role created for it.
func noLeftovers(t testing.TB, db string) {
	t.Helper()
	var dbs, roles int
	err := connect(t, "postgres").QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_database WHERE datname = $1),
		(SELECT count(*) FROM pg_shdescription WHERE description LIKE '% role for ' || $1)`, db).Scan(&dbs, &roles)
	if err != nil {
		t.Fatal(err)
	}
	if dbs != 0 || roles != 0 {
		t.Fatalf("after the failed load of %s: %d databases and %d roles made for it remain", db, dbs, roles)
	}
}

func mustSay(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the load succeeded; want a failure saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not say %q:\n%v", p, err)
		}
	}
}

func newRole(t testing.TB, prefix, attrs string) string {
	t.Helper()
	name := uniqueName(prefix)
	run(t, "postgres", "CREATE ROLE "+name+" "+attrs)
	t.Cleanup(func() {
		pc, err := pgx.Connect(context.Background(), dsn("postgres"))
		if err == nil {
			pc.Exec(context.Background(), "DROP ROLE IF EXISTS "+name)
			pc.Close(context.Background())
		}
	})
	return name
}

// TestHostileArchiveSQL: SQL the attacker put in the archive runs as the
// load role and fails the load, naming the TOC entry and --trust-snapshot.
func TestHostileArchiveSQL(t *testing.T) {
	src, stream, rep := hostileSource(t)
	victim := newRole(t, "victim", "NOSUPERUSER")
	other := createDatabase(t, "other", "")
	canary := filepath.Join(canaryDir(t), "canary")
	ctx := context.Background()
	for _, tc := range []struct {
		name, sql string
		jobs      int
		say       string // the server's refusal
		harm      func() string
	}{
		{name: "set role", sql: "RESET ROLE; SET ROLE postgres; ALTER ROLE " + victim + " SUPERUSER;", say: "permission denied to set role",
			harm: func() string {
				var super bool
				connect(t, "postgres").QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", victim).Scan(&super)
				return map[bool]string{true: victim + " is a superuser"}[super]
			}},
		{name: "set session authorization", sql: "SET SESSION AUTHORIZATION postgres; ALTER ROLE " + victim + " SUPERUSER;", say: "permission denied to set session authorization"},
		{name: "copy to program", sql: "COPY (SELECT 1) TO PROGRAM 'touch " + canary + "';", say: "COPY to or from an external program",
			harm: func() string { return map[bool]string{true: "the canary exists"}[exists(canary)] }},
		{name: "untrusted extension", sql: "CREATE EXTENSION file_fdw SCHEMA public;", say: "permission denied to create extension"},
		{name: "alter system", sql: "ALTER SYSTEM SET work_mem = '77MB';", jobs: 2, say: `permission denied to set parameter "work_mem"`,
			harm: func() string {
				var n int
				connect(t, "postgres").QueryRow(ctx, "SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem' AND setting = '77MB'").Scan(&n)
				return map[bool]string{true: "postgresql.auto.conf was changed"}[n > 0]
			}},
		{name: "lo_import", sql: "SELECT lo_import('/etc/hostname');", say: "permission denied for function lo_import"},
		{name: "connect", sql: `\connect ` + other + "\nCREATE TABLE public.hacked (i int);", say: "syntax error",
			harm: func() string {
				var n int
				connect(t, other).QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'hacked'").Scan(&n)
				return map[bool]string{true: "a table was created in " + other}[n > 0]
			}},
		{name: "event trigger", sql: "CREATE FUNCTION public.et() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$; CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION public.et();",
			jobs: 2, say: "permission denied to create event trigger"},
		{name: "other database", sql: "ALTER DATABASE " + other + " RENAME TO hacked_" + other + ";", jobs: 2, say: "must be owner of database",
			harm: func() string {
				var n int
				connect(t, "postgres").QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", other).Scan(&n)
				return map[bool]string{true: other + " was renamed"}[n == 0]
			}},
		{name: "drop other database", sql: "DROP DATABASE " + other + ";", jobs: 2, say: "must be owner of database"},
		{name: "cross-database table", sql: "CREATE TABLE " + other + ".public.hacked (i int);", say: "cross-database references are not implemented"},
		{name: "alter existing role", sql: "ALTER ROLE " + victim + " PASSWORD 'x' CONNECTION LIMIT 1;", say: "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := inject(t, src, stream, rep, tc.sql)
			target := newDatabase(t, "hostile")
			_, err := load(t, dsn(target), TargetOptions{Jobs: max(tc.jobs, 1)}, s, r)
			mustSay(t, err, `COMMENT "public.TABLE t" (TOC entry`, tc.say, "--trust-snapshot", "was dropped")
			noLeftovers(t, target)
			if tc.harm != nil {
				if h := tc.harm(); h != "" {
					t.Fatal(h)
				}
			}
		})
	}

	// The same injection runs, as the trusted load it is, with
	// TrustSnapshot: the attacks above failed because of the load role.
	t.Run("control", func(t *testing.T) {
		s, r := inject(t, src, stream, rep, "COPY (SELECT 1) TO PROGRAM 'touch "+canary+"';")
		target := newDatabase(t, "trusted")
		if _, err := load(t, dsn(target), TargetOptions{Jobs: 1, TrustSnapshot: true}, s, r); err != nil {
			t.Fatal(err)
		}
		if !exists(canary) {
			t.Fatal("the injected SQL did not run with TrustSnapshot: the attacks above prove nothing")
		}
		os.Remove(canary)
	})
}

// evilSource is a database whose materialized view calls a function that
// runs a program on the server, created (and refreshed, so the canary is
// made once) by a superuser at the source, as a hostile tenant's
// superuser or a replaced pg_dump could.
func evilSource(t testing.TB, canary string) (string, []byte, engine.Report) {
	t.Helper()
	src := createDatabase(t, "evil", "")
	run(t, src, `CREATE TABLE public.customers (id int PRIMARY KEY, name text);
		INSERT INTO public.customers SELECT i, 'customer ' || i FROM generate_series(1, 100) i;
		CREATE FUNCTION public.payload() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN COPY (SELECT 1) TO PROGRAM 'cat > `+canary+`'; RETURN 1; END $$;
		CREATE MATERIALIZED VIEW public.report AS SELECT public.payload() AS x`)
	if !exists(canary) {
		t.Fatal("the payload did not run at the source")
	}
	os.Remove(canary)
	stream, rep := backup(t, dsn(src), Options{})
	return src, stream, rep
}

// TestHostileMatviewPayload: a materialized view whose refresh runs a
// program does not run it when restored, nor when drilled (Scratch), by
// a superuser; the load fails naming the view and --trust-snapshot.
func TestHostileMatviewPayload(t *testing.T) {
	canary := filepath.Join(canaryDir(t), "canary")
	_, stream, rep := evilSource(t, canary)
	for _, tc := range []struct {
		name string
		opts TargetOptions
	}{
		{"restore", TargetOptions{Jobs: 1}},
		{"restore -j 2", TargetOptions{Jobs: 2}},
		{"drill scratch", TargetOptions{Jobs: 1, Scratch: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newDatabase(t, "mv")
			_, err := load(t, dsn(target), tc.opts, stream, rep)
			mustSay(t, err, `MATERIALIZED VIEW DATA "public.report"`, "external program", "--trust-snapshot")
			if exists(canary) {
				t.Fatal("the payload ran on the server")
			}
			noLeftovers(t, target)
		})
	}
}

// TestHostileCreateDatabaseName: a database whose name holds CREATE
// DATABASE options is restored owned as coffer decides, not by the
// role its name names.
func TestHostileCreateDatabaseName(t *testing.T) {
	evil := "coffer_evil_" + randomHex(2)
	run(t, "postgres", "CREATE ROLE "+evil+" NOSUPERUSER NOLOGIN")
	t.Cleanup(func() { run(t, "postgres", "DROP ROLE IF EXISTS "+evil) })
	name := "s WITH TEMPLATE = template0 OWNER = " + evil + " --" + randomHex(3)
	t.Cleanup(func() { dropDatabase(name) })
	run(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	run(t, url.PathEscape(name), "CREATE TABLE t (i int); INSERT INTO t VALUES (1)")
	stream, rep := backup(t, testServer+"postgres", Options{Databases: []string{name}})
	if err := dropDatabase(name); err != nil {
		t.Fatal(err)
	}
	restoreWith(t, testServer, TargetOptions{Jobs: 1}, stream, rep)
	var owner string
	if err := connect(t, "postgres").QueryRow(context.Background(), "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner == evil {
		t.Fatalf("database %q is owned by %s", name, evil)
	}
}

// TestHostileSpoolUnlinked: the spool of a parallel restore is never
// visible in the file system, even while pg_restore reads it.
func TestHostileSpoolUnlinked(t *testing.T) {
	stream, rep := backup(t, dsn(fixture(t)), Options{})
	tmp := t.TempDir()
	target := newDatabase(t, "spool")
	tg, err := NewTarget(dsn(target), TargetOptions{Jobs: 2, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	// The stream stops halfway while pg_restore runs: look then.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- tg.Load(context.Background(), pr, rep) }()
	half := len(stream) / 2
	pw.Write(stream[:half])
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("while spooling, %s holds %v", tmp, left)
	}
	pw.Write(stream[half:])
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("after the restore, %s holds %v", tmp, left)
	}
	if _, err := tg.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestHostileDatabaseSettings: settings the load gives the database
// (ALTER DATABASE … SET), which would steer every later session into it,
// coffer's own and an operator's superuser session included, are reset
// before coffer connects to it.
func TestHostileDatabaseSettings(t *testing.T) {
	src, stream, rep := hostileSource(t)
	s, r := inject(t, src, stream, rep, `DO $$ BEGIN
		EXECUTE pg_catalog.format('ALTER DATABASE %I SET search_path = public, pg_catalog', pg_catalog.current_database());
		EXECUTE pg_catalog.format('ALTER DATABASE %I SET role = %L', pg_catalog.current_database(), current_user);
		END $$;`)
	target := newDatabase(t, "settings")
	tg, err := load(t, dsn(target), TargetOptions{Jobs: 1}, s, r)
	if err != nil {
		t.Fatal(err)
	}
	var settings string
	if err := connect(t, "postgres").QueryRow(context.Background(), `SELECT coalesce((SELECT setconfig::text FROM pg_db_role_setting
		WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = $1)), '')`, target).Scan(&settings); err != nil {
		t.Fatal(err)
	}
	if settings != "" {
		t.Fatalf("database %s keeps the settings %s", target, settings)
	}
	if notes := strings.Join(tg.Notes(), "\n"); !strings.Contains(notes, "search_path=public, pg_catalog") {
		t.Fatalf("notes do not say what was reset:\n%s", notes)
	}
}
