package main_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/internal/pgephemeral"
)

// The tests of this file attack the PostgreSQL restore path as a backup
// host that an attacker holds would: through what it writes into
// snapshots (a replaced pg_dumpall, objects of a database it backs up,
// database names), and by killing the operator's restore. Each runs the
// attack for real and checks that the harm did not happen.

const hpgServer = "postgres://postgres@127.0.0.1:5432/"

func hpgHex(n int) string {
	b := make([]byte, n)
	crand.Read(b)
	return hex.EncodeToString(b)
}

func hpgName(prefix string) string { return "coffer_h1_" + prefix + "_" + hpgHex(4) }

// hpgExec runs sql in db on a connection of its own, closed at once (an
// open session would keep restore --clean from replacing db).
func hpgExec(t *testing.T, db, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, hpgServer+url.PathEscape(db))
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 (user postgres, trust) is needed: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%.80s: %v", sql, err)
	}
}

// hpgQuery returns the first column of a query's rows, as text.
func hpgQuery(t *testing.T, db, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, hpgServer+url.PathEscape(db))
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 (user postgres, trust) is needed: %v", err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%.80s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hpgCleanup drops, at the end of the test, database db, the copies a
// --clean restore kept beside it, and the roles coffer made for them.
func hpgCleanup(t *testing.T, db string) {
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, hpgServer+"postgres")
		if err != nil {
			return
		}
		defer c.Close(ctx)
		rows, _ := c.Query(ctx, `SELECT datname FROM pg_database WHERE datname = $1
			OR starts_with(datname, $1 || '_coffer_new_') OR starts_with(datname, $1 || '_before_')`, db)
		dbs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, d := range dbs {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d}.Sanitize()+" WITH (FORCE)")
		}
		rows, _ = c.Query(ctx, `SELECT r.rolname FROM pg_roles r JOIN pg_shdescription s ON s.objoid = r.oid
			WHERE NOT r.rolsuper AND s.description LIKE 'coffer % role for %' AND (s.description LIKE '% for ' || $1
			OR s.description LIKE '% for ' || $1 || '\_coffer\_new\_%')`, db)
		roles, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, r := range roles {
			c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
		}
	})
}

func hpgDatabase(t *testing.T, prefix string) string {
	t.Helper()
	name := hpgName(prefix)
	hpgCleanup(t, name)
	hpgExec(t, "postgres", "CREATE DATABASE "+name)
	return name
}

func hpgRole(t *testing.T, prefix, attrs string) string {
	t.Helper()
	name := hpgName(prefix)
	hpgExec(t, "postgres", "CREATE ROLE "+name+" "+attrs)
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, hpgServer+"postgres"); err == nil {
			c.Exec(ctx, "DROP ROLE IF EXISTS "+name)
			c.Close(ctx)
		}
	})
	return name
}

func hpgExists(path string) bool { _, err := os.Stat(path); return err == nil }

