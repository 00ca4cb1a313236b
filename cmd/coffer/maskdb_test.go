package main_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/coffer-backup/coffer/mask"
)

// Masked restores of MariaDB dumps and SQLite snapshots (issue 14 for
// those engines): the shop of shop_test.go, in each.

const myShopSchema = `
CREATE TABLE customers (
  id BIGINT PRIMARY KEY, first_name VARCHAR(100) NOT NULL, last_name VARCHAR(100) NOT NULL,
  email VARCHAR(200) NOT NULL UNIQUE, phone VARCHAR(40), street_address VARCHAR(200), city VARCHAR(100), country VARCHAR(100),
  card_number VARCHAR(30), date_of_birth DATE, notes TEXT, loyalty_tier VARCHAR(10) NOT NULL,
  created_at DATETIME NOT NULL) ENGINE=InnoDB;
CREATE TABLE orders (
  id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, placed_at DATETIME NOT NULL, total_cents INT NOT NULL,
  status VARCHAR(20) NOT NULL, shipping_address VARCHAR(200), KEY orders_customer (customer_id),
  CONSTRAINT orders_fk FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB;
CREATE TABLE payments (
  id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, method VARCHAR(10) NOT NULL, card_number VARCHAR(30), iban VARCHAR(40),
  amount_cents INT NOT NULL, paid_at DATETIME NOT NULL,
  CONSTRAINT payments_fk FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB;`

// myShopRules are shopRules for MariaDB and SQLite, whose tables have no schema.
var myShopRules = strings.ReplaceAll(shopRules, "public.", "")

// fillShop inserts the shop's rows with db's placeholders.
func fillShop(t *testing.T, db *sql.DB, n int64, seed uint64) {
	t.Helper()
	for _, tb := range shopRows(t, n, seed) {
		for start := 0; start < len(tb.rows); start += 200 {
			rows := tb.rows[start:min(start+200, len(tb.rows))]
			ph := "(" + strings.TrimSuffix(strings.Repeat("?,", len(tb.cols)), ",") + ")"
			var args []any
			for _, r := range rows {
				for _, v := range r {
					if tm, ok := v.(time.Time); ok {
						v = tm.UTC().Format("2006-01-02 15:04:05")
					}
					args = append(args, v)
				}
			}
			q := "INSERT INTO " + tb.name + " (" + strings.Join(tb.cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(ph+",", len(rows)), ",")
			if _, err := db.Exec(q, args...); err != nil {
				t.Fatalf("fill %s: %v", tb.name, err)
			}
		}
	}
}

// sqlStrings runs a query of one text column.
func sqlStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v.Valid {
			out = append(out, v.String)
		}
	}
	return out
}

// shopOriginals are the values of a shop that must not reach a masked copy.
func shopOriginals(t *testing.T, db *sql.DB, concat string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for what, q := range map[string]string{
		"email": "SELECT email FROM customers", "first name": "SELECT first_name FROM customers", "last name": "SELECT last_name FROM customers",
		"name": "SELECT " + concat + " FROM customers", "card": "SELECT card_number FROM customers",
		"payment card": "SELECT card_number FROM payments", "iban": "SELECT iban FROM payments",
	} {
		for _, v := range sqlStrings(t, db, q) {
			out[v] = what
		}
	}
	return out
}

// sqlLeaks searches every value of the given text columns for the
// originals, whole and word by word.
func sqlLeaks(t *testing.T, db *sql.DB, cols [][2]string, quote func(string) string, orig map[string]string) []string {
	t.Helper()
	if len(cols) == 0 {
		t.Fatal("no text columns to search")
	}
	var found []string
	for _, c := range cols {
		for _, v := range sqlStrings(t, db, "SELECT "+quote(c[1])+" FROM "+quote(c[0])) {
			words := append(strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || r == ';' }), v)
			for _, w := range words {
				w = strings.TrimRight(w, ".")
				if what, ok := orig[w]; ok && len(found) < 20 {
					found = append(found, c[0]+"."+c[1]+": "+what+" "+w)
				}
			}
		}
	}
	return found
}

