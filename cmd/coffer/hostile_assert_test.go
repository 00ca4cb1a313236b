package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostilePGDrillAssertions: the operator's assertions read tables the
// snapshot defined. Here the snapshot made "customers" a view over a
// function that runs a program on the server; created by a superuser at
// the source, it loads fine (a function's body runs only when called).
// The drill's assertion, which selects from the view, must not run it
// with the scratch server's superuser rights: the assertion fails, and
// no canary appears.
func TestHostilePGDrillAssertions(t *testing.T) {
	canary := hpgCanary(t)
	src := hpgDatabase(t, "viewsrc")
	hpgExec(t, src, `CREATE TABLE people (id int PRIMARY KEY, name text);
		INSERT INTO people SELECT g, 'Kunde ' || g FROM generate_series(1, 300) g;
		CREATE FUNCTION public.payload() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN COPY (SELECT 1) TO PROGRAM 'cat > `+canary+`'; RETURN 1; END $$;
		CREATE VIEW public.customers AS SELECT p.id, p.name, public.payload() AS x FROM people p`)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	c.backup(nil, "--source", "views", "--postgres", hpgServer+src)
	assertions := filepath.Join(t.TempDir(), "assert.yaml")
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(*) FROM (SELECT x FROM customers) s\n  expect: 300\n"), 0o600)
	for _, mode := range [][]string{{"--scratch", hpgServer}, {"--ephemeral"}} {
		args := append([]string{"drill", "--source", "views", "--assertions", assertions, "--report-dir", t.TempDir(),
			"--state-dir", filepath.Join(c.dir, "state")}, mode...)
		r := c.run(nil, args...)
		if hpgExists(canary) {
			t.Fatalf("drill %v: the assertion ran the snapshot's payload with superuser rights", mode)
		}
		if r.code == 0 {
			t.Fatalf("drill %v passed, but its assertion cannot have run:\n%s", mode, r.stdout)
		}
		mustContain(t, "drill "+mode[0], r.stdout+r.stderr, "assertion: customers", "external program")
	}
}

// TestHostileMariaDBDrillAssertions: the same attack on MariaDB. The
// snapshot's "customers" is a SQL SECURITY INVOKER view over an invoker
// function that changes a server-wide setting (SET GLOBAL, which only an
// administrator may); it loads, since creating a view or a function runs
// nothing. The operator's assertion selects from the view: it must not
// run with the scratch server's administrator rights, so the setting
// keeps its value and the drill fails.
func TestHostileMariaDBDrillAssertions(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	before := hmyCount(t, admin, "SELECT @@GLOBAL.net_read_timeout")
	t.Cleanup(func() { admin.Exec(fmt.Sprintf("SET GLOBAL net_read_timeout = %d", before)) })
	src := hmyName("asrc")
	hmyDrop(t, admin, src)
	hmyExec(t, admin, "CREATE DATABASE "+hmyQuote(src))
	in := mariadb(t, src)
	t.Cleanup(func() { in.Close() })
	hmyExec(t, in, "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO people VALUES (1, 'Ana'), (2, 'Zoë')",
		fmt.Sprintf("CREATE FUNCTION payload() RETURNS INT SQL SECURITY INVOKER BEGIN SET GLOBAL net_read_timeout = %d; RETURN 1; END", before+7),
		"CREATE SQL SECURITY INVOKER VIEW customers AS SELECT p.id, payload() AS x FROM people p")
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	c.backup(nil, "--source", "views", "--mysql", hmyServer+src)
	assertions := filepath.Join(t.TempDir(), "assert.yaml")
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(x) FROM customers\n  expect: 2\n"), 0o600)
	r := c.run(nil, "drill", "--source", "views", "--assertions", assertions, "--scratch", hmyServer,
		"--report-dir", t.TempDir(), "--state-dir", filepath.Join(c.dir, "state"))
	if n := hmyCount(t, admin, "SELECT @@GLOBAL.net_read_timeout"); n != before {
		t.Fatalf("the assertion ran the snapshot's function with the administrator's rights: net_read_timeout is %d, was %d", n, before)
	}
	if r.code == 0 {
		t.Fatalf("the drill passed, but its assertion cannot have run:\n%s", r.stdout)
	}
	mustContain(t, "drill", r.stdout+r.stderr, "assertion: customers", "denied")
}

