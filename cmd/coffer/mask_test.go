package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/coffer-backup/coffer/mask"
)

const pgURL = "postgres://postgres@127.0.0.1:5432/"

// maskRepo makes a repository, writes the shop's rules file and backs
// database src up.
func maskRepo(t *testing.T, src string) (*cli, string, backupJSON) {
	t.Helper()
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(shopRules), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, rules, c.backup(nil, "--source", "shop", "--postgres", pgURL+src)
}

// originalValues reads the values of db that must not reach a masked copy:
// every e-mail, phone, first and last name, full name and card number.
func originalValues(t *testing.T, db string) map[string]string {
	t.Helper()
	c := postgres(t, db)
	out := map[string]string{}
	for what, q := range map[string]string{
		"email":      "SELECT email FROM customers",
		"first name": "SELECT first_name FROM customers", "last name": "SELECT last_name FROM customers",
		"name": "SELECT first_name || ' ' || last_name FROM customers", "card": "SELECT card_number FROM customers",
		"payment card": "SELECT card_number FROM payments WHERE card_number IS NOT NULL", "iban": "SELECT iban FROM payments WHERE iban IS NOT NULL",
	} {
		rows, err := c.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out[v] = what
		}
		rows.Close()
	}
	return out
}

// leaks searches every text column of every table of db for the values:
// each value whole, and each word of it (so that an e-mail inside free
// text is found). It returns what it found, as "table.column: value".
func leaks(t *testing.T, db string, orig map[string]string) []string {
	t.Helper()
	ctx := context.Background()
	c := postgres(t, db)
	rows, err := c.Query(ctx, `SELECT table_schema, table_name, column_name FROM information_schema.columns
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND data_type IN ('text', 'character varying', 'character')`)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][3]string
	for rows.Next() {
		var s, tb, col string
		rows.Scan(&s, &tb, &col)
		cols = append(cols, [3]string{s, tb, col})
	}
	rows.Close()
	if len(cols) == 0 {
		t.Fatalf("no text columns in %s", db)
	}
	var found []string
	for _, sc := range cols {
		q := `SELECT "` + sc[2] + `" FROM "` + sc[0] + `"."` + sc[1] + `" WHERE "` + sc[2] + `" IS NOT NULL`
		vr, err := c.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for vr.Next() {
			var v string
			vr.Scan(&v)
			words := append(strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || r == ';' }), v)
			for _, w := range words {
				w = strings.TrimRight(w, ".")
				if what, ok := orig[w]; ok && len(found) < 20 {
					found = append(found, sc[1]+"."+sc[2]+": "+what+" "+w)
				}
			}
		}
		vr.Close()
	}
	return found
}

