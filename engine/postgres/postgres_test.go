package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
)

// The tests use the PostgreSQL server of the development and CI machines
// (DESIGN.md): 127.0.0.1:5432, user postgres, trust authentication. They
// create uniquely named databases and drop them.
const testServer = "postgres://postgres@127.0.0.1:5432/"

func dsn(db string) string { return testServer + db }

var (
	fixtureOnce sync.Once
	fixtureDB   string
	fixtureErr  error
	toDrop      sync.Map
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDB != "" {
		dropDatabase(fixtureDB)
	}
	os.Exit(code)
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "coffer_pg_" + prefix + "_" + hex.EncodeToString(b)
}

func connect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgx.Connect(ctx, dsn(db))
	if err != nil {
		t.Fatalf("PostgreSQL is needed at 127.0.0.1:5432 (user postgres, trust authentication): %v\n"+
			"start it (e.g. `service postgresql start`) and run the tests again", err)
	}
	t.Cleanup(func() { pc.Close(context.Background()) })
	return pc
}

func run(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	if _, err := connect(t, db).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", firstLine(sql), err)
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l }

func dropDatabase(db string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgx.Connect(ctx, dsn("postgres"))
	if err != nil {
		return err
	}
	defer pc.Close(ctx)
	// With it, the copies a --clean restore into it kept.
	rows, err := pc.Query(ctx, `SELECT datname FROM pg_database WHERE datname = $1
		OR starts_with(datname, $1 || '_coffer_new_') OR starts_with(datname, $1 || '_before_')`, db)
	if err != nil {
		return err
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, d := range dbs {
		if _, err = pc.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	return dropCofferRoles(ctx, pc, db)
}

// dropCofferRoles drops the roles a restore into db created for it
// (coffer_owner_…, scratch roles), found by their comments.
func dropCofferRoles(ctx context.Context, pc *pgx.Conn, db string) error {
	rows, err := pc.Query(ctx, `SELECT r.rolname FROM pg_roles r JOIN pg_shdescription d ON d.objoid = r.oid
		WHERE d.description IN ($1, $2, $3) AND NOT r.rolsuper`, ownerComment+db, scratchComment+db, loadComment+db)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := pc.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{n}.Sanitize()); err != nil {
			return fmt.Errorf("drop role %s: %w", n, err)
		}
	}
	return nil
}

// newDatabase names a database that the test's cleanup drops; create
// creates it empty, or as a copy of template.
func newDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

func createDatabase(t testing.TB, prefix, template string) string {
	t.Helper()
	name := newDatabase(t, prefix)
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	run(t, "postgres", sql)
	return name
}

