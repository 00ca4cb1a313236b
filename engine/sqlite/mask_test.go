package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/mask"
)

// TestMaskCopyRowids: rows at the smallest and largest rowids, and in a
// table with no masked column, are masked and digested like the others.
func TestMaskCopyRowids(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE customers (email TEXT UNIQUE, city TEXT);
		INSERT INTO customers (rowid, email, city) VALUES (-9223372036854775808, 'first.one@mail.example.com', 'Oslo'),
			(0, 'zero.one@mail.example.com', 'Rome'), (9223372036854775807, 'last.one@mail.example.com', 'Bonn');
		CREATE TABLE cities (name TEXT); INSERT INTO cities VALUES ('Oslo'), ('Rome');`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := mask.Parse("r", []byte("version: 1\ndefault: fail\ntables:\n  customers:\n    email: fake email\n    city: keep\n  cities:\n    name: keep\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	m, err := MaskCopy(ctx, f, t.TempDir(), &Masking{Rules: rules, Masker: mask.NewMasker(mask.Key{2})})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raw, _ := os.ReadFile(m.Path)
	for _, orig := range []string{"first.one@", "zero.one@", "last.one@"} {
		if strings.Contains(string(raw), orig) {
			t.Errorf("the masked copy holds %s", orig)
		}
	}
	got, err := MaskedDigests(ctx, m.Path, m)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Expected()
	if len(got) != 2 || len(want) != 2 || got[0] != want[0] || got[1] != want[1] || want[1].Rows != 3 || want[0].Rows != 2 {
		t.Fatalf("kept digests: got %+v, want %+v", got, want)
	}
}