// TestMaskedRestorePostgres is done-when 2 of issue 14 for PostgreSQL: a
// masked restore leaves no original e-mail, phone, name or card number
// anywhere in the target, keeps every foreign key and unique constraint,
// equal row counts and kept columns, and the next night's snapshot gives
// the same pseudonyms for the customers that did not change.
func TestMaskedRestorePostgres(t *testing.T) {
	ctx := context.Background()
	src := createDB(t, "coffer_mask")
	genShop(t, src, 20000, 14)
	c, rules, first := maskRepo(t, src)

	out := c.ok(nil, "restore", first.Snapshot, "--to", pgURL+src+"_m1", "--mask", rules, "--json")
	var tables []string
	for _, tb := range []string{"customers", "orders", "payments"} {
		tables = append(tables, src+".public."+tb, src+".public."+tb+" (kept columns)")
	}
	mustVerifyMasked(t, out, tables...)
	for _, tb := range []string{"customers", "orders", "payments"} {
		if a, b := countRows(t, src, tb), countRows(t, src+"_m1", tb); a != b {
			t.Errorf("%s: %d rows in the backup, %d in the masked copy", tb, a, b)
		}
	}

	orig := originalValues(t, src)
	if f := leaks(t, src, orig); len(f) == 0 {
		t.Fatal("the leak search finds nothing in the original database: it cannot find anything")
	}
	if f := leaks(t, src+"_m1", orig); len(f) > 0 {
		t.Fatalf("original values in the masked copy:\n%s", strings.Join(f, "\n"))
	}
	// A fake phone has the shape of a real one: with n customers and 10
	// digits replaced, about n²/10¹⁰ pseudonyms are by chance another
	// customer's real number (0.04 here). Never the customer's own.
	var own, others int
	phones := map[string]int64{}
	pr, _ := postgres(t, src).Query(ctx, "SELECT id, phone FROM customers")
	for pr.Next() {
		var id int64
		var p string
		pr.Scan(&id, &p)
		phones[p] = id
	}
	pr.Close()
	mr, _ := postgres(t, src+"_m1").Query(ctx, "SELECT id, phone FROM customers")
	for mr.Next() {
		var id int64
		var p string
		mr.Scan(&id, &p)
		switch oid, ok := phones[p]; {
		case ok && oid == id:
			own++
		case ok:
			others++
		}
	}
	mr.Close()
	if own > 0 || others > 2 {
		t.Fatalf("%d masked phones are the customer's own, %d another customer's (expected about 0.04)", own, others)
	}
	dump, err := exec.Command("pg_dump", "--no-password", "-h", "127.0.0.1", "-U", "postgres", src+"_m1").Output()
	if err != nil {
		t.Fatal(err)
	}
	holdsNone(t, "pg_dump of the masked copy", dump, orig, false)

	// Constraints hold: every primary key, unique and foreign key of the
	// source is in the copy, validated (pg_restore created them after the
	// masked data, so a duplicate pseudonym would have failed the load).
	cons := func(db string) int {
		var n int
		postgres(t, db).QueryRow(ctx, "SELECT count(*) FROM pg_constraint WHERE contype IN ('p','u','f') AND convalidated AND connamespace = 'public'::regnamespace").Scan(&n)
		return n
	}
	if a, b := cons(src), cons(src+"_m1"); a != b || a < 6 {
		t.Fatalf("constraints: %d in the source, %d in the masked copy", a, b)
	}
	// The same card gives the same pseudonym in every table.
	var mismatched int
	postgres(t, src+"_m1").QueryRow(ctx, `SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id JOIN customers c ON c.id = o.customer_id
		WHERE p.method = 'card' AND p.card_number <> c.card_number`).Scan(&mismatched)
	if mismatched != 0 {
		t.Fatalf("%d payments' masked card differs from their customer's masked card", mismatched)
	}
	var bad int
	rows, _ := postgres(t, src+"_m1").Query(ctx, "SELECT card_number FROM customers")
	for rows.Next() {
		var card string
		rows.Scan(&card)
		if !mask.Luhn(card) || !strings.HasPrefix(card, "4000 00") {
			bad++
		}
	}
	rows.Close()
	if bad > 0 {
		t.Fatalf("%d masked cards fail Luhn or are outside the test range", bad)
	}

	// The next night: some customers change, some are added.
	s := postgres(t, src)
	if _, err := s.Exec(ctx, `UPDATE customers SET email = 'moved.' || id || '@mail.example.org', phone = '+1-555-0000-' || lpad(id::text, 4, '0') WHERE id % 100 = 0;
		INSERT INTO customers SELECT id + 100000, first_name, last_name, 'new.' || email, phone, street_address, city, country, card_number, date_of_birth, NULL, loyalty_tier, created_at FROM customers WHERE id <= 100`); err != nil {
		t.Fatal(err)
	}
	second := c.backup(nil, "--source", "shop", "--postgres", pgURL+src)
	c.ok(nil, "restore", second.Snapshot, "--to", pgURL+src+"_m2", "--mask", rules)
	checkNextNight(t, pgPseudonyms(t, src+"_m1"), pgPseudonyms(t, src+"_m2"), 100)
}

func pgPseudonyms(t *testing.T, db string) map[int64]shopPseudonyms {
	t.Helper()
	out := map[int64]shopPseudonyms{}
	rows, err := postgres(t, db).Query(context.Background(), "SELECT id, email, phone, first_name, last_name, card_number FROM customers")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p shopPseudonyms
		rows.Scan(&id, &p.email, &p.phone, &p.first, &p.last, &p.card)
		out[id] = p
	}
	return out
}

