package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
)

// ownedSchema makes, as role owner, a schema of every kind of object
// that has an owner or grants, with grants to reader.
func ownedSchema(owner, reader string) string {
	return fmt.Sprintf(`
CREATE SCHEMA app AUTHORIZATION %[1]s;
SET ROLE %[1]s;
CREATE TYPE app.mood AS ENUM ('calm', 'busy');
CREATE TABLE app.items (id serial PRIMARY KEY, name text, mood app.mood, secret text);
CREATE TABLE app.ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE SEQUENCE app.invoice_no;
CREATE VIEW app.named AS SELECT id, name FROM app.items;
CREATE MATERIALIZED VIEW app.counts AS SELECT count(*) AS n FROM app.items;
CREATE FUNCTION app.score(i integer, label text) RETURNS integer LANGUAGE sql AS 'SELECT i + length(label)';
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
CREATE TRIGGER items_touch BEFORE INSERT ON app.items FOR EACH ROW EXECUTE FUNCTION app.touch();
INSERT INTO app.items (name, mood, secret) SELECT 'item ' || i, 'calm', 's' || i FROM generate_series(1, 300) i;
INSERT INTO app.ident (v) VALUES ('a'), ('b');
REFRESH MATERIALIZED VIEW app.counts;
GRANT USAGE ON SCHEMA app TO %[2]s;
GRANT SELECT ON app.items, app.named, app.counts TO %[2]s;
GRANT SELECT (id, v), UPDATE (v) ON app.ident TO %[2]s;
GRANT USAGE, SELECT ON SEQUENCE app.invoice_no TO %[2]s;
REVOKE ALL ON FUNCTION app.score(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.score(integer, text) TO %[2]s;
REVOKE USAGE ON TYPE app.mood FROM PUBLIC;
GRANT USAGE ON TYPE app.mood TO %[2]s;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO %[2]s;
RESET ROLE;
CREATE TABLE public.admin_owned (i int);
GRANT SELECT ON public.admin_owned TO %[2]s;
`, owner, reader)
}

