package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/engine"
)

func makeDB(t *testing.T, rows int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`PRAGMA journal_mode=WAL`,
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, balance REAL, photo BLOB)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), note TEXT)`,
		`CREATE TABLE empty_table (x INTEGER)`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ := db.Begin()
	for i := range rows {
		var email any = nil
		if i%7 != 0 {
			email = "kunde" + string(rune('a'+i%26)) + "@example.com"
		}
		tx.Exec(`INSERT INTO customers VALUES (?, ?, ?, ?, ?)`, i, "Zoë Müller-日本 "+strings.Repeat("x", i%50), email, float64(i)/3, []byte{byte(i), 0, 255})
		tx.Exec(`INSERT INTO orders (customer_id, note) VALUES (?, ?)`, i, nil)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDumpLoadDigests(t *testing.T) {
	ctx := context.Background()
	src := makeDB(t, 2000)
	d, err := Start(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "restored.db")
	if err := Load(ctx, d, target); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := os.Stat(d.dir); err == nil {
		t.Error("the copy was not removed")
	}
	got, err := Digests(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	res := engine.Compare(d.Digests, got)
	if !engine.AllMatch(res) || len(res) != 3 || res[0].Table != "customers" || res[0].WantRows != 2000 {
		t.Fatalf("digests after restore: %+v", res)
	}

	// One changed value must show, in that table only.
	db, _ := open(target, false)
	db.Exec(`UPDATE customers SET balance = balance + 0.01 WHERE id = 1234`)
	db.Close()
	got, _ = Digests(ctx, target)
	res = engine.Compare(d.Digests, got)
	if res[0].Match || !res[1].Match || res[0].Reason != "same row count, different contents" {
		t.Fatalf("after an update: %+v", res)
	}

	// Load refuses a non-empty target without clean.
	d2, _ := Start(ctx, src, "")
	defer d2.Close()
	if err := Load(ctx, d2, target); err == nil || !strings.Contains(err.Error(), "--clean") {
		t.Fatalf("load over an existing database: %v", err)
	}
}

// TestConsistentWhileWriting copies while another connection writes in
// transactions of two rows that must appear together or not at all.
func TestConsistentWhileWriting(t *testing.T) {
	ctx := context.Background()
	src := makeDB(t, 100)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		db, _ := open(src, false)
		defer db.Close()
		for i := 100000; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := db.Begin()
			if err != nil {
				continue
			}
			tx.Exec(`INSERT INTO customers (id, name) VALUES (?, 'pair')`, i)
			time.Sleep(time.Millisecond)
			tx.Exec(`INSERT INTO orders (customer_id, note) VALUES (?, 'pair')`, i)
			tx.Commit()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	for range 5 {
		d, err := Start(ctx, src, "")
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := sql.Open("sqlite", "file:"+filepath.Join(d.dir, "copy.db")+"?mode=ro")
		var c, o int
		cp.QueryRow(`SELECT count(*) FROM customers WHERE name = 'pair'`).Scan(&c)
		cp.QueryRow(`SELECT count(*) FROM orders WHERE note = 'pair'`).Scan(&o)
		cp.Close()
		d.Close()
		if c != o {
			t.Fatalf("copy holds %d customers but %d orders of the pairs: not consistent", c, o)
		}
	}
	close(stop)
	wg.Wait()
}

func TestNotADatabase(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(p, []byte("this is not sqlite, just text that is long enough to be a header......"), 0o600)
	if _, err := Start(context.Background(), p, ""); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("Start on a text file: %v", err)
	}
	if _, err := Start(context.Background(), p+".missing", ""); err == nil {
		t.Fatal("Start on a missing file succeeded")
	}
}

// TestUntrustedSchema: coffer's connections to a database (a restored
// one is the snapshot's) do not trust its schema.
func TestUntrustedSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var on int
	if err := db.QueryRow("PRAGMA trusted_schema").Scan(&on); err != nil {
		t.Fatal(err)
	}
	if on != 0 {
		t.Fatalf("trusted_schema = %d, want 0", on)
	}
}