// TestMaskDefaultFail is done-when 4 of issue 14: rules with default: fail
// refuse a snapshot whose schema has a column they do not name, before
// anything is written to the target.
func TestMaskDefaultFail(t *testing.T) {
	ctx := context.Background()
	src := createDB(t, "coffer_maskfail")
	genShop(t, src, 50, 1)
	if _, err := postgres(t, src).Exec(ctx, "ALTER TABLE customers ADD COLUMN passport_no text DEFAULT 'X1234567'"); err != nil {
		t.Fatal(err)
	}
	c, rules, snap := maskRepo(t, src)
	msg := c.fail(nil, "restore", snap.Snapshot, "--to", pgURL+src+"_m", "--mask", rules)
	mustContain(t, "restore --mask with an unnamed column", msg, "public.customers.passport_no", "default: fail", "nothing was written", rules)
	var exists bool
	postgres(t, "postgres").QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", src+"_m").Scan(&exists)
	if exists {
		t.Fatal("the refused masked restore created the target database")
	}
	// (Roles are made only after the database, so none was made either; the
	// server is shared with other tests, so their count proves nothing here.)
	// A rules file error points at its line and column.
	os.WriteFile(rules, []byte(strings.Replace(shopRules, "email: fake email", "email: fake emial", 1)), 0o600)
	mustContain(t, "a bad rules file", c.fail(nil, "restore", snap.Snapshot, "--to", pgURL+src+"_m", "--mask", rules), rules+":12:12: column public.customers.email: fake needs one kind")
}

// TestCanaries is done-when 3 of issue 14: two masked copies with their
// own canaries; trace names the right copy for each canary's e-mail and
// phone, says "not a canary" for a real customer's e-mail, and recognises
// a pseudonym as a masked value.
func TestCanaries(t *testing.T) {
	ctx := context.Background()
	src := createDB(t, "coffer_canary")
	genShop(t, src, 2000, 3)
	c, rules, snap := maskRepo(t, src)
	copies := map[string]string{src + "_staging": "staging", src + "_contractor": "contractor"}
	planted := map[string][][2]string{}
	for db, label := range copies {
		c.ok(nil, "restore", snap.Snapshot, "--to", pgURL+db, "--mask", rules, "--canaries", "5", "--for", label)
		rows, err := postgres(t, db).Query(ctx, "SELECT id, email, phone FROM customers WHERE email LIKE '%@canary.example.net'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var e, p string
			rows.Scan(&id, &e, &p)
			if !strings.HasPrefix(p, "+1-555-0199") || id <= 2000 {
				t.Errorf("canary %d %s has phone %q", id, e, p)
			}
			planted[db] = append(planted[db], [2]string{e, p})
		}
		rows.Close()
		if len(planted[db]) != 5 {
			t.Fatalf("%s holds %d canaries, want 5", db, len(planted[db]))
		}
		if n := countRows(t, db, "customers"); n != 2005 {
			t.Fatalf("%s holds %d customers, want 2005", db, n)
		}
		var orders int
		postgres(t, db).QueryRow(ctx, "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email LIKE '%@canary.example.net'").Scan(&orders)
		if orders < 5 {
			t.Fatalf("the canaries of %s have %d orders, want 1 to 3 each", db, orders)
		}
	}
	for db, vals := range planted {
		for _, v := range vals {
			for _, q := range v {
				out := c.ok(nil, "trace", q)
				other := src + "_staging"
				if db == other {
					other = src + "_contractor"
				}
				mustContain(t, "trace "+q, out, "is a canary", db, `"`+copies[db]+`"`, snap.Snapshot[:8])
				if strings.Contains(out, other+" ") || strings.Contains(out, other+"\n") {
					t.Fatalf("trace %s names the other copy too:\n%s", q, out)
				}
			}
		}
	}
	l := loadShopLists(t)
	mustContain(t, "trace of a real e-mail", c.ok(nil, "trace", shopEmail(l, 42)), "is not a canary, and not a pseudonym")
	var pseudo string
	postgres(t, src+"_staging").QueryRow(ctx, "SELECT email FROM customers WHERE id = 42").Scan(&pseudo)
	mustContain(t, "trace of a pseudonym", c.ok(nil, "trace", pseudo), "is not a canary: it is a masked value", src+"_staging", src+"_contractor")
	var phone string
	postgres(t, src+"_staging").QueryRow(ctx, "SELECT phone FROM customers WHERE id = 42").Scan(&phone)
	mustContain(t, "trace of a masked phone", c.ok(nil, "trace", phone), "masked value")
	// Canaries are sealed: the audit log readable with the writer key holds none of them.
	out := c.ok(nil, "audit", "--json")
	if strings.Contains(out, planted[src+"_staging"][0][0]) || strings.Contains(out, "canary.example.net") {
		t.Fatal("the audit log shows a canary in clear")
	}
}

