package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/mask"
)

// BenchmarkMaskCopy masks a 100,000-row customers table.
func BenchmarkMaskCopy(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "src.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, phone TEXT, notes TEXT, city TEXT);
		WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 100000)
		INSERT INTO customers SELECT x, 'c.' || x || '@mail.example.com', '+1-555-' || substr('0000' || (x % 10000), -4) || '-0000',
		CASE WHEN x % 5 = 0 THEN 'mail x' || x || '@mail.example.com' END, 'Lyon' FROM g`)
	db.Close()
	if err != nil {
		b.Fatal(err)
	}
	rules, err := mask.Parse("r", []byte("version: 1\ndefault: fail\ntables:\n  customers:\n    id: keep\n    email: fake email\n    phone: fake phone\n    notes: fake text\n    city: keep\n"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f, _ := os.Open(path)
		m, err := MaskCopy(ctx, f, b.TempDir(), &Masking{Rules: rules, Masker: mask.NewMasker(mask.Key{1})})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