// customerSchema is a synthetic customer database: 210,200 rows over four
// tables, with NULLs, unicode, tabs, newlines and backslashes, bytea,
// TOASTed text, a sequence, a view, a function, a procedure, a trigger, an
// empty table and a large object.
const customerSchema = `
CREATE SCHEMA shop;
CREATE SEQUENCE shop.invoice_no START 1000;
CREATE TABLE shop.customers (
	id bigserial PRIMARY KEY, name text NOT NULL, email text, phone text, address text,
	notes text, created_at timestamptz NOT NULL, updated_at timestamptz);
CREATE TABLE shop.orders (
	id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customers,
	total numeric(12,2), status text, placed_at timestamptz, invoice bigint DEFAULT nextval('shop.invoice_no'));
CREATE TABLE shop.payments (
	id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES shop.orders, amount numeric(12,2),
	method text, receipt bytea, paid_at timestamptz);
CREATE TABLE shop.documents (id serial PRIMARY KEY, customer_id bigint, body text, scan bytea);
ALTER TABLE shop.documents ALTER body SET STORAGE EXTERNAL;
CREATE TABLE public.empty_table (id int, note text);
CREATE VIEW shop.order_totals AS
	SELECT customer_id, count(*) AS orders, sum(total) AS total FROM shop.orders GROUP BY customer_id;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON shop.customers FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE PROCEDURE shop.place_order(c bigint, amount numeric) LANGUAGE sql AS
	$$ INSERT INTO shop.orders (customer_id, total, status, placed_at) VALUES (c, amount, 'new', now()) $$;
INSERT INTO shop.customers (name, email, phone, address, notes, created_at)
	SELECT 'Customer ' || i || CASE WHEN i % 7 = 0 THEN ' Zoë Ångström 東京 🙂' ELSE '' END,
		CASE WHEN i % 10 = 0 THEN NULL ELSE 'c' || i || '@example.com' END,
		'+1-555-' || lpad((i % 10000)::text, 4, '0'),
		i || E' Main St\nSpringfield',
		CASE WHEN i % 3 = 0 THEN NULL ELSE E'tab\there, back\\slash' END,
		timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
	FROM generate_series(1, 50000) i;
INSERT INTO shop.orders (customer_id, total, status, placed_at)
	SELECT 1 + i % 50000, (i % 100000) / 100.0, (ARRAY['new', 'paid', 'shipped'])[1 + i % 3],
		timestamptz '2024-02-01 00:00:00+00' + i * interval '1 second'
	FROM generate_series(1, 100000) i;
INSERT INTO shop.payments (order_id, amount, method, receipt, paid_at)
	SELECT i, (i % 100000) / 100.0, CASE WHEN i % 5 = 0 THEN NULL ELSE 'card' END,
		decode(md5(i::text), 'hex'), timestamptz '2024-02-01 00:00:00+00' + i * interval '2 seconds'
	FROM generate_series(1, 60000) i;
INSERT INTO shop.documents (customer_id, body, scan)
	SELECT i, repeat('Lorem ipsum dolor sit amet ' || i || ' ', 500), decode(repeat(md5(i::text), 100), 'hex')
	FROM generate_series(1, 200) i;
SELECT lo_from_bytea(0, 'a large object, skipped by the digests');
ANALYZE;
`

// fixture is the customer database, made once for all tests. Tests that
// change it work on a copy (copyFixture).
func fixture(t testing.TB) string {
	t.Helper()
	connect(t, "postgres") // fails with instructions when there is no server
	fixtureOnce.Do(func() {
		name := uniqueName("fixture")
		ctx := context.Background()
		pc, err := pgx.Connect(ctx, dsn("postgres"))
		if err != nil {
			fixtureErr = err
			return
		}
		defer pc.Close(ctx)
		if _, fixtureErr = pc.Exec(ctx, "CREATE DATABASE "+name); fixtureErr != nil {
			return
		}
		fixtureDB = name
		db, err := pgx.Connect(ctx, dsn(name))
		if err != nil {
			fixtureErr = err
			return
		}
		defer db.Close(ctx)
		_, fixtureErr = db.Exec(ctx, customerSchema)
	})
	if fixtureErr != nil {
		t.Fatalf("create the customer database: %v", fixtureErr)
	}
	return fixtureDB
}

func copyFixture(t testing.TB, prefix string) string {
	t.Helper()
	return createDatabase(t, prefix, fixture(t))
}

// backup dumps opts' databases of dsn through a Source, as a backup reads
// it, and returns the stream and the report the snapshot would keep.
func backup(t testing.TB, dsn string, opts Options) ([]byte, engine.Report) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := engine.NewConcat(ctx, s.Parts()...)
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	rep := s.Report()
	rep.Parts = c.Parts()
	return b, rep
}

// restore loads stream into target as restore.ToDatabase does: Load,
// Digests, then Commit (with clean, dropping the replaced database).
func restore(t testing.TB, target string, clean bool, jobs int, stream []byte, rep engine.Report) []engine.TableDigest {
	t.Helper()
	return restoreWith(t, target, TargetOptions{Clean: clean, DropOld: clean, Jobs: jobs}, stream, rep)
}