// TestHostilePGKilledCleanSwept: a restore --clean killed mid-load leaves
// its partial new copy (and its load role) on the server; the next
// restore --clean into the same database drops them, says so, and
// leaves the database it replaces with the new data.
func TestHostilePGKilledCleanSwept(t *testing.T) {
	src := hpgDatabase(t, "ksrc")
	hpgExec(t, src, `CREATE TABLE a AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g;
		CREATE INDEX ON a (v);`)
	old := hpgDatabase(t, "kold")
	hpgExec(t, old, `CREATE TABLE keep (id int); INSERT INTO keep VALUES (1)`)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "k", "--postgres", hpgServer+src)
	killDuringRestore(t, c, "dbname='"+old+"_coffer_new_", "restore", b.Snapshot, "--to", hpgServer+old, "--clean", "--drop-old")
	left := func() []string {
		return hpgQuery(t, "postgres", "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", old+"_coffer_new_")
	}
	if len(left()) != 1 {
		t.Fatalf("after kill -9 the server has new copies %v, want the one partial copy", left())
	}
	if n := hpgQuery(t, old, "SELECT count(*) FROM keep"); len(n) != 1 || n[0] != "1" {
		t.Fatalf("the killed restore changed the old database: %v", n)
	}
	r := c.restoreJSON(b.Snapshot, "--to", hpgServer+old, "--clean", "--drop-old")
	if !r.Verified || !strings.Contains(strings.Join(r.Notes, "\n"), "a killed restore") {
		t.Fatalf("the second restore: verified %v, notes %q", r.Verified, r.Notes)
	}
	if l := left(); len(l) != 0 {
		t.Fatalf("after the next restore --clean, new copies %v remain", l)
	}
	if n := hpgQuery(t, old, "SELECT count(*) FROM a"); len(n) != 1 || n[0] != "300000" {
		t.Fatalf("the restored database has %v rows", n)
	}
	if roles := hpgQuery(t, "postgres", `SELECT rolname FROM pg_roles r JOIN pg_shdescription d ON d.objoid = r.oid
		WHERE d.description LIKE $1`, "coffer load role for "+old+"%"); len(roles) != 0 {
		t.Fatalf("load roles %v remain", roles)
	}
}

// TestHostilePGKilledRestoreSwept: a restore into a new database killed
// mid-load leaves it partly loaded, still owned by its load role; the
// next restore into that name drops it, says so, and restores.
func TestHostilePGKilledRestoreSwept(t *testing.T) {
	src := hpgDatabase(t, "nsrc")
	hpgExec(t, src, `CREATE TABLE a AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g;
		CREATE INDEX ON a (v);`)
	target := hpgName("nnew")
	hpgCleanup(t, target)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "n", "--postgres", hpgServer+src)
	killDuringRestore(t, c, "dbname='"+target+"'", "restore", b.Snapshot, "--to", hpgServer+target)
	if n := hpgQuery(t, "postgres", "SELECT datname FROM pg_database WHERE datname = $1", target); len(n) != 1 {
		t.Fatalf("after kill -9 the partial database is %v, want it there", n)
	}
	r := c.restoreJSON(b.Snapshot, "--to", hpgServer+target)
	if !r.Verified || !strings.Contains(strings.Join(r.Notes, "\n"), "partly loaded") {
		t.Fatalf("the second restore: verified %v, notes %q", r.Verified, r.Notes)
	}
	if n := hpgQuery(t, target, "SELECT count(*) FROM a"); len(n) != 1 || n[0] != "300000" {
		t.Fatalf("the restored database has %v rows", n)
	}
}

// killDuringRestore runs coffer with args, kills it with SIGKILL as soon
// as a pg_restore whose command line holds marker runs, and waits until
// that pg_restore has died with it.
func killDuringRestore(t *testing.T, c *cli, marker string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for len(hpgProcs("pg_restore", marker)) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the restore ended before pg_restore was seen: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
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
}