func myTextColumns(t *testing.T, db *sql.DB, name string) [][2]string {
	t.Helper()
	rows, err := db.Query("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND DATA_TYPE IN ('varchar', 'char', 'text', 'mediumtext', 'longtext', 'tinytext')", name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var c [2]string
		rows.Scan(&c[0], &c[1])
		out = append(out, c)
	}
	return out
}

type shopPseudonyms struct{ email, phone, first, last, card string }

func pseudonyms(t *testing.T, db *sql.DB) map[int64]shopPseudonyms {
	t.Helper()
	rows, err := db.Query("SELECT id, email, phone, first_name, last_name, card_number FROM customers")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]shopPseudonyms{}
	for rows.Next() {
		var id int64
		var p shopPseudonyms
		rows.Scan(&id, &p.email, &p.phone, &p.first, &p.last, &p.card)
		out[id] = p
	}
	return out
}

// checkNextNight: the customers that did not change between two masked
// copies have the same pseudonyms; those that did (id % 100 == 0) not.
func checkNextNight(t *testing.T, a, b map[int64]shopPseudonyms, added int) {
	t.Helper()
	same, changed := 0, 0
	for id, p := range a {
		switch {
		case id%100 == 0:
			if b[id].email == p.email || b[id].phone == p.phone {
				t.Errorf("customer %d changed e-mail and phone but kept their pseudonyms", id)
			}
			changed++
		case b[id] == p:
			same++
		default:
			t.Errorf("customer %d is unchanged but its pseudonyms changed: %+v then %+v", id, p, b[id])
		}
	}
	if same+changed != len(a) || len(b) != len(a)+added {
		t.Fatalf("%d same, %d changed of %d; %d in the second copy", same, changed, len(a), len(b))
	}
}

// checkPhones: a masked phone is never the customer's own, and another
// customer's only by rare chance.
func checkPhones(t *testing.T, src, dst *sql.DB) {
	t.Helper()
	phones := map[string]int64{}
	rows, _ := src.Query("SELECT id, phone FROM customers")
	for rows.Next() {
		var id int64
		var p string
		rows.Scan(&id, &p)
		phones[p] = id
	}
	rows.Close()
	var own, others int
	for id, p := range pseudonyms(t, dst) {
		switch oid, ok := phones[p.phone]; {
		case ok && oid == id:
			own++
		case ok:
			others++
		}
	}
	if own > 0 || others > 2 {
		t.Fatalf("%d masked phones are the customer's own, %d another customer's", own, others)
	}
}

func mustVerifyMasked(t *testing.T, out string, tables ...string) {
	t.Helper()
	var res restoreDB
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified {
		t.Fatalf("masked restore: %v\n%s", err, out)
	}
	want := map[string]bool{}
	for _, tb := range tables {
		want[tb] = true
	}
	for _, tb := range res.Tables {
		if !tb.Match || !want[tb.Table] {
			t.Errorf("verification of %s: match %v (want one of %v)", tb.Table, tb.Match, want)
		}
		delete(want, tb.Table)
	}
	if len(want) > 0 {
		t.Errorf("verification did not cover %v", want)
	}
}

// holdsNone fails if text (a dump, a file) holds any of 500 of the
// originals. Without names: in a database file fields are adjacent, and a
// short name could be spelt across two of them ("Varga" "silas…"); the
// columns are searched for them.
func holdsNone(t *testing.T, what string, text []byte, orig map[string]string, skipNames bool) {
	t.Helper()
	n := 0
	for v, kind := range orig {
		if skipNames && strings.HasSuffix(kind, "name") {
			continue
		}
		if n++; n > 500 {
			break
		}
		if i := strings.Index(string(text), v); i >= 0 {
			t.Fatalf("%s holds %s %q: %q", what, kind, v, text[max(0, i-80):min(len(text), i+40)])
		}
	}
}

