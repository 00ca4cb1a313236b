package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/engine/mysql"
)

// MariaDB restores and drills treat a snapshot as hostile: these tests
// make hostile snapshots for real (a mariadb-dump earlier on PATH prints
// what an attacker on the backup host would store) and check that the
// harm did not happen.

const hmyServer = "mysql://root@127.0.0.1:3306/"

var hmySeq atomic.Int64

func hmyName(what string) string {
	return fmt.Sprintf("coffer_hmy_%s_%d_%d", what, os.Getpid(), hmySeq.Add(1))
}

func hmyQuote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func hmyExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%.200s: %v", s, err)
		}
	}
}

func hmyCount(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// hmyDrop drops, at the end of the test, database name, the databases a
// --clean restore into it made beside it, and their definer accounts.
func hmyDrop(t *testing.T, admin *sql.DB, names ...string) {
	t.Cleanup(func() {
		for _, name := range names {
			like := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(name) + `\_%`
			rows, _ := admin.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ? OR SCHEMA_NAME LIKE ?", name, like)
			var dbs []string
			for rows != nil && rows.Next() {
				var s string
				rows.Scan(&s)
				dbs = append(dbs, s)
			}
			if rows != nil {
				rows.Close()
			}
			for _, d := range append(dbs, name) {
				mysql.DropDatabase(context.Background(), hmyServer, d) // and its definer account
			}
		}
	})
}

// hmyFakeDump returns a PATH setting under which mariadb-dump prints dump,
// whatever it is asked.
func hmyFakeDump(t *testing.T, dump string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.sql"), []byte(dump), 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)'; exit 0; fi\nexec cat '" + dir + "/dump.sql'\n"
	if err := os.WriteFile(filepath.Join(dir, "mariadb-dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH")
}

// hmyEvil stores dump as a snapshot of source, as a backup host whose
// mariadb-dump was replaced would: it needs a database to exist, which
// it creates empty.
func hmyEvil(t *testing.T, c *cli, admin *sql.DB, source, dump string) string {
	t.Helper()
	src := hmyName("evilsrc")
	hmyDrop(t, admin, src)
	hmyExec(t, admin, "CREATE DATABASE "+hmyQuote(src))
	return c.with(hmyFakeDump(t, dump)).backup(nil, "--source", source, "--mysql", hmyServer+src).Snapshot
}

// hmyDrillFails drills source on the MariaDB scratch server and requires
// it to fail; it returns the drill's output.
func hmyDrillFails(t *testing.T, c *cli, source string) string {
	t.Helper()
	r := c.run(nil, "drill", "--source", source, "--scratch", hmyServer, "--report-dir", t.TempDir(), "--state-dir", filepath.Join(c.dir, "state"))
	if r.code == 0 || !strings.Contains(r.stdout, "FAILED") {
		t.Fatalf("the drill of a hostile snapshot did not fail (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	return r.stdout + r.stderr
}

const hmyEnd = "\n-- Dump completed\n"

// TestHostileMariaDBClientCommands: a dump holding \! or system lines,
// which the mariadb client would run as shell commands, is refused by
// restore --to and by drill --scratch, naming the line; nothing runs.
func TestHostileMariaDBClientCommands(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	canary := filepath.Join(t.TempDir(), "CANARY")
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	for i, cmd := range []string{`\! touch ` + canary, "system touch " + canary} {
		source := fmt.Sprintf("evil%d", i)
		dump := "CREATE TABLE `t` (a INT);\nINSERT INTO `t` VALUES (1);\n" + cmd + "\nINSERT INTO `t` VALUES (2);" + hmyEnd
		snap := hmyEvil(t, c, admin, source, dump)
		dst := hmyName("dst")
		hmyDrop(t, admin, dst)
		msg := c.fail(nil, "restore", snap, "--to", hmyServer+dst)
		mustContain(t, "restore of "+cmd, msg, "line 3", "client", "never runs")
		out := hmyDrillFails(t, c, source)
		mustContain(t, "drill of "+cmd, out, "FAIL load", "line 3")
		if _, err := os.Stat(canary); err == nil {
			t.Fatalf("%s ran", cmd)
		}
		if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", dst); n != 0 {
			t.Errorf("the failed restore left database %s", dst)
		}
	}
}

// TestHostileMariaDBDrillReachesOut: a dump that drops a table of another
// database of the scratch server fails the drill, and the table keeps
// its rows; so does a restore --to.
func TestHostileMariaDBDrillReachesOut(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	victim := hmyName("victim")
	hmyDrop(t, admin, victim)
	v := hmyQuote(victim)
	hmyExec(t, admin, "CREATE DATABASE "+v, "CREATE TABLE "+v+".customers (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO "+v+".customers VALUES (1, 'Ana'), (2, 'Zoë'), (3, 'Li')")
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	for i, attack := range []string{"DROP TABLE " + v + ".customers", "/*!40000 DELETE FROM " + v + ".customers */", "CREATE USER coffer_hmy_evil@'%'"} {
		source := fmt.Sprintf("reach%d", i)
		hmyEvil(t, c, admin, source, "CREATE TABLE `t` (a INT);\nINSERT INTO `t` VALUES (1);\n"+attack+";"+hmyEnd)
		out := hmyDrillFails(t, c, source)
		mustContain(t, "drill of "+attack, out, "FAIL load", "line 3", "--trust-snapshot")
		dst := hmyName("dst")
		hmyDrop(t, admin, dst)
		msg := c.fail(nil, "restore", "latest", "--source", source, "--to", hmyServer+dst)
		mustContain(t, "restore of "+attack, msg, "line 3")
		if !strings.Contains(msg, "denied") && !strings.Contains(msg, "not a statement that a dump tool writes") {
			t.Errorf("restore of %s: neither the server denied it nor coffer refused it:\n%s", attack, msg)
		}
		if n := hmyCount(t, admin, "SELECT COUNT(*) FROM "+v+".customers"); n != 3 {
			t.Fatalf("after %s: the other database's table has %d rows, want 3", attack, n)
		}
	}
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM mysql.user WHERE User = 'coffer_hmy_evil'"); n != 0 {
		t.Fatal("the snapshot created an account")
	}
	if n := hmyCount(t, admin, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'coffer\_drill\_%'`); n != 0 {
		t.Logf("note: %d scratch databases exist (perhaps other tests' drills)", n)
	}
}

// TestHostileMariaDBResultFileName: databases named --result-file=PATH
// neither truncate nor create PATH, and do not stop --all-databases from
// backing up the others; the snapshot restores with --clean.
func TestHostileMariaDBResultFileName(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	dir, err := os.MkdirTemp("", "cf") // short: database names hold it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	canary, created := filepath.Join(dir, "canary"), filepath.Join(dir, "new")
	os.WriteFile(canary, []byte("keep me\n"), 0o600)
	plain := hmyName("plain")
	dbs := []string{"--result-file=" + canary, "--result-file=" + created, plain}
	user := hmyName("bk")
	pw := "pw-" + strconv.Itoa(os.Getpid())
	hmyDrop(t, admin, dbs...)
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS " + hmyQuote(user) + "@'127.0.0.1'") })
	hmyExec(t, admin, "CREATE USER "+hmyQuote(user)+"@'127.0.0.1' IDENTIFIED BY '"+pw+"'")
	for i, d := range dbs {
		q := hmyQuote(d)
		hmyExec(t, admin, "CREATE DATABASE "+q, "CREATE TABLE "+q+".t (id INT PRIMARY KEY)",
			fmt.Sprintf("INSERT INTO %s.t VALUES (1), (%d)", q, i+2),
			"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON "+hmyQuote(strings.ReplaceAll(d, "_", `\_`))+".* TO "+hmyQuote(user)+"@'127.0.0.1'")
	}
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.with("MYSQL_PWD="+pw).backup(nil, "--source", "all", "--mysql", "mysql://"+user+"@127.0.0.1:3306/", "--all-databases")
	ls := c.ok(nil, "ls", b.Snapshot[:8])
	for _, d := range dbs {
		mustContain(t, "coffer ls of the --all-databases snapshot", ls, d+".sql")
	}
	check := func(when string) {
		t.Helper()
		if got, _ := os.ReadFile(canary); string(got) != "keep me\n" {
			t.Fatalf("%s: the canary now holds %q", when, got)
		}
		if _, err := os.Stat(created); err == nil {
			t.Fatalf("%s: a file named by a database was created", when)
		}
	}
	check("after the backup")
	// Restored over themselves: loaded beside, verified (mariadb-dump of
	// the new databases), swapped.
	hmyExec(t, admin, "INSERT INTO "+hmyQuote(dbs[0])+".t VALUES (99)")
	var res restoreDB
	out := c.ok(nil, "restore", b.Snapshot, "--to", hmyServer, "--clean", "--drop-old", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified || len(res.Tables) != 3 {
		t.Fatalf("restore --clean of the --all-databases snapshot: %v\n%s", err, out)
	}
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM "+hmyQuote(dbs[0])+".t"); n != 2 {
		t.Fatalf("%s.t has %d rows after the restore, want 2", dbs[0], n)
	}
	check("after the restore")
}

// hmyShop makes a database of customers, orders logged by a trigger, a
// view, a procedure and a function; rows customers.
func hmyShop(t *testing.T, admin *sql.DB, name string, rows int) {
	t.Helper()
	q := hmyQuote(name)
	hmyExec(t, admin, "CREATE DATABASE "+q+" CHARACTER SET utf8mb4",
		"CREATE TABLE "+q+".customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), note TEXT)",
		"CREATE TABLE "+q+".orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, total DECIMAL(10,2), KEY (customer_id))",
		"CREATE TABLE "+q+".order_log (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT)",
		"CREATE TRIGGER "+q+".log_order AFTER INSERT ON "+q+".orders FOR EACH ROW INSERT INTO order_log (order_id) VALUES (NEW.id)",
		"CREATE VIEW "+q+".totals AS SELECT customer_id, SUM(total) AS total FROM "+q+".orders GROUP BY customer_id",
		"CREATE FUNCTION "+q+".tax(x DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN x * 0.19",
		"CREATE PROCEDURE "+q+".add_order(IN c INT, IN amount DECIMAL(10,2)) INSERT INTO orders (customer_id, total) VALUES (c, amount)",
		fmt.Sprintf("INSERT INTO %s.customers (name, note) SELECT CONCAT('Kundin Zoë ', seq), IF(seq %% 3 = 0, NULL, CONCAT('it''s \\\\ ', seq)) FROM %s.seq_1_to_%d", q, q, rows),
		fmt.Sprintf("INSERT INTO %s.orders (customer_id, total) SELECT 1 + seq %% %d, seq / 7 FROM %s.seq_1_to_%d", q, rows, q, rows))
}

// hmyWorks checks that database name's procedure, trigger, view and
// function work, and puts its rows back as they were.
func hmyWorks(t *testing.T, admin *sql.DB, name string) {
	t.Helper()
	q := hmyQuote(name)
	logged := hmyCount(t, admin, "SELECT COUNT(*) FROM "+q+".order_log")
	last := hmyCount(t, admin, "SELECT MAX(id) FROM "+q+".orders")
	hmyExec(t, admin, "CALL "+q+".add_order(1, 100)")
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM "+q+".order_log"); n != logged+1 {
		t.Fatalf("%s: the procedure's order was not logged by the trigger (%d, want %d)", name, n, logged+1)
	}
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM "+q+".totals"); n == 0 {
		t.Fatalf("%s: the view is empty", name)
	}
	var tax float64
	if err := admin.QueryRow("SELECT " + q + ".tax(100)").Scan(&tax); err != nil || tax != 19 {
		t.Fatalf("%s: tax(100) = %v, %v", name, tax, err)
	}
	hmyExec(t, admin, fmt.Sprintf("DELETE FROM %s.orders WHERE id > %d", q, last), fmt.Sprintf("DELETE FROM %s.order_log WHERE order_id > %d", q, last))
}

// TestHostileMariaDBCleanKeepsOld: restore --clean from a damaged pack,
// and with a load that fails halfway, leaves the database it was to
// replace with all its rows and objects, and says so; a good one swaps.
func TestHostileMariaDBCleanKeepsOld(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	src, old := hmyName("src"), hmyName("old")
	hmyDrop(t, admin, src, old)
	hmyShop(t, admin, src, 20000)
	hmyShop(t, admin, old, 3000)
	rows := func() int { return hmyCount(t, admin, "SELECT COUNT(*) FROM "+hmyQuote(old)+".customers") }
	untouched := func(what, msg string) {
		t.Helper()
		mustContain(t, what, msg, fmt.Sprintf("database %q is untouched", old))
		if n := rows(); n != 3000 {
			t.Fatalf("%s: %s has %d customers, want 3000", what, old, n)
		}
		hmyWorks(t, admin, old)
		like := strings.ReplaceAll(old, "_", `\_`) + `\_%`
		if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", like); n != 0 {
			t.Fatalf("%s: %d databases were left beside %s", what, n, old)
		}
	}

	// A load that fails halfway: a statement the server refuses after
	// some rows.
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	var dump strings.Builder
	dump.WriteString("CREATE TABLE `customers` (id INT PRIMARY KEY, name VARCHAR(100));\n")
	for i := range 50 {
		fmt.Fprintf(&dump, "INSERT INTO `customers` VALUES (%d,'x'),(%d,'y');\n", 2*i, 2*i+1)
	}
	dump.WriteString("SELECT * FROM no_such_table;\nINSERT INTO `customers` VALUES (1000,'z');" + hmyEnd)
	hmyEvil(t, c, admin, "half", dump.String())
	msg := c.fail(nil, "restore", "latest", "--source", "half", "--to", hmyServer+old, "--clean")
	untouched("restore --clean of a load failing halfway", msg)
	mustContain(t, "restore --clean of a load failing halfway", msg, "line 52", "no_such_table")

	// A damaged pack.
	repo := filepath.Join(t.TempDir(), "repo")
	d := newCLI(t, repo)
	d.init()
	b := d.backup(nil, "--source", "shop", "--mysql", hmyServer+src)
	hpgCorruptPack(t, repo)
	msg = d.fail(nil, "restore", b.Snapshot, "--to", hmyServer+old, "--clean")
	untouched("restore --clean from a damaged pack", msg)

	// A good snapshot takes its place; the old content is kept beside it.
	e := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	e.init()
	b = e.backup(nil, "--source", "shop", "--mysql", hmyServer+src)
	out := e.ok(nil, "restore", b.Snapshot, "--to", hmyServer+old, "--clean")
	mustContain(t, "restore --clean", out, old+"_before_")
	if n := rows(); n != 20000 {
		t.Fatalf("%s has %d customers after the swap, want 20000", old, n)
	}
	hmyWorks(t, admin, old)
	kept, _ := admin.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", strings.ReplaceAll(old, "_", `\_`)+`\_before\_%`)
	var before []string
	for kept.Next() {
		var s string
		kept.Scan(&s)
		before = append(before, s)
	}
	kept.Close()
	if len(before) != 1 || hmyCount(t, admin, "SELECT COUNT(*) FROM "+hmyQuote(before[0])+".customers") != 3000 {
		t.Fatalf("the old content was not kept: %v", before)
	}
	hmyWorks(t, admin, before[0])
}

// hmyTempFiles lists what is under dir.
func hmyTempFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// hmyChildren are the processes whose parent is pid, with their command
// lines and environments.
//
// A child that still runs coffer's own executable is one forked and not
// yet exec'd: it is a copy of coffer, environment included, for an
// instant, and is left out.
func hmyChildren(pid int) map[int][2]string {
	out := map[int][2]string{}
	self, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		dir := filepath.Dir(p)
		if exe, _ := os.Readlink(filepath.Join(dir, "exe")); exe == self {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
		child, _ := strconv.Atoi(filepath.Base(dir))
		out[child] = [2]string{string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), string(environ)}
	}
	return out
}

// TestHostileMariaDBKilled kills coffer with -9 in a backup (while
// mariadb-dump runs) and in restores (while the load account loads): no
// file holds the password afterwards (TMPDIR stays empty), no dump
// outlives coffer, and the load account left behind is dropped by the
// next restore; the database a killed --clean was to replace keeps its
// rows, and the next --clean drops the partial copy.
func TestHostileMariaDBKilled(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	src, dst, old := hmyName("ksrc"), hmyName("kdst"), hmyName("kold")
	hmyDrop(t, admin, src, dst, old)
	hmyShop(t, admin, src, 150000)
	hmyShop(t, admin, old, 1000)
	user, pw := hmyName("adm"), fmt.Sprintf("Secret-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS " + hmyQuote(user) + "@'127.0.0.1'") })
	hmyExec(t, admin, "CREATE USER "+hmyQuote(user)+"@'127.0.0.1' IDENTIFIED BY '"+pw+"'",
		"GRANT ALL PRIVILEGES ON *.* TO "+hmyQuote(user)+"@'127.0.0.1' WITH GRANT OPTION")
	server := "mysql://" + user + "@127.0.0.1:3306/"
	tmp := t.TempDir()
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"), "MYSQL_PWD="+pw, "TMPDIR="+tmp)
	c.init()
	noSecretLeft := func(when string) {
		t.Helper()
		if files := hmyTempFiles(tmp); len(files) != 0 {
			t.Errorf("%s: TMPDIR holds %v", when, files)
		}
	}
	leftAccounts := func() []string {
		rows, err := admin.Query(`SELECT User FROM mysql.user WHERE User LIKE 'coffer\_load\_%'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var u string
			rows.Scan(&u)
			var free int
			admin.QueryRow("SELECT IS_FREE_LOCK(?)", u).Scan(&free)
			if free == 1 {
				out = append(out, u)
			}
		}
		return out
	}

	// kill starts coffer with args and kills it with -9 once ready says so,
	// checking meanwhile that no child has the password in its command
	// line or environment.
	kill := func(what string, ready func() bool, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := c.cmd(ctx, nil, args...)
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		var children map[int][2]string
		for !ready() {
			for pid, ce := range hmyChildren(cmd.Process.Pid) {
				if strings.Contains(ce[0], pw) || strings.Contains(ce[1], pw) {
					t.Errorf("%s: child %d (%s) has the password in its command line or environment", what, pid, ce[0])
				}
			}
			select {
			case <-exited:
				t.Fatalf("%s: coffer ended before it could be killed:\n%s", what, output.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		children = hmyChildren(cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		time.Sleep(200 * time.Millisecond)
		for pid := range children {
			if syscall.Kill(pid, 0) == nil {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z ") {
					t.Errorf("%s: child %d (%s) outlived coffer", what, pid, children[pid][0])
				}
			}
		}
		noSecretLeft("after kill -9 of " + what)
	}

	// A backup, killed while mariadb-dump runs.
	kill("a backup", func() bool {
		return hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE 'SELECT /*!40001 SQL_NO_CACHE */%'", user) > 0
	},
		"backup", "--source", "big", "--mysql", server+src)
	b := c.backup(nil, "--source", "big", "--mysql", server+src)
	noSecretLeft("after a backup")

	// A restore, killed while its load account loads.
	before := leftAccounts()
	loading := func() bool {
		return hmyCount(t, admin, `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'coffer\_load\_%' AND DB = ? AND INFO LIKE 'INSERT%'`, dst) > 0
	}
	kill("a restore", loading, "restore", b.Snapshot, "--to", server+dst)
	left := slices.DeleteFunc(leftAccounts(), func(u string) bool { return slices.Contains(before, u) })
	t.Logf("load accounts left by the killed restore: %v (nobody knows their passwords)", left)

	// A --clean restore, killed while it loads beside the old database.
	newLoading := func() bool {
		return hmyCount(t, admin, `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'coffer\_load\_%' AND DB LIKE ? AND INFO LIKE 'INSERT%'`, strings.ReplaceAll(old, "_", `\_`)+`\_coffer\_new\_%`) > 0
	}
	kill("a restore --clean", newLoading, "restore", b.Snapshot, "--to", server+old, "--clean")
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM "+hmyQuote(old)+".customers"); n != 1000 {
		t.Fatalf("the database the killed --clean was to replace has %d customers, want 1000", n)
	}
	hmyWorks(t, admin, old)

	// The next restores drop what the killed ones left.
	out := c.ok(nil, "restore", b.Snapshot, "--to", server+old, "--clean", "--drop-old")
	t.Logf("the next restore --clean: %s", out)
	noSecretLeft("after the next restore")
	for _, u := range left {
		if n := hmyCount(t, admin, "SELECT COUNT(*) FROM mysql.user WHERE User = ?", u); n != 0 {
			t.Errorf("the load account %s left by the killed restore is still there after the next restore", u)
		}
	}
	like := strings.ReplaceAll(old, "_", `\_`) + `\_%`
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", like); n != 0 {
		t.Errorf("%d databases are left beside %s after the next restore --clean --drop-old", n, old)
	}
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM "+hmyQuote(old)+".customers"); n != 150000 {
		t.Fatalf("%s has %d customers after the restore, want 150000", old, n)
	}
	hmyWorks(t, admin, old)
}

// TestHostileMariaDBNormalSchema: the normal schema still restores and
// drills equal, table by table, with its view, trigger, procedure and
// function working.
func TestHostileMariaDBNormalSchema(t *testing.T) {
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() })
	src, dst := hmyName("nsrc"), hmyName("ndst")
	hmyDrop(t, admin, src, dst)
	hmyShop(t, admin, src, 30000)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "shop", "--mysql", hmyServer+src)
	var res restoreDB
	out := c.ok(nil, "restore", b.Snapshot, "--to", hmyServer+dst, "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified || len(res.Tables) != 3 {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	for _, tb := range res.Tables {
		if !tb.Match || tb.WantRows == 0 {
			t.Fatalf("table %+v", tb)
		}
	}
	hmyWorks(t, admin, dst)
	d, _ := c.drill("--source", "shop", "--scratch", hmyServer)
	if !d.Passed {
		t.Fatalf("drill: %+v", d)
	}
	if n := hmyCount(t, admin, `SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'coffer\_definer\_coffer\_drill\_%'`); n != 0 {
		t.Logf("note: %d drill definer accounts exist (perhaps other tests' drills)", n)
	}
}
