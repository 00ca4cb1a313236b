package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/coffer-backup/coffer/engine"
)

// The tests need the real MariaDB (or MySQL) server of DESIGN.md: root
// without a password on 127.0.0.1:3306. A missing server fails them.
const server = "127.0.0.1:3306"

var nameSeq atomic.Int64

func rootDSN(db string) string { return "mysql://root@" + server + "/" + db }

// rootDB connects as root; it also clears the password variables, which
// would otherwise apply to root.
func rootDB(t *testing.T) *sql.DB {
	t.Helper()
	t.Setenv(EnvPassword, "")
	t.Setenv(EnvPasswordFile, "")
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.MultiStatements = "root", "tcp", server, true
	cfg.Timeout, cfg.Logger = 5*time.Second, nopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	if err := db.Ping(); err != nil {
		t.Fatalf("MariaDB is not reachable at %s as root without a password (%v): start it (e.g. `service mariadb start`); these tests need the real server", server, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newName returns a database name no other test uses, and drops that
// database at the end of the test.
func newName(t *testing.T, db *sql.DB, what string) string {
	t.Helper()
	name := fmt.Sprintf("coffer_t_%s_%d_%d", what, os.Getpid(), nameSeq.Add(1))
	t.Cleanup(func() { dropAll(db, name) })
	return name
}

// dropAll drops database name, the databases a --clean restore into it
// made beside it, and their definer accounts.
func dropAll(db *sql.DB, name string) {
	names, _ := engine.QueryStrings(context.Background(), db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", strings.ReplaceAll(name, "_", `\_`)+`\_%`)
	for _, n := range append(names, name) {
		db.Exec("DROP DATABASE IF EXISTS " + quoteIdent(n))
		db.Exec("DROP USER IF EXISTS " + definerFor(n).sql())
	}
}

func run(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%.200s: %v", s, err)
		}
	}
}

// makeShop creates a synthetic customer database with n customers,
// 0.8 n orders (each logged by a trigger) and 0.4 n payments.
func makeShop(t *testing.T, db *sql.DB, name string, n int) {
	t.Helper()
	q := quoteIdent(name)
	run(t, db, "CREATE DATABASE "+q+" CHARACTER SET utf8mb4", "USE "+q,
		`CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL,
			email VARCHAR(200) NULL, phone VARCHAR(40), address TEXT, balance DECIMAL(12,2),
			created DATETIME, photo BLOB NULL, notes MEDIUMTEXT NULL) ENGINE=InnoDB`,
		`CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL,
			total DECIMAL(12,2), status ENUM('new','paid','shipped'), placed TIMESTAMP NULL,
			note VARCHAR(255) NULL, weight DOUBLE, KEY (customer_id)) ENGINE=InnoDB`,
		`CREATE TABLE payments (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT,
			amount DOUBLE, method VARCHAR(20), raw VARBINARY(64) NULL, flags BIT(8)) ENGINE=InnoDB`,
		`CREATE TABLE order_log (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT, what VARCHAR(20)) ENGINE=InnoDB`,
		`CREATE TABLE pair_a (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB`,
		`CREATE TABLE pair_b (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB`,
		`CREATE TABLE tags (a INT, label TEXT) ENGINE=InnoDB`, // no primary key
		`CREATE TABLE empty_table (x INT)`,
		`CREATE TRIGGER orders_log AFTER INSERT ON orders FOR EACH ROW
			INSERT INTO order_log (order_id, what) VALUES (NEW.id, 'created')`,
		`CREATE VIEW customer_totals AS SELECT c.id, c.name, SUM(o.total) AS total
			FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name`,
		`CREATE FUNCTION tax(total DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN total * 0.19`,
		`CREATE PROCEDURE add_order(IN cid INT, IN amount DECIMAL(12,2))
			BEGIN INSERT INTO orders (customer_id, total, status) VALUES (cid, amount, 'new'); SELECT LAST_INSERT_ID(); END`,
		fmt.Sprintf(`INSERT INTO customers (name, email, phone, address, balance, created, photo, notes)
			SELECT CONCAT('Zoë Müller-日本 😀 ', seq), IF(seq %% 7 = 0, NULL, CONCAT('kunde', seq, '@example.com')),
				CONCAT('+49 30 ', seq), CONCAT(seq, ' Hauptstraße\n10115 Berlin'), seq / 3,
				'2024-01-01' + INTERVAL seq MINUTE,
				IF(seq %% 5 = 0, NULL, CONCAT(UNHEX('00275C220D0A1A00'), seq, '\'"\\')),
				CASE WHEN seq %% 20000 = 1 THEN REPEAT('large text ✓ ', 90000)
					WHEN seq %% 3 = 0 THEN CONCAT('note ', seq, ' with ''quotes'' and \\backslash\\') END
			FROM seq_1_to_%d`, n),
		fmt.Sprintf(`INSERT INTO orders (customer_id, total, status, placed, note, weight)
			SELECT 1 + seq %% %d, (seq %% 997) + 0.99, ELT(1 + seq %% 3, 'new', 'paid', 'shipped'),
				'2024-03-01' + INTERVAL seq SECOND, IF(seq %% 3 = 0, NULL, CONCAT('order ', seq)), seq / 7e3
			FROM seq_1_to_%d`, n, n*8/10),
		fmt.Sprintf(`INSERT INTO payments (order_id, amount, method, raw, flags)
			SELECT seq, seq * 1.25, ELT(1 + seq %% 2, 'card', 'sepa'), IF(seq %% 4 = 0, NULL, UNHEX(SHA1(seq))), seq %% 256
			FROM seq_1_to_%d`, n*4/10),
		`INSERT INTO tags VALUES (1, 'a'), (1, 'a'), (2, NULL), (3, '')`,
	)
}

func readAll(t *testing.T, ctx context.Context, s *Source) []byte {
	t.Helper()
	c := engine.NewConcat(ctx, s.Parts()...)
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return b
}

func mustMatch(t *testing.T, what string, want, got []engine.TableDigest) {
	t.Helper()
	res := engine.Compare(want, got)
	if !engine.AllMatch(res) || len(res) == 0 {
		t.Fatalf("%s: digests differ: %+v", what, res)
	}
}

func rowsOf(ds []engine.TableDigest, table string) int64 {
	for _, d := range ds {
		if d.Table == table {
			return d.Rows
		}
	}
	return -1
}

func TestBackupRestoreVerify(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	src := newName(t, db, "shop")
	start := time.Now()
	makeShop(t, db, src, 100000)
	t.Logf("created the source database in %s", time.Since(start).Round(time.Millisecond))

	live, err := Digests(ctx, rootDSN(src))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, d := range live {
		total += d.Rows
	}
	if total < 200000 || rowsOf(live, src+".customers") != 100000 || rowsOf(live, src+".order_log") != 80000 || rowsOf(live, src+".empty_table") != 0 || rowsOf(live, src+".tags") != 4 {
		t.Fatalf("digests of the source: %+v", live)
	}
	if rowsOf(live, src+".customer_totals") != -1 {
		t.Fatal("a view was digested as a table")
	}

	s, err := Open(ctx, rootDSN(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.ServerVersion(), "MariaDB ") && !strings.HasPrefix(s.ServerVersion(), "MySQL ") || !slices.Equal(s.Databases(), []string{src}) {
		t.Fatalf("version %q, databases %v", s.ServerVersion(), s.Databases())
	}
	start = time.Now()
	dump := readAll(t, ctx, s)
	t.Logf("dumped %d rows, %.1f MB, in %s", total, float64(len(dump))/1e6, time.Since(start).Round(time.Millisecond))
	rep := s.Report()
	if len(rep.Parts) != 1 || rep.Parts[0] != (engine.Part{Name: src + ".sql", Size: int64(len(dump))}) {
		t.Fatalf("parts: %+v", rep.Parts)
	}
	mustMatch(t, "stream against live", rep.Tables, live)
	if bytes.Contains(dump, []byte("CREATE DATABASE")) || bytes.Contains(dump, []byte("\nUSE ")) {
		t.Fatal("the dump names its database; it could not load under another name")
	}

	// The same data dumps to the same bytes, so that nights deduplicate.
	s2, err := Open(ctx, rootDSN(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again := readAll(t, ctx, s2); !bytes.Equal(again, dump) {
		t.Fatal("two dumps of unchanged data differ")
	}

	// Restore into a new database, under another name.
	dst := newName(t, db, "restored")
	tg, err := NewTarget(rootDSN(dst), TargetOptions{Clean: false, Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Engine() != "mysql" || tg.String() != rootDSN(dst) {
		t.Fatalf("target %q %q", tg.Engine(), tg.String())
	}
	start = time.Now()
	if err := tg.Load(ctx, bytes.NewReader(dump), rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	got, err := tg.Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("digested the restored database in %s", time.Since(start).Round(time.Millisecond))
	mustMatch(t, "restored against the backup", rep.Tables, got)
	var objects int
	db.QueryRow(`SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?) +
		(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) +
		(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?)`, dst, dst, dst).Scan(&objects)
	if objects != 4 {
		t.Fatalf("the restored database has %d views, routines and triggers, want 4", objects)
	}
	// They work, as a locked account that may use only this database: the
	// procedure adds an order, whose trigger logs it.
	dq := quoteIdent(dst)
	run(t, db, "CALL "+dq+".add_order(42, 9.99)")
	var tax float64
	db.QueryRow("SELECT " + dq + ".tax(100)").Scan(&tax)
	if n := rowCount(t, db, dq+".order_log"); n != 80001 || tax != 19 || rowCount(t, db, dq+".customer_totals") == 0 {
		t.Fatalf("after the procedure: %d order_log rows, tax %v", n, tax)
	}
	run(t, db, "DELETE FROM "+dq+".orders WHERE id > 80000", "DELETE FROM "+dq+".order_log WHERE id > 80000")
	definers, _ := engine.QueryStrings(ctx, db, "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? UNION SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", dst, dst, dst)
	if len(definers) != 1 || definers[0] != definerFor(dst).definer() {
		t.Fatalf("definers %v", definers)
	}
	t.Logf("notes: %q", tg.Notes())
	autoInc := func(schema string) (n int64) {
		db.QueryRow(`SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'customers'`, schema).Scan(&n)
		return n
	}
	if a, b := autoInc(src), autoInc(dst); a != b || a <= 100000 {
		t.Fatalf("AUTO_INCREMENT %d restored as %d", a, b)
	}

	// Change the source: the digests say which tables differ, and how.
	run(t, db, "USE "+quoteIdent(src),
		"UPDATE customers SET balance = balance + 0.01 WHERE id = 1234",
		"DELETE FROM payments WHERE id = 5")
	changed, err := Digests(ctx, rootDSN(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range engine.Compare(rep.Tables, changed) {
		switch r.Table {
		case src + ".customers":
			if r.Match || r.Reason != "same row count, different contents" {
				t.Errorf("customers after an update: %+v", r)
			}
		case src + ".payments":
			if r.Match || r.GotRows != 39999 {
				t.Errorf("payments after a delete: %+v", r)
			}
		default:
			if !r.Match {
				t.Errorf("unchanged table differs: %+v", r)
			}
		}
	}
	// The restored copy is unaffected.
	if got2, err := tg.Digests(ctx); err != nil || !engine.AllMatch(engine.Compare(rep.Tables, got2)) {
		t.Fatalf("restored copy after the source changed: %v", err)
	}
}

// TestConsistentWhileWriting dumps while transactions insert pairs of rows
// into two tables: the restored database holds whole pairs only.
func TestConsistentWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	src := newName(t, db, "busy")
	makeShop(t, db, src, 30000)

	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := db.Begin()
			if err != nil {
				t.Error(err)
				return
			}
			_, err1 := tx.Exec("INSERT INTO "+quoteIdent(src)+".pair_a VALUES (?, 'pair')", i)
			time.Sleep(200 * time.Microsecond)
			_, err2 := tx.Exec("INSERT INTO "+quoteIdent(src)+".pair_b VALUES (?, 'pair')", i)
			if err1 != nil || err2 != nil {
				tx.Rollback()
				t.Error(err1, err2)
				return
			}
			if err := tx.Commit(); err != nil {
				t.Error(err)
				return
			}
			committed.Add(1)
		}
	}()
	for committed.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	s, err := Open(ctx, rootDSN(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := committed.Load()
	dump := readAll(t, ctx, s)
	after := committed.Load()
	close(stop)
	wg.Wait()
	if after == before {
		t.Fatalf("no pair was written during the dump: the test proves nothing")
	}

	dst := newName(t, db, "busycopy")
	tg, err := NewTarget(rootDSN(dst), TargetOptions{Clean: false, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Load(ctx, bytes.NewReader(dump), s.Report()); err != nil {
		t.Fatal(err)
	}
	got, err := tg.Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, "restored against the backup", s.Report().Tables, got)
	var a, b, unpaired int64
	q := quoteIdent(dst)
	db.QueryRow("SELECT COUNT(*) FROM " + q + ".pair_a").Scan(&a)
	db.QueryRow("SELECT COUNT(*) FROM " + q + ".pair_b").Scan(&b)
	db.QueryRow("SELECT COUNT(*) FROM " + q + ".pair_a x LEFT JOIN " + q + ".pair_b y USING (id) WHERE y.id IS NULL").Scan(&unpaired)
	t.Logf("pairs: %d committed before the dump, %d after; the snapshot holds %d", before, after, a)
	if a != b || unpaired != 0 || a < before || a > after {
		t.Fatalf("restored %d pair_a and %d pair_b rows (%d unpaired); %d pairs were committed before the dump, %d after", a, b, unpaired, before, after)
	}
}

func TestSeveralDatabases(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	one, two := newName(t, db, "one"), newName(t, db, "two")
	makeShop(t, db, one, 300)
	makeShop(t, db, two, 200)
	run(t, db, "DELETE FROM "+quoteIdent(two)+".payments WHERE id > 10")

	all, err := Open(ctx, rootDSN(""), Options{AllDatabases: true})
	if err != nil {
		t.Fatal(err)
	}
	dbs := all.Databases()
	if !slices.Contains(dbs, one) || !slices.Contains(dbs, two) || slices.ContainsFunc(dbs, func(d string) bool { return slices.Contains(systemDatabases, d) }) {
		t.Fatalf("all databases: %v", dbs)
	}

	s, err := Open(ctx, rootDSN(""), Options{Databases: []string{one, two}})
	if err != nil {
		t.Fatal(err)
	}
	dump := readAll(t, ctx, s)
	rep := s.Report()
	if len(rep.Parts) != 2 || rep.Parts[1].Name != two+".sql" || rep.Parts[1].Offset != rep.Parts[0].Size || rep.Parts[0].Size+rep.Parts[1].Size != int64(len(dump)) {
		t.Fatalf("parts: %+v", rep.Parts)
	}
	if rowsOf(rep.Tables, one+".payments") != 120 || rowsOf(rep.Tables, two+".payments") != 10 {
		t.Fatalf("tables: %+v", rep.Tables)
	}

	// Several databases load under their own names, not into one.
	if _, err := NewTarget(rootDSN(one), TargetOptions{Clean: false, Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	tg, _ := NewTarget(rootDSN(one), TargetOptions{Clean: false, Jobs: 1})
	if err := tg.Load(ctx, bytes.NewReader(dump), rep); err == nil || !strings.Contains(err.Error(), "own names") {
		t.Fatalf("several databases into one: %v", err)
	}
	// Their names are taken: refused before anything is loaded.
	tg, _ = NewTarget(rootDSN(""), TargetOptions{Clean: false, Jobs: 1})
	err = tg.Load(ctx, bytes.NewReader(dump), rep)
	if err == nil || !strings.Contains(err.Error(), "--clean") || !strings.Contains(err.Error(), one) {
		t.Fatalf("load over existing databases: %v", err)
	}
	// With clean they are replaced: break one first to see it mended.
	run(t, db, "DROP TABLE "+quoteIdent(one)+".orders", "CREATE TABLE "+quoteIdent(two)+".intruder (x INT)")
	tg, _ = NewTarget(rootDSN(""), TargetOptions{Clean: true, Jobs: 1})
	if err := tg.Load(ctx, bytes.NewReader(dump), rep); err != nil {
		t.Fatal(err)
	}
	got, err := tg.Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, "clean restore of two databases", rep.Tables, got)
	var intruders int
	db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'intruder'", two).Scan(&intruders)
	if intruders != 1 {
		t.Fatal("the database to replace was changed before Commit")
	}
	notes, err := tg.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commit: %q", notes)
	now, err := Digests(ctx, rootDSN(one))
	if err != nil {
		t.Fatal(err)
	}
	two2, err := Digests(ctx, rootDSN(two))
	if err != nil {
		t.Fatal(err)
	}
	mustMatch(t, "the swapped databases", rep.Tables, append(now, two2...))
}

func TestNonEmptyTargetRefused(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	src, dst := newName(t, db, "small"), newName(t, db, "occupied")
	makeShop(t, db, src, 100)
	run(t, db, "CREATE DATABASE "+quoteIdent(dst), "CREATE TABLE "+quoteIdent(dst)+".keep (x INT)", "INSERT INTO "+quoteIdent(dst)+".keep VALUES (42)")
	s, err := Open(ctx, rootDSN(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dump := readAll(t, ctx, s)
	tg, _ := NewTarget(rootDSN(dst), TargetOptions{Clean: false, Jobs: 1})
	r := bytes.NewReader(dump)
	err = tg.Load(ctx, r, s.Report())
	if err == nil || !strings.Contains(err.Error(), "--clean") || !strings.Contains(err.Error(), "nothing was loaded") {
		t.Fatalf("load into a non-empty database: %v", err)
	}
	var tables int
	db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", dst).Scan(&tables)
	if tables != 1 || r.Len() != len(dump) {
		t.Fatalf("the refused load touched the target (%d tables, %d bytes read)", tables, len(dump)-r.Len())
	}
	tg, _ = NewTarget(rootDSN(dst), TargetOptions{Clean: true, DropOld: true, Jobs: 1})
	if err := tg.Load(ctx, bytes.NewReader(dump), s.Report()); err != nil {
		t.Fatal(err)
	}
	got, _ := tg.Digests(ctx)
	mustMatch(t, "clean restore", s.Report().Tables, got)
	if _, err := tg.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	live, err := Digests(ctx, rootDSN(dst))
	if err != nil {
		t.Fatal(err)
	}
	var left int
	db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", strings.ReplaceAll(dst, "_", `\_`)+`\_%`).Scan(&left)
	if rowsOf(live, dst+".keep") != -1 || left != 0 {
		t.Fatalf("after --clean --drop-old: %+v, %d databases beside it", live, left)
	}
	mustMatch(t, "clean restore, swapped", s.Report().Tables, relabel(live, dst, src))
}

// relabel renames the tables of database from in ds to database to.
func relabel(ds []engine.TableDigest, from, to string) []engine.TableDigest {
	out := slices.Clone(ds)
	for i := range out {
		if rest, ok := strings.CutPrefix(out[i].Table, from+"."); ok {
			out[i].Table = to + "." + rest
		}
	}
	return out
}

func TestFailedLoadSaysPartial(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	dst := newName(t, db, "broken")
	dump := "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES THIS IS NOT SQL;\nINSERT INTO t VALUES (2);\n"
	tg, _ := NewTarget(rootDSN(dst), TargetOptions{Clean: false, Jobs: 1})
	err := tg.Load(ctx, strings.NewReader(dump), engine.Report{Parts: []engine.Part{{Name: "x.sql", Size: int64(len(dump))}}})
	if err == nil || !strings.Contains(err.Error(), "created for this restore, was dropped") || !strings.Contains(err.Error(), dst) || !strings.Contains(err.Error(), "Error 1064") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("load of a broken dump: %v", err)
	}
}

// dumpUser creates an account, prefix_PID, that may dump database name,
// with the password given as an SQL string literal.
func dumpUser(t *testing.T, db *sql.DB, name, prefix, passwordLiteral string) string {
	user := fmt.Sprintf("%s_%d", prefix, os.Getpid())
	run(t, db, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY %s", user, passwordLiteral),
		fmt.Sprintf("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON %s.* TO '%s'@'%%'", quoteIdent(name), user))
	t.Cleanup(func() { db.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	return user
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	name := newName(t, db, "guarded")
	makeShop(t, db, name, 50)
	user := dumpUser(t, db, name, "coffer_t_user", `'right "pass" \\ word'`)
	userDSN := "mysql://" + user + "@" + server + "/" + name
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("right \"pass\" \\ word\n"), 0o600)

	for _, tc := range []struct {
		name, dsn, pw, pwFile, path string
		want                        []string
	}{
		{name: "unreachable", dsn: "mysql://root@127.0.0.1:1/" + name, want: []string{"cannot reach", "127.0.0.1:1"}},
		{name: "password in the address", dsn: "mysql://root:secret@" + server + "/x", want: []string{EnvPassword, "never in a flag"}},
		{name: "no such user", dsn: "mysql://coffer_nobody@" + server + "/" + name, want: []string{"access denied", "coffer_nobody"}},
		{name: "wrong password", dsn: userDSN, pw: "wrong", want: []string{"access denied", user, EnvPasswordFile}},
		{name: "two passwords", dsn: userDSN, pw: "x", pwFile: pwFile, want: []string{"only one"}},
		{name: "missing database", dsn: rootDSN(name + "_nope"), want: []string{name + "_nope", "does not exist"}},
		{name: "missing binary", dsn: rootDSN(name), path: t.TempDir(), want: []string{"mariadb-dump", "PATH", "install"}},
		{name: "not mysql", dsn: "postgres://root@" + server + "/x", want: []string{"mysql://USER@HOST"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvPassword, tc.pw)
			t.Setenv(EnvPasswordFile, tc.pwFile)
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			_, err := Open(ctx, tc.dsn, Options{})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") || (tc.pw != "" && strings.Contains(err.Error(), tc.pw) && tc.pw != "x") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}

	// The right password from a file reaches the dump without a command
	// line: the dump of the limited user equals root's.
	t.Run("password file", func(t *testing.T) {
		want, err := Digests(ctx, rootDSN(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvPassword, "")
		t.Setenv(EnvPasswordFile, pwFile)
		s, err := Open(ctx, userDSN, Options{})
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(s.c.dumpArgs(s.t, name), " ")
		if !strings.Contains(args, "--defaults-extra-file=/dev/fd/3") || strings.Contains(args, "pass") || !strings.HasSuffix(args, " -- "+name) {
			t.Fatalf("command line %q", args)
		}
		// The option file is a pipe: nothing on disk holds the password.
		pipe, err := s.c.optionPipe()
		if err != nil {
			t.Fatal(err)
		}
		st, _ := pipe.Stat()
		b, _ := io.ReadAll(pipe)
		pipe.Close()
		if st.Mode()&os.ModeNamedPipe == 0 || !strings.Contains(string(b), `password="right \"pass\" \\ word"`) {
			t.Fatalf("option pipe %v: %q", st.Mode(), b)
		}
		readAll(t, ctx, s)
		mustMatch(t, "dump as the limited user", want, s.Report().Tables)
	})
}

// TestOptionFile reads user, password, host and port from a ~/.my.cnf
// style file named by ?defaults-file=, as the clients do; what the
// address gives wins, and the password still reaches the dump only
// through the pipe.
func TestOptionFile(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	name := newName(t, db, "optfile")
	makeShop(t, db, name, 50)
	user := dumpUser(t, db, name, "coffer_t_cnf", `'cnf "pass" word'`)
	want, err := Digests(ctx, rootDSN(name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	host, port, _ := strings.Cut(server, ":")
	cnf := filepath.Join(dir, "my.cnf")
	os.WriteFile(cnf, []byte("[client]\nuser="+user+"\npassword=\"cnf \\\"pass\\\" word\"\nhost="+host+"\nport="+port+"\n[mysql]\nuser=ignored\n"), 0o600)
	t.Setenv(EnvPassword, "")
	t.Setenv(EnvPasswordFile, "")

	t.Run("everything from the file", func(t *testing.T) {
		s, err := Open(ctx, "mysql:///"+name+"?defaults-file="+cnf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.c.user != user || strconv.Itoa(s.c.port) != port {
			t.Fatalf("conn %v", s.c)
		}
		if args := strings.Join(s.c.dumpArgs(s.t, name), " "); strings.Contains(args, "pass") {
			t.Fatalf("command line %q shows the password", args)
		}
		readAll(t, ctx, s)
		mustMatch(t, "dump with the option file", want, s.Report().Tables)
	})
	t.Run("the address wins", func(t *testing.T) {
		_, err := Open(ctx, "mysql://coffer_nobody@127.0.0.1:1/"+name+"?defaults-file="+cnf, Options{})
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("address's host and port not used: %v", err)
		}
	})
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{"missing file", filepath.Join(dir, "nope.cnf"), "", []string{"nope.cnf", "no such file"}},
		{"no user anywhere", filepath.Join(dir, "nouser.cnf"), "[client]\nhost=127.0.0.1\n", []string{"give the user", "[client]"}},
		{"bad port", filepath.Join(dir, "port.cnf"), "[client]\nuser=x\nport=99999\n", []string{"port.cnf", "bad port"}},
		{"relative", "my.cnf", "", []string{"absolute path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != "" {
				os.WriteFile(tc.file, []byte(tc.content), 0o600)
			}
			_, err := Open(ctx, "mysql:///"+name+"?defaults-file="+tc.file, Options{})
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("error %v does not mention %q", err, w)
				}
			}
		})
	}
}

// TestDumpKilled kills the dump halfway: the stream fails, naming the
// database, and the report covers no part.
func TestDumpKilled(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	name := newName(t, db, "killed")
	makeShop(t, db, name, 20000)
	s, err := Open(ctx, rootDSN(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := engine.NewConcat(ctx, s.Parts()...)
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	pid := childNamed(t, filepath.Base(s.t.dump))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, c)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("read after the dump was killed: %v", err)
	}
	if len(s.Report().Parts) != 0 {
		t.Fatalf("a killed dump is reported: %+v", s.Report().Parts)
	}
}

// childNamed finds this process's child running program.
func childNamed(t *testing.T, program string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 || s[open+1:end] != program[:min(len(program), 15)] {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == os.Getpid() {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			return pid
		}
	}
	t.Fatalf("no child process %s found", program)
	return 0
}