func writeRules(t *testing.T, rules string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func myShop(t *testing.T, n int64, seed uint64) (string, *sql.DB, *sql.DB) {
	t.Helper()
	name := fmt.Sprintf("h_maskdb_%d", time.Now().UnixNano()%1e9)
	admin := mariadb(t, "")
	var src *sql.DB
	t.Cleanup(func() { // after the drops: cleanups run last first
		if src != nil {
			src.Close()
		}
		admin.Close()
	})
	hmyDrop(t, admin, name, name+"_m1", name+"_m2", name+"_m")
	hmyExec(t, admin, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
	src = mariadb(t, name)
	if _, err := src.Exec(myShopSchema); err != nil {
		t.Fatal(err)
	}
	fillShop(t, src, n, seed)
	return name, admin, src
}

// TestMaskedRestoreMariaDB is done-when 2 of issue 14 for MariaDB.
func TestMaskedRestoreMariaDB(t *testing.T) {
	name, _, src := myShop(t, 3000, 14)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := writeRules(t, myShopRules)
	url := hmyServer + name
	first := c.backup(nil, "--source", "shop", "--mysql", url)
	out := c.ok(nil, "restore", first.Snapshot, "--to", url+"_m1", "--mask", rules, "--json")
	var tables []string
	for _, tb := range []string{"customers", "orders", "payments"} {
		tables = append(tables, name+"."+tb, name+"."+tb+" (kept columns)")
	}
	mustVerifyMasked(t, out, tables...)
	dst := mariadb(t, name+"_m1")
	defer dst.Close()
	for _, tb := range []string{"customers", "orders", "payments"} {
		q := "SELECT COUNT(*) FROM " + tb
		if a, b := hmyCount(t, src, q), hmyCount(t, dst, q); a != b || a == 0 {
			t.Errorf("%s: %d rows in the backup, %d in the masked copy", tb, a, b)
		}
	}
	orig := shopOriginals(t, src, "CONCAT(first_name, ' ', last_name)")
	if f := sqlLeaks(t, src, myTextColumns(t, src, name), hmyQuote, orig); len(f) == 0 {
		t.Fatal("the leak search finds nothing in the original database: it cannot find anything")
	}
	if f := sqlLeaks(t, dst, myTextColumns(t, dst, name+"_m1"), hmyQuote, orig); len(f) > 0 {
		t.Fatalf("original values in the masked copy:\n%s", strings.Join(f, "\n"))
	}
	checkPhones(t, src, dst)
	dump, err := exec.Command("mariadb-dump", "-h", "127.0.0.1", "-u", "root", name+"_m1").Output()
	if err != nil {
		t.Fatal(err)
	}
	holdsNone(t, "mariadb-dump of the masked copy", dump, orig, false)
	// Keys and foreign keys are there and hold.
	cons := func(db string) int {
		return hmyCount(t, src, "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ? AND CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')", db)
	}
	if a, b := cons(name), cons(name+"_m1"); a != b || a < 6 {
		t.Fatalf("constraints: %d in the source, %d in the masked copy", a, b)
	}
	for q, want := range map[string]int{
		"SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL": 0,
		"SELECT COUNT(*) FROM payments p LEFT JOIN orders o ON o.id = p.order_id WHERE o.id IS NULL":     0,
		"SELECT COUNT(*) - COUNT(DISTINCT email) FROM customers":                                         0,
		`SELECT COUNT(*) FROM payments p JOIN orders o ON o.id = p.order_id JOIN customers c ON c.id = o.customer_id
			WHERE p.method = 'card' AND p.card_number <> c.card_number`: 0,
	} {
		if got := hmyCount(t, dst, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}

	// The next night: some customers change, some are added.
	hmyExec(t, src, `UPDATE customers SET email = CONCAT('moved.', id, '@mail.example.org'), phone = CONCAT('+1-555-0000-', LPAD(id, 4, '0')) WHERE id % 100 = 0`,
		`INSERT INTO customers SELECT id + 100000, first_name, last_name, CONCAT('new.', email), phone, street_address, city, country, card_number, date_of_birth, NULL, loyalty_tier, created_at FROM customers WHERE id <= 100`)
	second := c.backup(nil, "--source", "shop", "--mysql", url)
	c.ok(nil, "restore", second.Snapshot, "--to", url+"_m2", "--mask", rules)
	dst2 := mariadb(t, name+"_m2")
	defer dst2.Close()
	checkNextNight(t, pseudonyms(t, dst), pseudonyms(t, dst2), 100)
}

// TestMaskDefaultFailMariaDB: rules with default: fail refuse a dump with
// a column they do not name, before anything is written to the server.
func TestMaskDefaultFailMariaDB(t *testing.T) {
	name, admin, src := myShop(t, 50, 1)
	hmyExec(t, src, "ALTER TABLE customers ADD COLUMN passport_no VARCHAR(20) DEFAULT 'X1234567'")
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := writeRules(t, myShopRules)
	snap := c.backup(nil, "--source", "shop", "--mysql", hmyServer+name)
	msg := c.fail(nil, "restore", snap.Snapshot, "--to", hmyServer+name+"_m", "--mask", rules)
	mustContain(t, "restore --mask with an unnamed column", msg, "customers.passport_no", "default: fail", "nothing was written", rules)
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name+"_m"); n != 0 {
		t.Fatal("the refused masked restore created the target database")
	}
}

const liteShopSchema = `
CREATE TABLE customers (
  id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, phone TEXT,
  street_address TEXT, city TEXT, country TEXT, card_number TEXT, date_of_birth TEXT, notes TEXT, loyalty_tier TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), placed_at TEXT NOT NULL,
  total_cents INTEGER NOT NULL, status TEXT NOT NULL, shipping_address TEXT);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), method TEXT NOT NULL, card_number TEXT,
  iban TEXT, amount_cents INTEGER NOT NULL, paid_at TEXT NOT NULL);
CREATE INDEX orders_customer ON orders(customer_id);`

func liteShop(t *testing.T, n int64, seed uint64) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(liteShopSchema); err != nil {
		t.Fatal(err)
	}
	fillShop(t, db, n, seed)
	return path, db
}

func liteOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func liteTextColumns(t *testing.T, db *sql.DB) [][2]string {
	t.Helper()
	var out [][2]string
	for _, tb := range sqlStrings(t, db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") {
		for _, c := range sqlStrings(t, db, "SELECT name FROM pragma_table_info('"+tb+"') WHERE type = 'TEXT'") {
			out = append(out, [2]string{tb, c})
		}
	}
	return out
}

func liteQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TestMaskedRestoreSQLite is done-when 2 of issue 14 for SQLite, and the
// same pseudonyms across engines: a MariaDB and a SQLite copy of the same
// customers, masked under one repository's key, agree.
func TestMaskedRestoreSQLite(t *testing.T) {
	path, src := liteShop(t, 3000, 14)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := writeRules(t, myShopRules)
	first := c.backup(nil, "--source", "shop", "--sqlite", path)
	dir := t.TempDir()
	out := c.ok(nil, "restore", first.Snapshot, "--to", "sqlite:"+filepath.Join(dir, "m1.db"), "--mask", rules, "--json")
	mustVerifyMasked(t, out, "customers (kept columns)", "orders (kept columns)", "payments (kept columns)")
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the masked restore left %d files in the target's directory, want the database alone", len(entries))
	}
	dst := liteOpen(t, filepath.Join(dir, "m1.db"))
	for _, tb := range []string{"customers", "orders", "payments"} {
		q := "SELECT COUNT(*) FROM " + tb
		if a, b := hmyCount(t, src, q), hmyCount(t, dst, q); a != b || a == 0 {
			t.Errorf("%s: %d rows in the backup, %d in the masked copy", tb, a, b)
		}
	}
	orig := shopOriginals(t, src, "first_name || ' ' || last_name")
	if f := sqlLeaks(t, src, liteTextColumns(t, src), liteQuote, orig); len(f) == 0 {
		t.Fatal("the leak search finds nothing in the original database: it cannot find anything")
	}
	if f := sqlLeaks(t, dst, liteTextColumns(t, dst), liteQuote, orig); len(f) > 0 {
		t.Fatalf("original values in the masked copy:\n%s", strings.Join(f, "\n"))
	}
	checkPhones(t, src, dst)
	// The file holds no original, not even in a free page.
	raw, err := os.ReadFile(filepath.Join(dir, "m1.db"))
	if err != nil {
		t.Fatal(err)
	}
	holdsNone(t, "the masked database file", raw, orig, true)
	for q, want := range map[string]int{
		"SELECT COUNT(*) FROM pragma_foreign_key_check":                                                  0,
		"SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL": 0,
		"SELECT COUNT(*) - COUNT(DISTINCT email) FROM customers":                                         0,
		"SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL":                    1,
		`SELECT COUNT(*) FROM payments p JOIN orders o ON o.id = p.order_id JOIN customers c ON c.id = o.customer_id
			WHERE p.method = 'card' AND p.card_number <> c.card_number`: 0,
	} {
		if got := hmyCount(t, dst, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
	if integrity := sqlStrings(t, dst, "PRAGMA integrity_check"); len(integrity) != 1 || integrity[0] != "ok" {
		t.Fatalf("integrity_check: %v", integrity)
	}

	// The next night.
	hmyExec(t, src, `UPDATE customers SET email = 'moved.' || id || '@mail.example.org', phone = '+1-555-0000-' || substr('0000' || id, -4) WHERE id % 100 = 0`,
		`INSERT INTO customers SELECT id + 100000, first_name, last_name, 'new.' || email, phone, street_address, city, country, card_number, date_of_birth, NULL, loyalty_tier, created_at FROM customers WHERE id <= 100`)
	second := c.backup(nil, "--source", "shop", "--sqlite", path)
	c.ok(nil, "restore", second.Snapshot, "--to", "sqlite:"+filepath.Join(dir, "m2.db"), "--mask", rules)
	checkNextNight(t, pseudonyms(t, dst), pseudonyms(t, liteOpen(t, filepath.Join(dir, "m2.db"))), 100)

	// The same customers in MariaDB, in the same repository: the same pseudonyms.
	name, _, _ := myShop(t, 300, 14)
	my := c.backup(nil, "--source", "myshop", "--mysql", hmyServer+name)
	c.ok(nil, "restore", my.Snapshot, "--to", hmyServer+name+"_m1", "--mask", rules)
	myCopy := mariadb(t, name+"_m1")
	defer myCopy.Close()
	a, b := pseudonyms(t, dst), pseudonyms(t, myCopy)
	for id := int64(1); id <= 300; id++ {
		if a[id] != b[id] {
			t.Fatalf("customer %d: SQLite copy %+v, MariaDB copy %+v", id, a[id], b[id])
		}
	}
}

// TestMaskDefaultFailSQLite: an unnamed column is refused before the
// target file exists.
func TestMaskDefaultFailSQLite(t *testing.T) {
	path, src := liteShop(t, 50, 1)
	hmyExec(t, src, "ALTER TABLE customers ADD COLUMN passport_no TEXT DEFAULT 'X1234567'")
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := writeRules(t, myShopRules)
	snap := c.backup(nil, "--source", "shop", "--sqlite", path)
	target := filepath.Join(t.TempDir(), "m.db")
	msg := c.fail(nil, "restore", snap.Snapshot, "--to", "sqlite:"+target, "--mask", rules)
	mustContain(t, "restore --mask with an unnamed column", msg, "customers.passport_no", "default: fail", "nothing was written", rules)
	if _, err := os.Stat(target); err == nil {
		t.Fatal("the refused masked restore created the target file")
	}
}

// TestHostileMaskedRestoreMariaDB: a view, a trigger that copies e-mails,
// a procedure and an event are left out of a masked copy; a dump whose
// e-mails are hex literals and _binary strings is masked all the same; a
// kept column holding a masked column's values is refused before its rows
// reach the server, and the copy is removed.
func TestHostileMaskedRestoreMariaDB(t *testing.T) {
	name, admin, src := myShop(t, 200, 5)
	hmyExec(t, src, "CREATE TABLE leak (v VARCHAR(300))",
		"CREATE VIEW vip AS SELECT email, phone FROM customers",
		"CREATE TRIGGER steal BEFORE INSERT ON customers FOR EACH ROW INSERT INTO leak VALUES (NEW.email)",
		"CREATE PROCEDURE p() SELECT 'alice@mail.example.com'")
	rules := writeRules(t, strings.Replace(myShopRules, "tables:\n", "tables:\n  leak:\n    v: keep\n", 1))
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	snap := c.backup(nil, "--source", "shop", "--mysql", hmyServer+name)
	out := c.ok(nil, "restore", snap.Snapshot, "--to", hmyServer+name+"_m1", "--mask", rules)
	mustContain(t, "masked restore of a database with a view and a trigger", out, "leaves out", "view", "trigger", "procedure")
	dst := mariadb(t, name+"_m1")
	defer dst.Close()
	orig := shopOriginals(t, src, "CONCAT(first_name, ' ', last_name)")
	if f := sqlLeaks(t, dst, myTextColumns(t, dst, name+"_m1"), hmyQuote, orig); len(f) > 0 {
		t.Fatalf("original values in the masked copy:\n%s", strings.Join(f, "\n"))
	}
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", name+"_m1"); n != 0 {
		t.Fatalf("the masked copy has %d triggers", n)
	}

	// A kept column with a masked column's values.
	hmyExec(t, src, "INSERT INTO leak SELECT email FROM customers WHERE id < 5")
	snap = c.backup(nil, "--source", "shop", "--mysql", hmyServer+name)
	msg := c.fail(nil, "restore", snap.Snapshot, "--to", hmyServer+name+"_m2", "--mask", rules)
	mustContain(t, "a kept column holding e-mails", msg, "`leak`", "original value of a masked column", "nothing was written to the target")
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name+"_m2"); n != 0 {
		t.Fatal("the refused masked restore left its target database")
	}

	// E-mails spelled as hex literals and _binary strings, as a backup
	// host could write them.
	const carol, dave = "carol@mail.example.com", "dave@mail.example.com"
	dump := "CREATE TABLE `customers` (\n  `id` int(11) NOT NULL,\n  `email` varchar(200) DEFAULT NULL,\n  `city` varchar(100) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n" +
		"INSERT INTO `customers` VALUES (1,0x" + fmt.Sprintf("%x", carol) + ",'Oslo'),(2,_binary '" + dave + "','Rome'),(3,'erin\\@mail.example.com','Bonn');" + hmyEnd
	evil := hmyEvil(t, c, admin, "evil", dump)
	evilRules := writeRules(t, "version: 1\ndefault: fail\ntables:\n  customers:\n    id: keep\n    email: fake email\n    city: keep\n")
	target := hmyName("maskdst")
	hmyDrop(t, admin, target)
	c.ok(nil, "restore", evil, "--to", hmyServer+target, "--mask", evilRules)
	got := mariadb(t, target)
	defer got.Close()
	emails := sqlStrings(t, got, "SELECT email FROM customers")
	if len(emails) != 3 {
		t.Fatalf("the masked copy holds %d customers, want 3", len(emails))
	}
	for _, e := range emails {
		if e == carol || e == dave || e == "erin@mail.example.com" || !strings.Contains(e, "@") {
			t.Fatalf("the masked copy holds e-mail %q", e)
		}
	}

	// A versioned comment that MariaDB skips, hiding a raw INSERT behind a
	// SET that coffer reads as code: refused, even for a trusted snapshot.
	evil = hmyEvil(t, c, admin, "evil3", strings.Replace(dump, hmyEnd, "\n/*!99999 SET @a = 1 */ INSERT INTO `customers` VALUES (9, 'frank@mail.example.com', 'Oslo');"+hmyEnd, 1))
	target = hmyName("maskdst")
	hmyDrop(t, admin, target)
	for _, trust := range [][]string{nil, {"--trust-snapshot"}} {
		mustContain(t, "a skipped versioned comment", c.fail(nil, append([]string{"restore", evil, "--to", hmyServer + target, "--mask", evilRules}, trust...)...), "versioned comment this server skips")
	}

	// A session that stops reading backslash escapes would read coffer's
	// own literals otherwise: refused, even for a trusted snapshot.
	evil = hmyEvil(t, c, admin, "evil2", "SET sql_mode = CONCAT('NO_BACKSLASH', '_ESCAPES');\n"+dump)
	target = hmyName("maskdst")
	hmyDrop(t, admin, target)
	mustContain(t, "a dump that sets NO_BACKSLASH_ESCAPES", c.fail(nil, "restore", evil, "--to", hmyServer+target, "--mask", evilRules, "--trust-snapshot"), "NO_BACKSLASH_ESCAPES")
	if n := hmyCount(t, admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", target); n != 0 {
		t.Fatal("the refused masked restore left its target database")
	}
}