// TestHostileMaskedRestore plants original values where a masked load
// might carry them past the rules: a comment, a view, a materialized view,
// a function, a trigger that copies e-mails into another table, a large
// object, a sequence name. The masked copy carries none of them; and a
// column default holding an original e-mail is refused before anything is
// written.
func TestHostileMaskedRestore(t *testing.T) {
	ctx := context.Background()
	src := createDB(t, "coffer_maskhostile")
	genShop(t, src, 300, 5)
	l := loadShopLists(t)
	e1, e2 := shopEmail(l, 1), shopEmail(l, 2)
	_, err := postgres(t, src).Exec(ctx, `
		COMMENT ON TABLE customers IS 'first customer: `+e1+`';
		CREATE VIEW vip AS SELECT '`+e1+`'::text AS email UNION ALL SELECT email FROM customers;
		CREATE MATERIALIZED VIEW vip_m AS SELECT email, phone FROM customers;
		CREATE TABLE public.leak (v text);
		CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.leak VALUES (NEW.email || ' ' || '`+e2+`'); RETURN NEW; END $$;
		CREATE TRIGGER steal BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION steal();
		SELECT lo_from_bytea(0, convert_to((SELECT string_agg(email, ',') FROM customers), 'UTF8'));`)
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Replace(shopRules, "tables:\n", "tables:\n  public.leak:\n    v: keep\n", 1)
	c, path, _ := maskRepo(t, src)
	os.WriteFile(path, []byte(rules), 0o600)
	snap := c.backup(nil, "--source", "shop2", "--postgres", pgURL+src)
	out := c.ok(nil, "restore", snap.Snapshot, "--to", pgURL+src+"_m", "--mask", path)
	mustContain(t, "masked restore of a hostile snapshot", out, "leaves out", "comment", "view", "function", "trigger")
	orig := originalValues(t, src)
	if f := leaks(t, src+"_m", orig); len(f) > 0 {
		t.Fatalf("original values in the masked copy:\n%s", strings.Join(f, "\n"))
	}
	dump, err := exec.Command("pg_dump", "--no-password", "-h", "127.0.0.1", "-U", "postgres", "--blobs", src+"_m").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{e1, e2} {
		if strings.Contains(string(dump), e) {
			t.Fatalf("pg_dump of the masked copy holds %q", e)
		}
	}
	var los int
	postgres(t, src+"_m").QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&los)
	if los != 0 {
		t.Fatalf("the masked copy holds %d large objects", los)
	}

	// An original value in what a masked load carries (a column default,
	// a sequence's name) is refused outright.
	for i, attack := range []string{"ALTER TABLE orders ALTER COLUMN status SET DEFAULT '" + e1 + "'", `CREATE SEQUENCE "` + e2 + `"`} {
		if _, err := postgres(t, src).Exec(ctx, "ALTER TABLE orders ALTER COLUMN status DROP DEFAULT; "+attack); err != nil {
			t.Fatal(err)
		}
		snap = c.backup(nil, "--source", fmt.Sprint("shop3", i), "--postgres", pgURL+src)
		msg := c.fail(nil, "restore", snap.Snapshot, "--to", pgURL+src+"_m2", "--mask", path)
		mustContain(t, attack, msg, "holds an original value of a masked column", "nothing was written")
		var exists bool
		postgres(t, "postgres").QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", src+"_m2").Scan(&exists)
		if exists {
			t.Fatal("the refused masked restore created its target")
		}
	}
}

// TestMaskedDrill: coffer drill --mask loads a masked scratch copy and
// verifies it as restore --mask does (masked rows, kept columns).
func TestMaskedDrill(t *testing.T) {
	src := createDB(t, "coffer_maskdrill")
	genShop(t, src, 500, 9)
	c, rules, _ := maskRepo(t, src)
	d, _ := c.drill("--source", "shop", "--scratch", pgURL+"postgres", "--mask", rules)
	if !d.Passed || len(d.Runs) != 1 || !d.Runs[0].Passed {
		t.Fatalf("masked drill: %+v", d)
	}
	// And the same snapshot drilled unmasked verifies against the backup.
	plain, _ := c.drill("--source", "shop", "--scratch", pgURL+"postgres")
	if !plain.Passed {
		t.Fatalf("unmasked drill: %+v", plain)
	}
}