// hpgCanary is a path the server's user (postgres, or a drill server's
// throwaway user) can create, and that must not exist.
func hpgCanary(t *testing.T) string {
	dir, err := os.MkdirTemp("", "coffer-canary-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "canary")
}

// hpgFakeDumpall is a directory holding a pg_dumpall that answers
// --version as PostgreSQL 15's does and prints globals instead of the
// server's: what a backup host's attacker puts first on PATH. It writes
// its environment to envFile.
func hpgFakeDumpall(t *testing.T, globals, envFile string) string {
	dir := t.TempDir()
	script := "#!/bin/sh\ncase \"$1\" in --version) echo 'pg_dumpall (PostgreSQL) 15.20'; exit 0;; esac\n" +
		"env > " + envFile + "\ncat <<'COFFER_EOF'\n" + globals + "\nCOFFER_EOF\n"
	if err := os.WriteFile(filepath.Join(dir, "pg_dumpall"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hpgSource is a small database of customers, with a commented table.
func hpgSource(t *testing.T) string {
	db := hpgDatabase(t, "src")
	hpgExec(t, db, `CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
		INSERT INTO customers SELECT g, 'Kunde ' || g, 'k' || g || '@example.com' FROM generate_series(1, 2000) g;`)
	return db
}

type hpgRestore struct {
	Verified bool     `json:"verified"`
	Notes    []string `json:"notes"`
}

func (c *cli) restoreJSON(args ...string) hpgRestore {
	c.t.Helper()
	out := c.ok(nil, append([]string{"restore", "--json"}, args...)...)
	var r hpgRestore
	if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Verified {
		c.t.Fatalf("restore --json: %v, verified %v\n%s", err, r.Verified, out)
	}
	return r
}

// TestHostilePGGlobalsClientExec: a snapshot's globals part carries psql
// meta-commands that would run a shell on the operator's machine and
// read the identity; restoring it, with and without --globals, runs none.
func TestHostilePGGlobalsClientExec(t *testing.T) {
	canary := filepath.Join(t.TempDir(), "canary")
	envFile := filepath.Join(t.TempDir(), "env")
	fresh := hpgName("fresh")
	t.Cleanup(func() { hpgExec(t, "postgres", "DROP ROLE IF EXISTS "+fresh) })
	globals := `SET default_transaction_read_only = off;
\! id > ` + canary + `; cat "$COFFER_IDENTITY_FILE" >> ` + canary + `
\o | sh -c 'id >> ` + canary + `'
CREATE ROLE ` + fresh + `;
ALTER ROLE ` + fresh + ` WITH SUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
\copy (SELECT 1) TO PROGRAM 'id >> ` + canary + `'
COPY (SELECT 1) TO PROGRAM 'id >> ` + canary + `';`
	src := hpgSource(t)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.with("PATH="+hpgFakeDumpall(t, globals, envFile)+":"+os.Getenv("PATH")).backup(nil, "--source", "shop", "--postgres", hpgServer+src)
	// The snapshot holds the attack, and the backup's pg_dumpall got
	// none of coffer's secrets.
	part := filepath.Join(t.TempDir(), "globals.sql")
	c.ok(nil, "restore", b.Snapshot, "--part", "globals.sql", "--output", part)
	if g, _ := os.ReadFile(part); !bytes.Contains(g, []byte(`\! id > `+canary)) {
		t.Fatalf("the snapshot's globals are not the attacker's:\n%s", g)
	}
	if env, _ := os.ReadFile(envFile); bytes.Contains(env, []byte("COFFER_")) {
		t.Fatalf("pg_dumpall got coffer's environment:\n%s", env)
	}
	for _, globalsFlag := range [][]string{nil, {"--globals"}} {
		target := hpgName("glob_r")
		hpgCleanup(t, target)
		r := c.restoreJSON(append([]string{b.Snapshot, "--to", hpgServer + target}, globalsFlag...)...)
		if hpgExists(canary) {
			out, _ := os.ReadFile(canary)
			t.Fatalf("restore %v ran the snapshot's shell commands:\n%s", globalsFlag, out)
		}
		super := hpgQuery(t, "postgres", "SELECT rolsuper::text FROM pg_roles WHERE rolname = $1", fresh)
		notes := strings.Join(r.Notes, "\n")
		if globalsFlag == nil {
			if len(super) != 0 || !strings.Contains(notes, "--globals") {
				t.Fatalf("without --globals: role %s %v; notes:\n%s", fresh, super, notes)
			}
			continue
		}
		if len(super) != 1 || super[0] != "false" || !strings.Contains(notes, fresh) || !strings.Contains(notes, `\!`) {
			t.Fatalf("with --globals: role %s superuser %v; notes:\n%s", fresh, super, notes)
		}
	}
}

// hpgEvilSource is a database whose materialized view calls a function
// that runs a program on the server: made and refreshed by a superuser
// at the source (so the canary is made once, and removed).
func hpgEvilSource(t *testing.T, canary string) string {
	db := hpgSource(t)
	hpgExec(t, db, `CREATE FUNCTION public.payload() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN COPY (SELECT 1) TO PROGRAM 'cat > `+canary+`'; RETURN 1; END $$;
		CREATE MATERIALIZED VIEW public.report AS SELECT public.payload() AS x`)
	if !hpgExists(canary) {
		t.Fatal("the payload did not run at the source")
	}
	os.Remove(canary)
	return db
}

// TestHostilePGServerExec: a snapshot whose load runs COPY … TO PROGRAM
// (a materialized view over a function) runs nothing on the server when
// restored or drilled by a superuser: the load fails, naming the view and
// --trust-snapshot.
func TestHostilePGServerExec(t *testing.T) {
	canary := hpgCanary(t)
	src := hpgEvilSource(t, canary)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "evil", "--postgres", hpgServer+src)
	for _, jobs := range []string{"1", "2"} {
		target := hpgName("exec_r")
		hpgCleanup(t, target)
		msg := c.fail(nil, "restore", b.Snapshot, "--to", hpgServer+target, "-j", jobs)
		mustContain(t, "restore of the hostile snapshot", msg, `MATERIALIZED VIEW DATA "public.report"`, "external program", "--trust-snapshot", "was dropped")
		if hpgExists(canary) {
			t.Fatalf("restore -j %s ran the payload on the server", jobs)
		}
		if n := hpgQuery(t, "postgres", "SELECT datname FROM pg_database WHERE datname = $1", target); len(n) != 0 {
			t.Fatalf("the failed restore left database %s", target)
		}
	}
	for _, mode := range [][]string{{"--scratch", hpgServer}, {"--ephemeral"}} {
		r := c.run(nil, append([]string{"drill", "--source", "evil", "--report-dir", t.TempDir(), "--state-dir", filepath.Join(c.dir, "state")}, mode...)...)
		if r.code == 0 {
			t.Fatalf("drill %v passed:\n%s", mode, r.stdout)
		}
		if hpgExists(canary) {
			t.Fatalf("drill %v ran the payload on the server", mode)
		}
		mustContain(t, fmt.Sprintf("drill %v", mode), r.stdout+r.stderr, "public.report", "--trust-snapshot")
	}
}

// hpgAuthid is a role's whole pg_authid row, its password hash included.
func hpgAuthid(t *testing.T, role string) string {
	t.Helper()
	rows := hpgQuery(t, "postgres", `SELECT a::text || ' settings ' || coalesce((SELECT array_agg(setconfig::text ORDER BY setdatabase)::text
		FROM pg_db_role_setting WHERE setrole = a.oid), '-') || ' member of ' || coalesce((SELECT array_agg(roleid::regrole::text ORDER BY 1)::text
		FROM pg_auth_members WHERE member = a.oid), '-') FROM pg_authid a WHERE rolname = $1`, role)
	if len(rows) != 1 {
		t.Fatalf("role %s: %v", role, rows)
	}
	return rows[0]
}

// TestHostilePGRolesUnchanged: a snapshot whose globals make an existing
// role a superuser with the attacker's password, and change the
// connecting user, is restored into a new database, with and without
// --globals: no existing role changes.
func TestHostilePGRolesUnchanged(t *testing.T) {
	victim := hpgRole(t, "victim", "NOSUPERUSER LOGIN PASSWORD 'the-operators' CONNECTION LIMIT 5")
	globals := fmt.Sprintf(`CREATE ROLE %[1]s;
ALTER ROLE %[1]s WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS CONNECTION LIMIT 99 PASSWORD 'SCRAM-SHA-256$4096:YXR0YWNrZXI=$c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3RvcmU=:c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2U=';
ALTER ROLE %[1]s SET search_path = 'evil';
GRANT pg_execute_server_program TO %[1]s;
GRANT postgres TO %[1]s;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'md5000000000000000000000000000000ff';`, victim)
	src := hpgSource(t)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.with("PATH="+hpgFakeDumpall(t, globals, filepath.Join(t.TempDir(), "env"))+":"+os.Getenv("PATH")).backup(nil, "--source", "shop", "--postgres", hpgServer+src)
	before := map[string]string{victim: hpgAuthid(t, victim), "postgres": hpgAuthid(t, "postgres")}
	for _, flags := range [][]string{nil, {"--globals"}, {"--globals=all"}} {
		target := hpgName("roles_r")
		hpgCleanup(t, target)
		c.restoreJSON(append([]string{b.Snapshot, "--to", hpgServer + target}, flags...)...)
		for role, row := range before {
			if got := hpgAuthid(t, role); got != row {
				t.Fatalf("restore %v changed role %s:\nbefore %s\nafter  %s", flags, role, row, got)
			}
		}
	}
}

// TestHostilePGDatabaseNameOptions: a database named so that its name,
// cut out of pg_dump's CREATE DATABASE, would give it the owner evil, is
// restored owned as coffer decides, under a new name and under its own.
func TestHostilePGDatabaseNameOptions(t *testing.T) {
	evil := "coffer_h1e_" + hpgHex(2)
	hpgExec(t, "postgres", "CREATE ROLE "+evil+" NOLOGIN")
	t.Cleanup(func() { hpgExec(t, "postgres", "DROP ROLE IF EXISTS "+evil) })
	name := "s WITH TEMPLATE = template0 OWNER = " + evil + " --" + hpgHex(3)
	hpgCleanup(t, name)
	hpgExec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	hpgExec(t, name, "CREATE TABLE t (i int); INSERT INTO t VALUES (1), (2)")
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "odd", "--postgres", hpgServer+url.PathEscape(name))
	renamed := hpgName("name_r")
	hpgCleanup(t, renamed)
	c.restoreJSON(b.Snapshot, "--to", hpgServer+renamed)
	hpgExec(t, "postgres", "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	c.restoreJSON(b.Snapshot, "--to", hpgServer)
	for _, db := range []string{renamed, name} {
		owner := hpgQuery(t, "postgres", "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1", db)
		if len(owner) != 1 || owner[0] == evil {
			t.Fatalf("database %q is owned by %v", db, owner)
		}
	}
}

// TestHostilePGConninfoName: a database named like a libpq connection
// string pointing at another server makes no connection to it, in backup
// --all-databases, restore and the digests of the restored database. It
// runs on a private server, so that --all-databases sees only its own.
func TestHostilePGConninfoName(t *testing.T) {
	ctx := context.Background()
	srv, err := pgephemeral.Start(ctx, pgephemeral.Options{})
	if err != nil {
		t.Fatalf("an ephemeral PostgreSQL server is needed: %v", err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var connections atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			connections.Add(1)
			conn.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	evil := fmt.Sprintf("application_name=a host=127.0.0.1 port=%d", port)
	cfg, err := srv.ConnConfig("postgres")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, db := range []string{evil, "shop"} {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		cfg.Database = db
		dc, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dc.Exec(ctx, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)"); err != nil {
			t.Fatal(err)
		}
		dc.Close(ctx)
	}
	server := strings.Replace(srv.DSN, "/postgres?", "/?", 1)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"), "PGPASSWORD="+srv.Password)
	c.init()
	b := c.backup(nil, "--source", "all", "--postgres", srv.DSN, "--all-databases")
	for _, db := range []string{evil, "shop"} {
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	c.restoreJSON(b.Snapshot, "--to", server, "-j", "2")
	if n := connections.Load(); n != 0 {
		t.Fatalf("%d connections reached 127.0.0.1:%d, named by a database's name", n, port)
	}
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", evil).Scan(&n); err != nil || n != 1 {
		t.Fatalf("database %q restored: %d, %v", evil, n, err)
	}
}

// hpgCorruptPack flips bytes in the middle of the largest pack of a local
// repository.
func hpgCorruptPack(t *testing.T, repo string) {
	t.Helper()
	var largest string
	var size int64
	filepath.Walk(filepath.Join(repo, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > size {
			largest, size = p, fi.Size()
		}
		return nil
	})
	if largest == "" {
		t.Fatal("no pack in the repository")
	}
	b, err := os.ReadFile(largest)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+64 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	os.Chmod(largest, 0o600)
	if err := os.WriteFile(largest, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHostilePGCleanKeepsOld: restore --clean with a damaged pack, and
// with a load that fails halfway, leaves the old database with all its
// rows, and says so.
func TestHostilePGCleanKeepsOld(t *testing.T) {
	old := hpgDatabase(t, "old")
	hpgExec(t, old, "CREATE TABLE keep (i int); INSERT INTO keep SELECT generate_series(1, 3000)")
	rows := func() string {
		return strings.Join(hpgQuery(t, old, "SELECT count(*)::text FROM keep"), "")
	}

	t.Run("damaged pack", func(t *testing.T) {
		src := hpgDatabase(t, "big")
		hpgExec(t, src, `CREATE TABLE payload AS SELECT g AS id, md5(g::text) || repeat('x', 200) AS v FROM generate_series(1, 40000) g`)
		repo := filepath.Join(t.TempDir(), "repo")
		c := newCLI(t, repo)
		c.init()
		b := c.backup(nil, "--source", "big", "--postgres", hpgServer+src)
		hpgCorruptPack(t, repo)
		msg := c.fail(nil, "restore", b.Snapshot, "--to", hpgServer+old, "--clean")
		mustContain(t, "restore --clean from a damaged pack", msg, fmt.Sprintf("database %q is untouched", old))
		if n := rows(); n != "3000" {
			t.Fatalf("%s has %s rows, want 3000", old, n)
		}
	})

	t.Run("load fails halfway", func(t *testing.T) {
		canary := hpgCanary(t)
		src := hpgEvilSource(t, canary)
		c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
		c.init()
		b := c.backup(nil, "--source", "evil", "--postgres", hpgServer+src)
		for _, jobs := range []string{"1", "2"} {
			msg := c.fail(nil, "restore", b.Snapshot, "--to", hpgServer+old, "--clean", "--drop-old", "--force", "-j", jobs)
			mustContain(t, "restore --clean of a failing load", msg, fmt.Sprintf("database %q is untouched", old), "public.report")
			if n := rows(); n != "3000" {
				t.Fatalf("%s has %s rows, want 3000", old, n)
			}
		}
	})
}

// hpgProcs lists the pids of processes whose command line contains all
// of parts.
func hpgProcs(parts ...string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		all := true
		for _, s := range parts {
			all = all && strings.Contains(cmd, s)
		}
		if all {
			var pid int
			fmt.Sscan(filepath.Base(filepath.Dir(p)), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

func hpgFiles(root string) []string {
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != root {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestHostilePGKilledRestore: coffer restore --to … -j 2 killed (kill -9)
// while pg_restore loads leaves no spool file under TMPDIR and no
// pg_restore running.
func TestHostilePGKilledRestore(t *testing.T) {
	src := hpgDatabase(t, "kill")
	hpgExec(t, src, `CREATE TABLE a AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g;
		CREATE TABLE b AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g;
		CREATE INDEX ON a (v); CREATE INDEX ON b (v);`)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "kill", "--postgres", hpgServer+src)
	tmp := t.TempDir()
	target := hpgName("kill_r")
	hpgCleanup(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.with("TMPDIR="+tmp).cmd(ctx, nil, "restore", b.Snapshot, "--to", hpgServer+target, "-j", "2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	marker := "dbname='" + target + "'"
	for len(hpgProcs("pg_restore", marker)) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the restore ended before pg_restore was seen: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if left := hpgFiles(tmp); len(left) != 0 {
		t.Fatalf("while pg_restore runs, TMPDIR holds %v", left)
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-done
	deadline := time.Now().Add(20 * time.Second)
	for len(hpgProcs("pg_restore", marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pg_restore is still running 20s after coffer was killed: %v", hpgProcs("pg_restore", marker))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := hpgFiles(tmp); len(left) != 0 {
		t.Fatalf("after kill -9, TMPDIR holds %v", left)
	}
}

// hpgOwnedSchema makes, as role owner, objects of every kind that has an
// owner or grants, with grants to reader.
func hpgOwnedSchema(owner, reader string) string {
	return fmt.Sprintf(`
CREATE SCHEMA app AUTHORIZATION %[1]s;
SET ROLE %[1]s;
CREATE TABLE app.items (id serial PRIMARY KEY, name text);
CREATE SEQUENCE app.invoice_no;
CREATE VIEW app.named AS SELECT id, name FROM app.items;
CREATE MATERIALIZED VIEW app.counts AS SELECT count(*) AS n FROM app.items;
CREATE FUNCTION app.score(i integer) RETURNS integer LANGUAGE sql AS 'SELECT i + 1';
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER items_touch BEFORE INSERT ON app.items FOR EACH ROW EXECUTE FUNCTION app.touch();
INSERT INTO app.items (name) SELECT 'item ' || i FROM generate_series(1, 100) i;
REFRESH MATERIALIZED VIEW app.counts;
GRANT USAGE ON SCHEMA app TO %[2]s;
GRANT SELECT ON app.items, app.named, app.counts TO %[2]s;
GRANT USAGE ON SEQUENCE app.invoice_no TO %[2]s;
REVOKE ALL ON FUNCTION app.score(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.score(integer) TO %[2]s;
RESET ROLE;`, owner, reader)
}

func hpgCatalog(t *testing.T, db string) string {
	return strings.Join(hpgQuery(t, db, `
		SELECT 'class ' || c.relname || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '-')
			FROM pg_class c WHERE c.relnamespace = 'app'::regnamespace
		UNION ALL SELECT 'proc ' || p.proname || ' ' || pg_get_userbyid(p.proowner) || ' ' || coalesce(p.proacl::text, '-')
			FROM pg_proc p WHERE p.pronamespace = 'app'::regnamespace
		UNION ALL SELECT 'schema ' || n.nspname || ' ' || pg_get_userbyid(n.nspowner) || ' ' || coalesce(n.nspacl::text, '-')
			FROM pg_namespace n WHERE n.nspname = 'app'
		UNION ALL SELECT 'trigger ' || tgname || ' ' || tgfoid::regproc::text FROM pg_trigger WHERE NOT tgisinternal
		ORDER BY 1`), "\n")
}

// TestHostilePGOwnersAndGrants: the normal case still works: a schema
// owned by a role that is not a superuser comes back with its owners and
// grants as in the source.
func TestHostilePGOwnersAndGrants(t *testing.T) {
	owner := hpgRole(t, "app", "NOLOGIN")
	reader := hpgRole(t, "app_ro", "NOLOGIN")
	src := hpgDatabase(t, "owned")
	hpgExec(t, "postgres", "ALTER DATABASE "+src+" OWNER TO "+owner)
	hpgExec(t, src, hpgOwnedSchema(owner, reader))
	want := hpgCatalog(t, src)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "owned", "--postgres", hpgServer+src)
	for _, jobs := range []string{"1", "2"} {
		target := hpgName("owned_r")
		hpgCleanup(t, target)
		c.restoreJSON(b.Snapshot, "--to", hpgServer+target, "-j", jobs)
		if got := hpgCatalog(t, target); got != want {
			t.Fatalf("-j %s: owners and grants differ\nsource:\n%s\nrestored:\n%s", jobs, want, got)
		}
		if o := hpgQuery(t, "postgres", "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1", target); len(o) != 1 || o[0] != owner {
			t.Fatalf("database owned by %v, want %s", o, owner)
		}
	}
}