// TestMaskedDrillMariaDBSQLite: coffer drill --mask on a MariaDB scratch
// server, and of a SQLite snapshot.
func TestMaskedDrillMariaDBSQLite(t *testing.T) {
	name, _, _ := myShop(t, 300, 9)
	path, _ := liteShop(t, 300, 9)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	c.backup(nil, "--source", "shop", "--mysql", hmyServer+name)
	c.backup(nil, "--source", "lite", "--sqlite", path)
	rules := writeRules(t, myShopRules)
	for _, args := range [][]string{{"--source", "shop", "--scratch", hmyServer}, {"--source", "lite"}} {
		d, _ := c.drill(append(args, "--mask", rules)...)
		if !d.Passed || len(d.Runs) != 1 || !d.Runs[0].Passed {
			t.Fatalf("masked drill %v: %+v", args, d)
		}
	}
}

// TestHostileMaskedRestoreSQLite: a trigger that would copy e-mails as
// they are masked, a view and index statistics are left out; an original
// in a definition, a generated column and a kept column holding e-mails
// are refused before the target file exists.
func TestHostileMaskedRestoreSQLite(t *testing.T) {
	path, src := liteShop(t, 300, 5)
	hmyExec(t, src, "CREATE TABLE leak (v TEXT)",
		"CREATE TRIGGER steal AFTER UPDATE ON customers BEGIN INSERT INTO leak VALUES (OLD.email); END",
		"CREATE VIEW vip AS SELECT 'alice@mail.example.com' AS e, email FROM customers",
		"CREATE INDEX customers_phone ON customers(phone)", "ANALYZE")
	rules := writeRules(t, strings.Replace(myShopRules, "tables:\n", "tables:\n  leak:\n    v: keep\n", 1))
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	snap := c.backup(nil, "--source", "shop", "--sqlite", path)
	target := filepath.Join(t.TempDir(), "m.db")
	out := c.ok(nil, "restore", snap.Snapshot, "--to", "sqlite:"+target, "--mask", rules)
	mustContain(t, "masked restore of a database with a view and a trigger", out, "leaves out", "1 trigger", "1 view")
	raw, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	holdsNone(t, "the masked database file", raw, shopOriginals(t, src, "first_name || ' ' || last_name"), true)
	if n := hmyCount(t, liteOpen(t, target), "SELECT COUNT(*) FROM leak"); n != 0 {
		t.Fatalf("the trigger ran: %d rows in leak", n)
	}
	for i, attack := range []string{
		"CREATE TABLE leak2 (v TEXT DEFAULT 'alice@mail.example.com'); UPDATE customers SET email = 'alice@mail.example.com' WHERE id = 1",
		"ALTER TABLE leak ADD COLUMN w TEXT GENERATED ALWAYS AS ('x' || v) VIRTUAL",
		"INSERT INTO leak SELECT email FROM customers WHERE id < 5",
	} {
		hmyExec(t, src, "DROP TABLE IF EXISTS leak2", "DROP TABLE leak", "CREATE TABLE leak (v TEXT)", attack)
		rules := writeRules(t, strings.Replace(myShopRules, "tables:\n", "tables:\n  leak:\n    v: keep\n    w: keep\n  leak2:\n    v: keep\n", 1))
		snap := c.backup(nil, "--source", fmt.Sprint("shop", i), "--sqlite", path)
		msg := c.fail(nil, "restore", snap.Snapshot, "--to", "sqlite:"+target+fmt.Sprint(i), "--mask", rules)
		mustContain(t, attack, msg, "nothing was written to the target")
		if _, err := os.Stat(target + fmt.Sprint(i)); err == nil {
			t.Fatalf("%s: the refused masked restore created its target", attack)
		}
	}
}