func restoreWith(t testing.TB, target string, opts TargetOptions, stream []byte, rep engine.Report) []engine.TableDigest {
	t.Helper()
	ctx := context.Background()
	tg, err := NewTarget(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Load(ctx, bytes.NewReader(stream), rep); err != nil {
		tg.Abort(ctx)
		t.Fatal(err)
	}
	got, err := tg.Digests(ctx)
	if err != nil {
		tg.Abort(ctx)
		t.Fatal(err)
	}
	notes, err := tg.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(tg.Notes(), notes...) {
		t.Log("note: " + n)
	}
	return got
}

func mustMatch(t testing.TB, want, got []engine.TableDigest) {
	t.Helper()
	if r := engine.Compare(want, got); !engine.AllMatch(r) {
		t.Fatalf("digests differ: %+v", r)
	}
}

func rows(rep engine.Report) int64 {
	var n int64
	for _, d := range rep.Tables {
		n += d.Rows
	}
	return n
}

func TestBackupRestore(t *testing.T) {
	src := fixture(t)
	start := time.Now()
	stream, rep := backup(t, dsn(src), Options{})
	t.Logf("dump of %d rows in %d tables: %.1f MB in %s", rows(rep), len(rep.Tables), float64(len(stream))/1e6, time.Since(start).Round(time.Millisecond))
	if rows(rep) < 200_000 || len(rep.Parts) != 2 || rep.Parts[0].Name != GlobalsPart || rep.Parts[1].Name != src+".pgdump" {
		t.Fatalf("report: %d rows, parts %+v", rows(rep), rep.Parts)
	}
	for _, want := range []string{"customers", "orders", "payments", "documents"} {
		found := false
		for _, d := range rep.Tables {
			found = found || d.Table == src+".shop."+want && d.Rows > 0
		}
		if !found {
			t.Fatalf("no rows for %s.shop.%s in %+v", src, want, rep.Tables)
		}
	}

	// The digests of the dump as it passed are those of the live database,
	// computed from a fresh dump by the same code.
	live, err := Digests(context.Background(), dsn(src))
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, rep.Tables, live)

	for _, jobs := range []int{1, 2} {
		t.Run(fmt.Sprintf("jobs=%d", jobs), func(t *testing.T) {
			target := newDatabase(t, "restore")
			start := time.Now()
			got := restore(t, dsn(target), false, jobs, stream, rep)
			t.Logf("restore and digests with %d jobs: %s", jobs, time.Since(start).Round(time.Millisecond))
			mustMatch(t, rep.Tables, got)

			// The schema came back too: view, sequence, procedure, trigger.
			pc := connect(t, target)
			ctx := context.Background()
			var n, seq int64
			if err := pc.QueryRow(ctx, "SELECT count(*) FROM shop.order_totals").Scan(&n); err != nil || n != 50000 {
				t.Fatalf("view: %d rows, %v", n, err)
			}
			if err := pc.QueryRow(ctx, "SELECT last_value FROM shop.invoice_no").Scan(&seq); err != nil || seq != 1000+100000-1 {
				t.Fatalf("sequence: %d, %v", seq, err)
			}
			if _, err := pc.Exec(ctx, "CALL shop.place_order(1, 9.99)"); err != nil {
				t.Fatal(err)
			}
			var touched bool
			if err := pc.QueryRow(ctx, "UPDATE shop.customers SET phone = 'x' WHERE id = 1 RETURNING updated_at IS NOT NULL").Scan(&touched); err != nil || !touched {
				t.Fatalf("trigger: %v, %v", touched, err)
			}
		})
	}
}

func TestMutationChangesDigests(t *testing.T) {
	db := copyFixture(t, "mutate")
	_, before := backup(t, dsn(db), Options{})
	run(t, db, "UPDATE shop.customers SET email = 'changed@example.com' WHERE id = 4242")
	run(t, db, "INSERT INTO public.empty_table VALUES (1, NULL)")
	stream, after := backup(t, dsn(db), Options{})
	changed := map[string]string{}
	for _, r := range engine.Compare(before.Tables, after.Tables) {
		if !r.Match {
			changed[strings.TrimPrefix(r.Table, db+".")] = r.Reason
		}
	}
	if len(changed) != 2 || changed["shop.customers"] != "same row count, different contents" || changed["public.empty_table"] == "" {
		t.Fatalf("changed tables: %v", changed)
	}
	// A restore of the second backup equals the second state, not the first.
	got := restore(t, dsn(newDatabase(t, "restore")), false, 2, stream, after)
	mustMatch(t, after.Tables, got)
	if engine.AllMatch(engine.Compare(before.Tables, got)) {
		t.Fatal("the restore of the changed database matches the first state")
	}
}

