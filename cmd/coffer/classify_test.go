package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/mask"
)

// TestClassifyShop is done-when 1 of issue 14: on a generated database of
// 100,000 customers with realistic column names, classify proposes the
// right rule for every sensitive column and keep for the others, and the
// rules file it writes is the one an operator would write (shopRules).
func TestClassifyShop(t *testing.T) {
	src := createDB(t, "coffer_classify")
	genShop(t, src, 100000, 7)
	c, _, snap := maskRepo(t, src)
	out := filepath.Join(t.TempDir(), "proposed.yaml")
	var ps []struct {
		Table, Column, Class, Rule, Reason string
		Share                              float64
	}
	if err := json.Unmarshal([]byte(c.ok(nil, "classify", snap.Snapshot, "--json", "--output", out)), &ps); err != nil {
		t.Fatal(err)
	}
	want, err := mask.Parse("shopRules", []byte(shopRules))
	if err != nil {
		t.Fatal(err)
	}
	got, err := mask.Load(out)
	if err != nil {
		t.Fatalf("the proposed rules file does not parse: %v", err)
	}
	var misses []string
	n := 0
	for table, cols := range want.Tables {
		for col, w := range cols {
			n++
			if g, ok := got.Lookup(table, col); !ok || g.String() != w.String() {
				misses = append(misses, fmt.Sprintf("%s.%s: proposed %q, want %q", table, col, g, w))
			}
		}
	}
	if len(ps) != n {
		t.Errorf("%d proposals for the %d columns", len(ps), n)
	}
	for _, p := range ps {
		if p.Rule != "keep" && p.Class == "none" || p.Reason == "" {
			t.Errorf("%s.%s: rule %q with class %q and reason %q", p.Table, p.Column, p.Rule, p.Class, p.Reason)
		}
		if p.Table == "public.customers" && p.Column == "email" && p.Share < 0.99 {
			t.Errorf("customers.email: %.2f of the sampled values look like e-mails", p.Share)
		}
	}
	if len(misses) > 0 {
		t.Fatalf("classify missed %d of %d columns:\n%s", len(misses), n, strings.Join(misses, "\n"))
	}
	mustContain(t, "a second classify --output", c.fail(nil, "classify", snap.Snapshot, "--output", out), "exist")
}
