package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/engine"
)

// A snapshot is input from an adversary: these tests load crafted dumps
// and check that the harm did not happen.

const dumpEnd = "\n-- Dump completed\n"

// restoreDump loads dump (one database, named src in the snapshot) into
// database dst as ToDatabase does: Load, then Commit, or Abort on error.
func restoreDump(t *testing.T, dst, src, dump string, opts TargetOptions) (*Target, error) {
	t.Helper()
	ctx := context.Background()
	tg, err := NewTarget(rootDSN(dst), opts)
	if err != nil {
		t.Fatal(err)
	}
	rep := engine.Report{Parts: []engine.Part{{Name: src + ".sql", Size: int64(len(dump))}}}
	if err := tg.Load(ctx, strings.NewReader(dump), rep); err != nil {
		if aerr := tg.Abort(ctx); aerr != nil {
			t.Errorf("abort: %v", aerr)
		}
		return tg, err
	}
	_, err = tg.Commit(ctx)
	return tg, err
}

// victim makes a database of the same server that no restore may touch:
// table t with 3 rows.
func victim(t *testing.T, db *sql.DB) string {
	t.Helper()
	v := newName(t, db, "victim")
	run(t, db, "CREATE DATABASE "+quoteIdent(v), "CREATE TABLE "+quoteIdent(v)+".t (id INT PRIMARY KEY, secret VARCHAR(20))",
		"INSERT INTO "+quoteIdent(v)+".t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
	return v
}

func rowCount(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// noLeftLoadAccounts fails if a load account remains that no running
// coffer holds (its lock is free).
func noLeftLoadAccounts(t *testing.T, db *sql.DB) {
	t.Helper()
	users, err := engine.QueryStrings(context.Background(), db, `SELECT User FROM mysql.user WHERE User LIKE 'coffer\_load\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		var free int
		db.QueryRow("SELECT IS_FREE_LOCK(?)", u).Scan(&free)
		if free == 1 {
			t.Errorf("load account %s was left behind", u)
		}
	}
}

func TestHostileStatementsStayInTheirDatabase(t *testing.T) {
	db := rootDB(t)
	v := victim(t, db)
	vq := quoteIdent(v)
	out := filepath.Join(t.TempDir(), "outfile")
	dir, err := os.MkdirTemp("", "coffer-datadir-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777) // writable by the server: only coffer refuses
	users := func() int { return rowCount(t, db, "mysql.user") }
	var maxConn string
	db.QueryRow("SELECT @@GLOBAL.max_connections").Scan(&maxConn)
	before := users()
	for _, tc := range []struct{ name, stmt string }{
		{"drop a table of another database", "DROP TABLE " + vq + ".t"},
		{"in a versioned comment", "/*!40000 DELETE FROM " + vq + ".t */"},
		{"write another database", "INSERT INTO " + vq + ".t VALUES (9, 'x')"},
		{"read another database", "CREATE TABLE stolen AS SELECT * FROM " + vq + ".t"},
		{"switch database", "/*!40000 USE " + vq + " */"},
		{"create a database", "CREATE DATABASE " + quoteIdent(v+"_new")},
		{"create user", "CREATE USER coffer_t_evil@'%' IDENTIFIED BY 'x'"},
		{"grant", "GRANT ALL PRIVILEGES ON *.* TO CURRENT_USER() WITH GRANT OPTION"},
		{"set global", "SET GLOBAL max_connections = 3"},
		{"set password", "SET PASSWORD FOR root@localhost = PASSWORD('x')"},
		{"into outfile", "SELECT 'x' INTO OUTFILE '" + out + "'"},
		{"load data infile", "LOAD DATA INFILE '/etc/passwd' INTO TABLE t1"},
		{"load data local infile", "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t1"},
		{"a view of another database", "CREATE VIEW peek AS SELECT secret FROM " + vq + ".t"},
		{"install a plugin", "INSTALL SONAME 'ha_connect'"},
		{"a table in a directory of its choosing", "CREATE TABLE d (a INT) /*!50000 DATA DIRECTORY = '" + dir + "' */"},
		{"an index in a directory of its choosing", "ALTER TABLE t1 ENGINE=MyISAM, INDEX  DIRECTORY='" + dir + "'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := newName(t, db, "hostile")
			dump := "CREATE TABLE t1 (a VARCHAR(200));\nINSERT INTO t1 VALUES ('ok');\n" + tc.stmt + ";\nSELECT 1;" + dumpEnd
			_, err := restoreDump(t, dst, "shop", dump, TargetOptions{})
			var se *StatementError
			if !errors.As(err, &se) || se.Line != 3 || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), `"shop"`) {
				t.Fatalf("load: %v", err)
			}
			t.Log(err)
			var n int
			db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", dst).Scan(&n)
			if n != 0 {
				t.Error("the database the failed load created was not dropped")
			}
		})
	}
	if n := rowCount(t, db, vq+".t"); n != 3 {
		t.Errorf("the other database's table has %d rows, want 3", n)
	}
	var now string
	db.QueryRow("SELECT @@GLOBAL.max_connections").Scan(&now)
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("the server made %d files in %s", len(files), dir)
	}
	if _, err := os.Stat(out); err == nil || users() != before || now != maxConn {
		t.Errorf("outfile written (%v), %d accounts (were %d), max_connections %s (was %s)", err, users(), before, now, maxConn)
	}
	noLeftLoadAccounts(t, db)
}

func TestHostileClientCommands(t *testing.T) {
	db := rootDB(t)
	canary := filepath.Join(t.TempDir(), "CANARY")
	for _, cmd := range []string{`\! touch ` + canary, "system touch " + canary, `\. /etc/passwd`, "source /etc/passwd", "tee " + canary, "use mysql"} {
		t.Run(cmd, func(t *testing.T) {
			dst := newName(t, db, "cmd")
			dump := "CREATE TABLE t1 (a INT);\n" + cmd + "\nINSERT INTO t1 VALUES (1);" + dumpEnd
			for _, opts := range []TargetOptions{{}, {TrustSnapshot: true}} {
				_, err := restoreDump(t, dst, "shop", dump, opts)
				var de *DumpError
				if !errors.As(err, &de) || de.Line != 2 || !strings.Contains(err.Error(), "client") {
					t.Fatalf("trust %v: %v", opts.TrustSnapshot, err)
				}
			}
			if _, err := os.Stat(canary); err == nil {
				t.Fatal("the client command ran")
			}
		})
	}
}

// TestHostileDefiners loads objects whose dump names root as their
// definer: they are made with the database's definer account, which may
// use only that database, and they work, within it.
func TestHostileDefiners(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	v := victim(t, db)
	vq := quoteIdent(v)
	dst := newName(t, db, "definers")
	dump := "CREATE TABLE t (id INT PRIMARY KEY);\nCREATE TABLE lg (x INT);\n" +
		"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select `t`.`id` AS `id` from `t` */;\n" +
		"DELIMITER ;;\n" +
		"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO lg VALUES (NEW.id) */;;\n" +
		"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER evil AFTER INSERT ON lg FOR EACH ROW BEGIN IF NEW.x = 666 THEN DELETE FROM " + vq + ".t; END IF; END */;;\n" +
		"CREATE DEFINER=`root`@`localhost` PROCEDURE `add`(IN a INT)\nBEGIN INSERT INTO t VALUES (a); SELECT COUNT(*) FROM lg; END ;;\n" +
		"CREATE DEFINER = 'root'@'%' FUNCTION `wipe`() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM " + vq + ".t; RETURN 1; END ;;\n" +
		"/*!50106 CREATE*/ /*!50117 DEFINER=CURRENT_USER*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO DELETE FROM lg */ ;;\n" +
		"DELIMITER ;\n" + dumpEnd
	tg, err := restoreDump(t, dst, "shop", dump, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notes: %q", tg.Notes())
	if len(tg.Notes()) == 0 || !strings.Contains(strings.Join(tg.Notes(), " "), definerFor(dst).sql()) {
		t.Errorf("the notes do not say who the definer is: %q", tg.Notes())
	}
	definers, err := engine.QueryStrings(ctx, db, `SELECT DISTINCT DEFINER FROM (
		SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? UNION ALL
		SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? UNION ALL
		SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? UNION ALL
		SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) d`, dst, dst, dst, dst)
	if err != nil || len(definers) != 1 || definers[0] != definerFor(dst).definer() {
		t.Fatalf("definers %v (%v), want %s", definers, err, definerFor(dst).definer())
	}
	grants, _ := engine.QueryStrings(ctx, db, "SHOW GRANTS FOR "+definerFor(dst).sql())
	if len(grants) != 2 || !strings.HasPrefix(grants[0], "GRANT USAGE ON *.*") || !strings.Contains(grants[1], "ON "+grantOn(dst)) {
		t.Fatalf("the definer's grants: %q", grants)
	}
	var locked string
	db.QueryRow("SELECT JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv WHERE User = ? AND Host = ?", definerFor(dst).user, definerHost).Scan(&locked)
	if locked != "true" && locked != "1" {
		t.Errorf("the definer account is not locked: %q", locked)
	}

	// What the database holds works, within the database.
	q := quoteIdent(dst)
	run(t, db, "CALL "+q+".`add`(7)")
	if n := rowCount(t, db, q+".v"); n != 1 || rowCount(t, db, q+".lg") != 1 {
		t.Fatalf("procedure, trigger and view: %d rows in the view", n)
	}
	// What reaches beyond it fails, and harms nothing.
	for _, s := range []string{"SELECT " + q + ".wipe()", "INSERT INTO " + q + ".lg VALUES (666)"} {
		if _, err := db.Exec(s); err == nil {
			t.Errorf("%s succeeded", s)
		} else {
			t.Logf("%s: %v", s, err)
		}
	}
	if n := rowCount(t, db, vq+".t"); n != 3 {
		t.Fatalf("the other database's table has %d rows, want 3", n)
	}

	// Trusted, the snapshot's definers are kept.
	trusted := newName(t, db, "trusted")
	if _, err := restoreDump(t, trusted, "shop", "DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE `p`() SELECT 1 ;;\nDELIMITER ;"+dumpEnd, TargetOptions{TrustSnapshot: true}); err != nil {
		t.Fatal(err)
	}
	if d, _ := engine.QueryStrings(ctx, db, "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?", trusted); len(d) != 1 || d[0] != "root@localhost" {
		t.Fatalf("trusted: definers %v", d)
	}

	// Dropping the database drops its definer.
	if err := DropDatabase(ctx, rootDSN(""), dst); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, db, "mysql.user WHERE User = '"+definerFor(dst).user+"'"); n != 0 {
		t.Error("DropDatabase left the definer account")
	}
	noLeftLoadAccounts(t, db)
}

// TestHostileGrantWildcards: in GRANT, _ in a database name matches any
// character; the load account of coffer_t_w_1 must not reach coffer_tXwX1.
func TestHostileGrantWildcards(t *testing.T) {
	db := rootDB(t)
	dst := newName(t, db, "w")
	other := strings.ReplaceAll(dst, "_", "X")
	t.Cleanup(func() { dropAll(db, other) })
	oq := quoteIdent(other)
	run(t, db, "CREATE DATABASE "+oq, "CREATE TABLE "+oq+".t (a INT)", "INSERT INTO "+oq+".t VALUES (1)")
	_, err := restoreDump(t, dst, "shop", "DROP TABLE "+oq+".t;"+dumpEnd, TargetOptions{})
	if err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("load: %v", err)
	}
	if n := rowCount(t, db, oq+".t"); n != 1 {
		t.Fatalf("%s.t has %d rows", other, n)
	}
}

// TestHostileDatabaseNamedLikeAnOption: a database named
// --result-file=PATH is a name: the dump neither truncates nor creates
// PATH, and the database is dumped and digested like any other.
func TestHostileDatabaseNamedLikeAnOption(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	dir, err := os.MkdirTemp("", "cf") // short: the name holds it
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	canary := filepath.Join(dir, "canary")
	os.WriteFile(canary, []byte("keep me\n"), 0o600)
	created := filepath.Join(dir, "created")
	plain := newName(t, db, "plain")
	run(t, db, "CREATE DATABASE "+quoteIdent(plain), "CREATE TABLE "+quoteIdent(plain)+".t (a INT)", "INSERT INTO "+quoteIdent(plain)+".t VALUES (1), (2)")
	var names []string
	for _, path := range []string{canary, created} {
		name := "--result-file=" + path
		if len(name) > 64 {
			t.Skipf("the temporary directory %s is too long for a database name", dir)
		}
		names = append(names, name)
		t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + quoteIdent(name)) })
		run(t, db, "CREATE DATABASE "+quoteIdent(name), "CREATE TABLE "+quoteIdent(name)+".t (a INT)", "INSERT INTO "+quoteIdent(name)+".t VALUES (1)")
	}
	s, err := Open(ctx, rootDSN(""), Options{Databases: append(names, plain)})
	if err != nil {
		t.Fatal(err)
	}
	dump := readAll(t, ctx, s)
	rep := s.Report()
	if len(rep.Parts) != 3 || rowsOf(rep.Tables, names[0]+".t") != 1 || rowsOf(rep.Tables, plain+".t") != 2 {
		t.Fatalf("parts %+v, tables %+v", rep.Parts, rep.Tables)
	}
	if b, _ := os.ReadFile(canary); string(b) != "keep me\n" {
		t.Fatalf("the canary now holds %q", b)
	}
	if _, err := os.Stat(created); err == nil {
		t.Fatal("the dump created a file named by a database")
	}
	// Restored under its own name into a fresh name, and digested.
	dst := newName(t, db, "optname")
	tg, _ := NewTarget(rootDSN(dst), TargetOptions{})
	one := engine.Report{Parts: []engine.Part{{Name: names[0] + ".sql", Size: rep.Parts[0].Size}}, Tables: rep.Tables}
	if err := tg.Load(ctx, bytes.NewReader(dump[:rep.Parts[0].Size]), one); err != nil {
		t.Fatal(err)
	}
	got, err := tg.Digests(ctx)
	if err != nil || rowsOf(got, names[0]+".t") != 1 {
		t.Fatalf("digests %+v: %v", got, err)
	}
	if b, _ := os.ReadFile(canary); string(b) != "keep me\n" {
		t.Fatalf("the canary now holds %q", b)
	}
}

// TestHostileCleanKeepsTheOldDatabase: --clean loads beside the database
// it replaces; a load that fails halfway, or a stream that breaks, leaves
// it with all its rows, views, triggers and routines, and says so.
func TestHostileCleanKeepsTheOldDatabase(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	src := newName(t, db, "cleansrc")
	makeShop(t, db, src, 3000)
	s, err := Open(ctx, rootDSN(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dump := readAll(t, ctx, s)
	rep := s.Report()
	dst := newName(t, db, "cleandst")
	makeShop(t, db, dst, 500)
	want, err := Digests(ctx, rootDSN(dst))
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		got, err := Digests(ctx, rootDSN(dst))
		if err != nil {
			t.Fatal(err)
		}
		mustMatch(t, what, want, got)
		var left int
		db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", strings.ReplaceAll(dst, "_", `\_`)+`\_%`).Scan(&left)
		if left != 0 {
			t.Fatalf("%s: %d databases were left beside it", what, left)
		}
		run(t, db, "CALL "+quoteIdent(dst)+".add_order(1, 2.50)")
		if n := rowCount(t, db, quoteIdent(dst)+".order_log"); n != 401 {
			t.Fatalf("%s: order_log has %d rows after the procedure and its trigger, want 401", what, n)
		}
		run(t, db, "DELETE FROM "+quoteIdent(dst)+".orders WHERE id > 400", "DELETE FROM "+quoteIdent(dst)+".order_log WHERE id > 400")
		if want, err = Digests(ctx, rootDSN(dst)); err != nil {
			t.Fatal(err)
		}
	}

	// A statement fails halfway through the data.
	cut := bytes.Index(dump, []byte("INSERT INTO `payments`"))
	broken := string(dump[:cut]) + "DROP TABLE mysql.user;\n" + string(dump[cut:])
	_, err = restoreDump(t, dst, src, broken, TargetOptions{Clean: true})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("database %q is untouched", dst)) || !strings.Contains(err.Error(), "mysql") {
		t.Fatalf("a load failing halfway: %v", err)
	}
	unchanged("after a load failing halfway")

	// The stream breaks (a damaged pack).
	tg, _ := NewTarget(rootDSN(dst), TargetOptions{Clean: true})
	r := &failingReader{r: bytes.NewReader(dump), n: len(dump) / 2, err: errors.New("pack 3f2a: damaged")}
	err = tg.Load(ctx, r, engine.Report{Parts: []engine.Part{{Name: src + ".sql", Size: int64(len(dump))}}})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("database %q is untouched", dst)) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a broken stream: %v", err)
	}
	if err := tg.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(tg.Notes(), " "), fmt.Sprintf("database %q is untouched", dst)) {
		t.Errorf("the notes after Abort do not say the database was kept: %q", tg.Notes())
	}
	unchanged("after a broken stream")

	// A good load, verified, then swapped: the old content is kept.
	tg, _ = NewTarget(rootDSN(dst), TargetOptions{Clean: true})
	tg.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	if err := tg.Load(ctx, bytes.NewReader(dump), rep); err != nil {
		t.Fatal(err)
	}
	got, err := tg.Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, "the new database", rep.Tables, got)
	notes, err := tg.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := dst + "_before_20260102030405"
	if len(notes) != 1 || !strings.Contains(notes[0], before) {
		t.Fatalf("notes %q", notes)
	}
	live, err := Digests(ctx, rootDSN(dst))
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, "the swapped database", rep.Tables, relabel(live, dst, src))
	old, err := Digests(ctx, rootDSN(before))
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, "the old content, kept", want, relabel(old, before, dst))
	for _, d := range []string{dst, before} {
		q := quoteIdent(d)
		n := rowCount(t, db, q+".order_log")
		run(t, db, "CALL "+q+".add_order(1, 2.50)")
		var total sql.NullFloat64
		db.QueryRow("SELECT " + q + ".tax(100)").Scan(&total)
		if rowCount(t, db, q+".order_log") != n+1 || rowCount(t, db, q+".customer_totals") == 0 || total.Float64 != 19 {
			t.Fatalf("%s: the procedure, its trigger, the view or the function do not work", d)
		}
	}
}

type failingReader struct {
	r   *bytes.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	n, err := f.r.Read(p[:min(len(p), f.n)])
	f.n -= n
	return n, err
}