// TestCanariesMariaDBSQLite is done-when 3 of issue 14 for MariaDB and
// SQLite: a MariaDB copy for "staging" and a SQLite copy for "contractor",
// each with its canaries and their orders; trace names the right copy for
// each canary's e-mail and phone, "not a canary" for a real e-mail, and
// recognises a pseudonym.
func TestCanariesMariaDBSQLite(t *testing.T) {
	name, _, _ := myShop(t, 1000, 3)
	path, _ := liteShop(t, 1000, 3)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := writeRules(t, myShopRules)
	my := c.backup(nil, "--source", "myshop", "--mysql", hmyServer+name)
	lite := c.backup(nil, "--source", "liteshop", "--sqlite", path)
	liteCopy := filepath.Join(t.TempDir(), "contractor.db")
	copies := []struct {
		target, label, snap string
		open                func() *sql.DB
	}{
		{hmyServer + name + "_m1", "staging", my.Snapshot, func() *sql.DB { return mariadb(t, name+"_m1") }},
		{"sqlite:" + liteCopy, "contractor", lite.Snapshot, func() *sql.DB { return liteOpen(t, liteCopy) }},
	}
	var pseudo string
	for i, cp := range copies {
		out := c.ok(nil, "restore", cp.snap, "--to", cp.target, "--mask", rules, "--canaries", "5", "--for", cp.label)
		mustContain(t, "restore --canaries", out, "5 canary customers were planted")
		db := cp.open()
		if n := hmyCount(t, db, "SELECT COUNT(*) FROM customers"); n != 1005 {
			t.Fatalf("%s holds %d customers, want 1005", cp.target, n)
		}
		if n := hmyCount(t, db, "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email LIKE '%@canary.example.net'"); n < 5 {
			t.Fatalf("the canaries of %s have %d orders, want 1 to 3 each", cp.target, n)
		}
		rows, err := db.Query("SELECT id, email, phone FROM customers WHERE email LIKE '%@canary.example.net'")
		if err != nil {
			t.Fatal(err)
		}
		var planted [][2]string
		for rows.Next() {
			var id int64
			var e, p string
			rows.Scan(&id, &e, &p)
			if !strings.HasPrefix(p, "+1-555-0199") || id <= 1000 {
				t.Errorf("canary %d %s has phone %q", id, e, p)
			}
			planted = append(planted, [2]string{e, p})
		}
		rows.Close()
		if len(planted) != 5 {
			t.Fatalf("%s holds %d canaries, want 5", cp.target, len(planted))
		}
		other := copies[1-i]
		for _, v := range planted {
			for _, q := range v {
				out := c.ok(nil, "trace", q)
				mustContain(t, "trace "+q, out, "is a canary", cp.target, `"`+cp.label+`"`, cp.snap[:8])
				if strings.Contains(out, other.target) {
					t.Fatalf("trace %s names the other copy too:\n%s", q, out)
				}
			}
		}
		if i == 0 {
			db.QueryRow("SELECT email FROM customers WHERE id = 42").Scan(&pseudo)
		}
	}
	l := loadShopLists(t)
	mustContain(t, "trace of a real e-mail", c.ok(nil, "trace", shopEmail(l, 42)), "is not a canary, and not a pseudonym")
	mustContain(t, "trace of a pseudonym", c.ok(nil, "trace", pseudo), "is not a canary: it is a masked value", copies[0].target, copies[1].target)
}

