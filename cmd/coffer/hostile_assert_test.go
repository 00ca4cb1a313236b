package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
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
		BEGIN COPY (SELECT 1) TO PROGRAM 'id > `+canary+`'; RETURN 1; END $$;
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