// catalog is who owns what, and the grants, in schema app.
func catalog(t testing.TB, db string) []string {
	t.Helper()
	rows, err := connect(t, db).Query(context.Background(), `
		SELECT 'class ' || c.relname || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '-')
			FROM pg_class c WHERE c.relnamespace = 'app'::regnamespace
		UNION ALL SELECT 'column ' || c.relname || '.' || a.attname || ' ' || a.attacl::text
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE c.relnamespace = 'app'::regnamespace AND a.attacl IS NOT NULL
		UNION ALL SELECT 'proc ' || p.proname || ' ' || pg_get_userbyid(p.proowner) || ' ' || coalesce(p.proacl::text, '-')
			FROM pg_proc p WHERE p.pronamespace = 'app'::regnamespace
		UNION ALL SELECT 'type ' || y.typname || ' ' || pg_get_userbyid(y.typowner) || ' ' || coalesce(y.typacl::text, '-')
			FROM pg_type y WHERE y.typnamespace = 'app'::regnamespace AND y.typtype = 'e'
		UNION ALL SELECT 'schema ' || n.nspname || ' ' || pg_get_userbyid(n.nspowner) || ' ' || coalesce(n.nspacl::text, '-')
			FROM pg_namespace n WHERE n.nspname = 'app'
		UNION ALL SELECT 'default ' || pg_get_userbyid(d.defaclrole) || ' ' || d.defaclobjtype::text || ' ' || d.defaclacl::text
			FROM pg_default_acl d WHERE d.defaclnamespace = 'app'::regnamespace
		UNION ALL SELECT 'trigger ' || tgname || ' ' || tgfoid::regproc::text FROM pg_trigger WHERE NOT tgisinternal
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Owners and grants of a normal schema owned by a role that is not a
// superuser come back as they were at the source.
func TestRestoreOwnersAndGrants(t *testing.T) {
	owner := newRole(t, "app", "NOLOGIN")
	reader := newRole(t, "app_ro", "NOLOGIN")
	src := createDatabase(t, "owned", "")
	run(t, "postgres", "ALTER DATABASE "+src+" OWNER TO "+owner)
	run(t, src, "CREATE EXTENSION pgcrypto SCHEMA public") // trusted: a database owner may create it
	run(t, src, ownedSchema(owner, reader))
	want := catalog(t, src)
	stream, rep := backup(t, dsn(src), Options{})
	for _, jobs := range []int{1, 2} {
		t.Run(fmt.Sprintf("jobs=%d", jobs), func(t *testing.T) {
			target := newDatabase(t, "owned_r")
			mustMatch(t, rep.Tables, restoreWith(t, dsn(target), TargetOptions{Jobs: jobs}, stream, rep))
			got := catalog(t, target)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("owners and grants differ\nsource:\n%s\nrestored:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
			}
			var dbOwner, adminOwner, acl string
			err := connect(t, target).QueryRow(context.Background(), `SELECT
				(SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
				(SELECT pg_get_userbyid(relowner) || ' ' || relacl::text FROM pg_class WHERE oid = 'public.admin_owned'::regclass), ''`).Scan(&dbOwner, &adminOwner, &acl)
			if err != nil {
				t.Fatal(err)
			}
			var hash string
			if err := connect(t, target).QueryRow(context.Background(), "SELECT encode(public.digest('x', 'sha256'), 'hex')").Scan(&hash); err != nil || !strings.HasPrefix(hash, "2d711642") {
				t.Fatalf("pgcrypto: %q, %v", hash, err)
			}
			if dbOwner != owner {
				t.Fatalf("database owned by %s, want %s", dbOwner, owner)
			}
			// Owned by postgres at the source: by the database's owner
			// here, with the grant.
			if adminOwner != fmt.Sprintf("%[1]s {%[1]s=arwdDxt/%[1]s,%[2]s=r/%[1]s}", owner, reader) {
				t.Fatalf("public.admin_owned: %s", adminOwner)
			}
		})
	}
}

// A restore that names --owner gives that role what the source's
// superuser owned; --owner may not be a superuser.
func TestRestoreOwnerOption(t *testing.T) {
	src := createDatabase(t, "plain", "")
	run(t, src, "CREATE TABLE t (i int); INSERT INTO t VALUES (1)")
	stream, rep := backup(t, dsn(src), Options{})
	mine := newRole(t, "mine", "NOLOGIN")
	target := newDatabase(t, "plain_r")
	restoreWith(t, dsn(target), TargetOptions{Jobs: 1, Owner: mine}, stream, rep)
	var db, tbl string
	connect(t, target).QueryRow(context.Background(), `SELECT (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
		(SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't')`).Scan(&db, &tbl)
	if db != mine || tbl != mine {
		t.Fatalf("database owned by %s, table by %s; want %s", db, tbl, mine)
	}
	_, err := load(t, dsn(newDatabase(t, "plain_s")), TargetOptions{Jobs: 1, Owner: "postgres"}, stream, rep)
	mustSay(t, err, `owner "postgres" is a superuser here`, "nothing was loaded")
}

// runOnce runs sql in db on a connection of its own, closed at once: a
// session would keep db from being replaced.
func runOnce(t testing.TB, db, sql string) {
	t.Helper()
	ctx := context.Background()
	pc, err := pgx.Connect(ctx, dsn(db))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	if _, err := pc.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// rowCount counts the rows of table t in db.
func rowCount(t testing.TB, db, table string) int {
	t.Helper()
	ctx := context.Background()
	pc, err := pgx.Connect(ctx, dsn(db)) // closed at once: a session would keep db from being replaced
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	var n int
	if err := pc.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// failingReader returns the first n bytes of b, then an error.
type failingReader struct {
	b []byte
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("chunk 3f2a… does not match its id")
	}
	k := copy(p, f.b[:min(len(f.b), f.n, len(p))])
	f.b, f.n = f.b[k:], f.n-k
	return k, nil
}

// With Clean, nothing happens to the database being replaced until
// Commit: not when the stream breaks, not when the load fails halfway,
// not when another session holds it; then Force swaps, and the old one is
// kept unless DropOld.
func TestCleanKeepsOld(t *testing.T) {
	ctx := context.Background()
	src, stream, rep := hostileSource(t)
	old := createDatabase(t, "old", "")
	runOnce(t, old, "CREATE TABLE keep (i int); INSERT INTO keep SELECT generate_series(1, 1000)")
	opts := TargetOptions{Clean: true, Jobs: 1}

	t.Run("broken stream", func(t *testing.T) {
		for _, jobs := range []int{1, 2} {
			tg, err := NewTarget(dsn(old), TargetOptions{Clean: true, Jobs: jobs})
			if err != nil {
				t.Fatal(err)
			}
			err = tg.Load(ctx, &failingReader{b: stream, n: int(rep.Parts[1].Offset) + 4000}, rep)
			mustSay(t, err, "does not match its id", fmt.Sprintf("database %q is untouched", old))
			if err := tg.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			if n := rowCount(t, old, "keep"); n != 1000 {
				t.Fatalf("%s has %d rows, want 1000", old, n)
			}
		}
	})

	t.Run("load fails halfway", func(t *testing.T) {
		s, r := inject(t, src, stream, rep, "SELECT 1/0;")
		_, err := load(t, dsn(old), TargetOptions{Clean: true, Jobs: 2}, s, r)
		mustSay(t, err, "division by zero", fmt.Sprintf("database %q is untouched", old))
		if n := rowCount(t, old, "keep"); n != 1000 {
			t.Fatalf("%s has %d rows, want 1000", old, n)
		}
	})

	t.Run("busy, then forced", func(t *testing.T) {
		busy := connect(t, old) // another session on the database to replace
		tg, err := load(t, dsn(old), opts, stream, rep)
		if err != nil {
			t.Fatal(err)
		}
		newCopy := tg.dbs[0].into
		t.Cleanup(func() { dropDatabase(newCopy) })
		mustMatch(t, rep.Tables, must(tg.Digests(ctx)))
		_, err = tg.Commit(ctx)
		mustSay(t, err, "another session", "--force", fmt.Sprintf("database %q is untouched", old), "kept as")
		if n := rowCount(t, old, "keep"); n != 1000 {
			t.Fatalf("%s has %d rows, want 1000", old, n)
		}

		opts.Force = true
		tg, err = load(t, dsn(old), opts, stream, rep)
		if err != nil {
			t.Fatal(err)
		}
		notes, err := tg.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := suffixed(old, "_before_"+tg.stamp)
		t.Cleanup(func() { dropDatabase(before) })
		if !strings.Contains(strings.Join(notes, "\n"), "kept as \""+before+"\"") {
			t.Fatalf("notes: %q", notes)
		}
		if err := busy.Ping(ctx); err == nil {
			t.Fatal("the other session was not ended")
		}
		if n := rowCount(t, before, "keep"); n != 1000 {
			t.Fatalf("%s has %d rows, want 1000", before, n)
		}
		if n := rowCount(t, old, "public.t"); n != 500 {
			t.Fatalf("%s has %d rows, want the snapshot's 500", old, n)
		}
		var allow bool
		connect(t, "postgres").QueryRow(ctx, "SELECT datallowconn FROM pg_database WHERE datname = $1", before).Scan(&allow)
		if !allow {
			t.Fatalf("%s does not allow connections", before)
		}
	})

	t.Run("drop old", func(t *testing.T) {
		tg, err := load(t, dsn(old), TargetOptions{Clean: true, DropOld: true, Jobs: 1}, stream, rep)
		if err != nil {
			t.Fatal(err)
		}
		notes, err := tg.Commit(ctx)
		if err != nil || !strings.Contains(strings.Join(notes, "\n"), "dropped the old one") {
			t.Fatalf("notes %q, %v", notes, err)
		}
		var n int
		connect(t, "postgres").QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", suffixed(old, "_before_"+tg.stamp)).Scan(&n)
		if n != 0 {
			t.Fatal("the old database was kept")
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSuffixed(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	got := suffixed(long, "_before_20260101_000000")
	if len(got) > maxName || !strings.HasSuffix(got, "_before_20260101_000000") || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Fatalf("suffixed: %q (%d bytes)", got, len(got))
	}
	if got := suffixed("shop", "_x"); got != "shop_x" {
		t.Fatal(got)
	}
}

// DropScratch drops only a drill's scratch database, and the roles made
// for it.
func TestDropScratch(t *testing.T) {
	ctx := context.Background()
	keep := createDatabase(t, "notscratch", "")
	for _, name := range []string{keep, "postgres", "coffer_drill_x; DROP DATABASE postgres", "coffer_drill_X", "Coffer_drill_x", "coffer_drill_"} {
		if err := DropScratch(ctx, testServer, name); err == nil || !strings.Contains(err.Error(), "not a drill's scratch database") {
			t.Fatalf("DropScratch(%q): %v", name, err)
		}
	}
	connect(t, keep) // still there

	_, stream, rep := hostileSource(t)
	owner := "coffer_h1_missing_" + randomHex(3)
	stream, rep = replacePart(t, stream, rep, rep.Parts[1].Name, func(b []byte) []byte {
		return rewriteTOC(t, b, func(es []*rawEntry) []*rawEntry {
			for _, e := range es {
				if e.desc.s == "TABLE" {
					e.owner = rawStr{s: owner}
				}
			}
			return es
		})
	})
	scratch := "coffer_drill_h1_" + randomHex(4)
	t.Cleanup(func() { dropDatabase(scratch) })
	tg, err := load(t, dsn(scratch), TargetOptions{Jobs: 1, Scratch: true}, stream, rep)
	if err != nil {
		t.Fatal(err)
	}
	var tableOwner string
	connect(t, scratch).QueryRow(ctx, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'").Scan(&tableOwner)
	if tableOwner != owner {
		t.Fatalf("table owned by %q, want the scratch role %q (notes %q)", tableOwner, owner, tg.Notes())
	}
	if err := DropScratch(ctx, testServer, scratch); err != nil {
		t.Fatal(err)
	}
	var dbs, roles int
	connect(t, "postgres").QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_database WHERE datname = $1),
		(SELECT count(*) FROM pg_roles WHERE rolname = $2 OR rolname IN (SELECT r.rolname FROM pg_roles r JOIN pg_shdescription d ON d.objoid = r.oid WHERE d.description LIKE '%for ' || $1))`,
		scratch, owner).Scan(&dbs, &roles)
	if dbs != 0 || roles != 0 {
		t.Fatalf("after DropScratch: %d databases, %d roles", dbs, roles)
	}
}

// globalsStream is a snapshot whose globals part is script.
func globalsStream(t testing.TB, stream []byte, rep engine.Report, script string) ([]byte, engine.Report) {
	t.Helper()
	return replacePart(t, stream, rep, GlobalsPart, func([]byte) []byte { return []byte(script) })
}

func authid(t testing.TB, role string) string {
	t.Helper()
	var row string
	if err := connect(t, "postgres").QueryRow(context.Background(), "SELECT a::text FROM pg_authid a WHERE rolname = $1", role).Scan(&row); err != nil {
		t.Fatal(err)
	}
	return row
}

// With Globals, missing roles are created without superuser rights
// (unless "all") and existing ones are left as they were; without, no
// role is created. A hostile globals script runs nothing.
func TestGlobals(t *testing.T) {
	ctx := context.Background()
	_, stream, rep := hostileSource(t)
	existing := newRole(t, "existing", "NOSUPERUSER LOGIN PASSWORD 'kept' CONNECTION LIMIT 3")
	fresh := uniqueName("fresh")
	t.Cleanup(func() { run(t, "postgres", "DROP ROLE IF EXISTS "+fresh) })
	canary := canaryDir(t) + "/canary"
	script := fmt.Sprintf(`
SET default_transaction_read_only = off;
\! touch %[3]s
CREATE ROLE %[1]s;
ALTER ROLE %[1]s WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy' CONNECTION LIMIT 99;
CREATE ROLE %[2]s;
ALTER ROLE %[2]s WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'md5deadbeef';
COPY (SELECT 1) TO PROGRAM 'cat > %[3]s';
`, existing, fresh, canary)
	s, r := globalsStream(t, stream, rep, script)
	before, pgBefore := authid(t, existing), authid(t, "postgres")

	for _, mode := range []string{"", "roles"} {
		target := newDatabase(t, "globals")
		tg, err := load(t, dsn(target), TargetOptions{Jobs: 1, Globals: mode}, s, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tg.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := authid(t, existing); got != before {
			t.Fatalf("globals=%q changed role %s:\nbefore %s\nafter  %s", mode, existing, before, got)
		}
		if got := authid(t, "postgres"); got != pgBefore {
			t.Fatalf("globals=%q changed role postgres", mode)
		}
		if exists(canary) {
			t.Fatal("the globals ran a program")
		}
		var n int
		var super bool
		connect(t, "postgres").QueryRow(ctx, "SELECT count(*), bool_or(rolsuper) FROM pg_roles WHERE rolname = $1", fresh).Scan(&n, &super)
		notes := strings.Join(tg.Notes(), "\n")
		switch mode {
		case "":
			if n != 0 || !strings.Contains(notes, "--globals=roles") {
				t.Fatalf("without globals: %d roles %s, notes %s", n, fresh, notes)
			}
		default:
			if n != 1 || super || !strings.Contains(notes, fresh) || !strings.Contains(notes, "left unchanged") {
				t.Fatalf("with globals: %d roles %s (superuser %v), notes %s", n, fresh, super, notes)
			}
		}
	}
}

// A connecting user that is not a superuser but may create roles and
// databases loads through a load role too.
func TestRestoreAsCreateRoleUser(t *testing.T) {
	op := newRole(t, "op", "LOGIN CREATEROLE CREATEDB NOSUPERUSER")
	src := createDatabase(t, "opsrc", "")
	run(t, src, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)")
	stream, rep := backup(t, dsn(src), Options{})
	target := newDatabase(t, "op_r")
	addr := "postgres://" + op + "@127.0.0.1:5432/" + target
	mustMatch(t, rep.Tables, restoreWith(t, addr, TargetOptions{Jobs: 1}, stream, rep))
	var owner string
	connect(t, target).QueryRow(context.Background(), "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'").Scan(&owner)
	if !strings.HasPrefix(owner, ownerRolePrefix) {
		t.Fatalf("table owned by %s", owner)
	}
}