// TestClassifyMariaDBSQLite: classify proposes the shop's rules on its
// MariaDB and SQLite copies, and the file it writes masks them.
func TestClassifyMariaDBSQLite(t *testing.T) {
	name, _, _ := myShop(t, 2000, 7)
	path, _ := liteShop(t, 2000, 7)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	want, err := mask.Parse("myShopRules", []byte(myShopRules))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ engine, flag, src, to string }{
		{"mariadb", "--mysql", hmyServer + name, hmyServer + name + "_m"},
		{"sqlite", "--sqlite", path, "sqlite:" + filepath.Join(t.TempDir(), "m.db")},
	} {
		snap := c.backup(nil, "--source", s.engine, s.flag, s.src)
		out := filepath.Join(t.TempDir(), "proposed.yaml")
		c.ok(nil, "classify", snap.Snapshot, "--output", out)
		got, err := mask.Load(out)
		if err != nil {
			t.Fatalf("%s: the proposed rules file does not parse: %v", s.engine, err)
		}
		var misses []string
		for table, cols := range want.Tables {
			for col, w := range cols {
				if g, ok := got.Lookup(table, col); !ok || g.String() != w.String() {
					misses = append(misses, fmt.Sprintf("%s.%s: proposed %q, want %q", table, col, g, w))
				}
			}
		}
		if len(misses) > 0 {
			t.Errorf("classify of the %s shop missed %d columns:\n%s", s.engine, len(misses), strings.Join(misses, "\n"))
		}
		c.ok(nil, "restore", snap.Snapshot, "--to", s.to, "--mask", out)
	}
}