// A writer inserts orders with their payment, a pair per transaction,
// while the dump runs: the restore holds whole pairs only.
func TestConcurrentWriter(t *testing.T) {
	db := copyFixture(t, "writer")
	ctx, cancel := context.WithCancel(context.Background())
	pc := connect(t, db)
	var wrote int
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			err := pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error {
				var id int64
				if err := tx.QueryRow(ctx, "INSERT INTO shop.orders (customer_id, total, status, placed_at) VALUES (7, 1.5, 'new', now()) RETURNING id").Scan(&id); err != nil {
					return err
				}
				time.Sleep(time.Millisecond) // between the two halves
				_, err := tx.Exec(ctx, "INSERT INTO shop.payments (order_id, amount, method) VALUES ($1, 1.5, 'card')", id)
				return err
			})
			if err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			wrote++
		}
		done <- nil
	}()
	time.Sleep(200 * time.Millisecond)
	stream, rep := backup(t, dsn(db), Options{})
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	target := newDatabase(t, "restore")
	mustMatch(t, rep.Tables, restore(t, dsn(target), false, 1, stream, rep))
	var orders, payments, unpaid int64
	err := connect(t, target).QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM shop.orders WHERE id > 100000),
		(SELECT count(*) FROM shop.payments WHERE id > 60000),
		(SELECT count(*) FROM shop.orders o WHERE id > 100000 AND NOT EXISTS (SELECT FROM shop.payments p WHERE p.order_id = o.id))`).Scan(&orders, &payments, &unpaid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pairs written, %d in the snapshot", wrote, orders)
	if orders == 0 || orders != payments || unpaid != 0 || orders >= int64(wrote) {
		t.Fatalf("restored %d new orders, %d new payments, %d orders without payment; %d pairs were written", orders, payments, unpaid, wrote)
	}
}

// Several databases in one snapshot restore under their own names; a
// restore over databases that hold tables is refused before anything is
// loaded, unless clean.
func TestSeveralDatabases(t *testing.T) {
	a, b := createDatabase(t, "a", ""), createDatabase(t, "b", "")
	run(t, a, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'a' || i FROM generate_series(1, 1000) i")
	run(t, b, "CREATE SCHEMA s; CREATE TABLE s.u (v bytea); INSERT INTO s.u VALUES ('\\x00ff'), (NULL)")
	stream, rep := backup(t, testServer+"postgres", Options{Databases: []string{a, b}})
	if len(rep.Parts) != 3 || len(rep.Tables) != 2 {
		t.Fatalf("parts %+v, tables %+v", rep.Parts, rep.Tables)
	}

	run(t, b, "INSERT INTO s.u VALUES ('\\x01')")
	tg, err := NewTarget(testServer+"postgres", TargetOptions{Clean: false, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Load(context.Background(), bytes.NewReader(stream), rep)
	if err == nil || !strings.Contains(err.Error(), "is not empty; nothing was loaded") || !strings.Contains(err.Error(), "--clean") {
		t.Fatalf("restore over databases with tables: got %v", err)
	}
	var n int
	connect(t, b).QueryRow(context.Background(), "SELECT count(*) FROM s.u").Scan(&n)
	if n != 3 {
		t.Fatalf("the refused restore changed %s: %d rows", b, n)
	}

	// The test's own connections to a and b are ended (Force).
	mustMatch(t, rep.Tables, restoreWith(t, testServer+"postgres", TargetOptions{Clean: true, DropOld: true, Force: true, Jobs: 2}, stream, rep))

	for _, db := range []string{a, b} {
		if err := dropDatabase(db); err != nil {
			t.Fatal(err)
		}
	}
	mustMatch(t, rep.Tables, restore(t, testServer, false, 1, stream, rep))
}

func TestRefuseNonEmptyTarget(t *testing.T) {
	a := createDatabase(t, "small", "")
	run(t, a, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
	stream, rep := backup(t, dsn(a), Options{})
	busy := createDatabase(t, "busy", "")
	run(t, busy, "CREATE SCHEMA app; CREATE TABLE app.x (v text); INSERT INTO app.x VALUES ('keep')")
	tg, err := NewTarget(dsn(busy), TargetOptions{Clean: false, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Load(context.Background(), bytes.NewReader(stream), rep)
	if err == nil || !strings.Contains(err.Error(), busy) || !strings.Contains(err.Error(), "nothing was loaded") {
		t.Fatalf("got %v", err)
	}
	var v string
	if err := connect(t, busy).QueryRow(context.Background(), "SELECT v FROM app.x").Scan(&v); err != nil || v != "keep" {
		t.Fatalf("target changed: %q %v", v, err)
	}
	// An existing, empty database is loaded as it is.
	empty := createDatabase(t, "empty", "")
	mustMatch(t, rep.Tables, restore(t, dsn(empty), false, 1, stream, rep))
}

func TestPreflightErrors(t *testing.T) {
	db := fixture(t)
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	os.Mkdir(old, 0o755)
	for _, p := range []string{"pg_dump", "pg_dumpall"} {
		os.WriteFile(filepath.Join(old, p), []byte("#!/bin/sh\necho '"+p+" (PostgreSQL) 9.6.24'\n"), 0o755)
	}
	for _, tc := range []struct {
		name, dsn string
		path      string // PATH, when set; binDirs then finds nothing
		want      []string
	}{
		{name: "unreachable server", dsn: "postgres://postgres@127.0.0.1:1/" + db, want: []string{"cannot reach the PostgreSQL server at 127.0.0.1:1", "is it running"}},
		// The test server trusts every local connection, so a wrong
		// password cannot be tested here; a role that does not exist is
		// refused the same way, before anything is written.
		{name: "unknown user", dsn: "postgres://no_such_role_coffer@127.0.0.1:5432/" + db, want: []string{`"no_such_role_coffer"`, "does not exist", "check the user"}},
		{name: "missing database", dsn: dsn("no_such_db_coffer"), want: []string{`database "no_such_db_coffer" does not exist`}},
		{name: "password in address", dsn: "postgres://postgres:secret@127.0.0.1:5432/" + db, want: []string{"holds a password", "PGPASSWORD", "PGPASSFILE"}},
		{name: "no database", dsn: testServer, want: []string{"names no database"}},
		{name: "missing binary", dsn: dsn(db), path: dir, want: []string{"pg_dump is not installed", "install"}},
		{name: "old pg_dump", dsn: dsn(db), path: old, want: []string{"pg_dump is older than the server, PostgreSQL 1", "version 9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
				saved := binDirs
				binDirs = filepath.Join(dir, "none", "*", "bin")
				t.Cleanup(func() { binDirs = saved })
			}
			s, err := Open(context.Background(), tc.dsn, Options{})
			if err == nil {
				t.Fatalf("Open succeeded: %v", s.Databases())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// A pg_dump killed halfway makes the read fail, naming the database.
func TestKilledDump(t *testing.T) {
	db := fixture(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn(db), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := engine.NewConcat(ctx, s.Parts()...)
	defer c.Close()
	if _, err := io.CopyN(io.Discard, c, 2<<20); err != nil {
		t.Fatal(err)
	}
	pid := findDump(t, db)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, c)
	if err == nil || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("read after pg_dump was killed: %v", err)
	}
	t.Log(err)
}

// findDump finds our pg_dump of db by its environment.
func findDump(t *testing.T, db string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		env, _ := os.ReadFile(filepath.Join(p, "environ"))
		if strings.Contains(filepath.Base(string(bytes.SplitN(cmd, []byte{0}, 2)[0])), "pg_dump") &&
			bytes.Contains(env, []byte("\x00PGDATABASE="+db+"\x00")) {
			var pid int
			fmt.Sscan(filepath.Base(p), &pid)
			return pid
		}
	}
	t.Fatalf("no pg_dump of %s is running", db)
	return 0
}
