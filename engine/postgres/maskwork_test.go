package postgres

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/mask"
)

// The goroutines that mask a table's columns at once give the rows one
// Masker gives masking them one by one: the same pseudonyms, the same
// re-derivations in a unique column (which depend on the order of its
// values), NULLs and escapes kept, originals collected.
func TestMaskBatchParallel(t *testing.T) {
	rules, err := mask.Parse("rules.yaml", []byte(`version: 1
default: fail
tables:
  public.customers:
    id: keep
    first_name: fake first_name
    last_name: fake last_name unique
    email: fake email
    phone: fake phone
    notes: fake text
    city: keep
`))
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"id", "first_name", "last_name", "email", "phone", "notes", "city"}
	e := &tocEntry{desc: "TABLE DATA", namespace: "public", tag: "customers"}
	var batch bytes.Buffer
	for i := range 300 {
		note, last := `\N`, `\N`
		if i < 40 { // of 60 last names: many re-derivations
			last = fmt.Sprintf("Abbott%d", i)
		}
		if i%3 == 0 {
			note = fmt.Sprintf(`wrote\tfrom x%d@mail.example.com`, i)
		}
		fmt.Fprintf(&batch, "%d\tAda%d\t%s\tc.%d@mail.example.com\t+1-555-%04d-0001\t%s\tLyon\n", i, i%7, last, i, i, note)
	}
	var key mask.Key
	key[0] = 7
	masked := func(workers int) ([]byte, *mask.Originals) {
		m := &Masking{Rules: rules, Masker: mask.NewMasker(key)}
		tab := newMaskTable(m, "public.customers", e, cols, nil)
		tab.workers = workers
		ma := &maskedArchive{a: &archive{label: "shop"}, seen: &mask.Originals{}}
		out, err := ma.maskBatch(tab, batch.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		ma.seen.Seal()
		return out, ma.seen
	}
	one, seen1 := masked(1)
	two, seen2 := masked(4)
	if !bytes.Equal(one, two) {
		t.Fatalf("four goroutines masked otherwise than one:\n%.400s\n%.400s", one, two)
	}
	if seen1.Len() != seen2.Len() || !seen2.Has("c.299@mail.example.com") || !seen2.Has("wrote\tfrom x0@mail.example.com") {
		t.Fatalf("originals: %d and %d", seen1.Len(), seen2.Len())
	}
	rows := strings.Split(strings.TrimSuffix(string(two), "\n"), "\n")
	if len(rows) != 300 || strings.Contains(string(two), "mail.example.com") || !strings.HasSuffix(rows[1], "\t\\N\tLyon") {
		t.Fatalf("masked rows: %d, %.300s", len(rows), two)
	}
	// Each value is its own Masker's pseudonym, computed one at a time.
	c := mask.NewMasker(key).Column("x", mask.Rule{Action: mask.Fake, Kind: mask.Email})
	if want, _, _ := c.Mask("c.5@mail.example.com"); strings.Split(rows[5], "\t")[3] != want {
		t.Fatalf("row 5: %q, want e-mail %q", rows[5], want)
	}
}
