package main_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMaskCost measures done-when 5 of issue 14: a masked restore of a
// 1 M-row customers table against the unmasked restore of the same
// snapshot. It runs with COFFER_MASK_BENCH=ROWS (it takes minutes) and
// fails if masking costs 2× or more.
func TestMaskCost(t *testing.T) {
	n := os.Getenv("COFFER_MASK_BENCH")
	if n == "" {
		t.Skip("set COFFER_MASK_BENCH=1000000 to measure the cost of masking")
	}
	ctx := context.Background()
	src := createDB(t, "coffer_maskbench")
	l := loadShopLists(t)
	q := func(s []string) string { return "ARRAY['" + strings.Join(s, "','") + "']" }
	if _, err := postgres(t, src).Exec(ctx, shopSchema); err != nil {
		t.Fatal(err)
	}
	fill := `INSERT INTO customers SELECT g, (` + q(l.first) + `)[1 + g % ` + itoa(len(l.first)) + `], (` + q(l.last) + `)[1 + (g / 7) % ` + itoa(len(l.last)) + `],
		'c.' || g || '@mail.example.com', '+1-555-' || lpad((g % 10000)::text, 4, '0') || '-' || lpad(((g * 7) % 10000)::text, 4, '0'),
		(1 + g % 300) || ' Main St', 'Lyon', 'FR', '5500 0000 ' || lpad((g % 10000)::text, 4, '0') || ' 0004', date '1950-01-01' + (g % 20000),
		CASE WHEN g % 5 = 0 THEN 'Asked to send invoices to x' || g || '@mail.example.com instead' END, 'gold', now()
		FROM generate_series(1, ` + n + `) g`
	if _, err := postgres(t, src).Exec(ctx, fill); err != nil {
		t.Fatal(err)
	}
	c, rules, snap := maskRepo(t, src)
	run := func(target string, args ...string) time.Duration {
		start := time.Now()
		c.ok(nil, append([]string{"restore", snap.Snapshot, "--to", pgURL + target}, args...)...)
		return time.Since(start)
	}
	plain := run(src + "_plain")
	masked := run(src+"_masked", "--mask", rules)
	plain2 := run(src + "_plain2")
	masked2 := run(src+"_masked2", "--mask", rules)
	best := func(a, b time.Duration) time.Duration { return min(a, b) }
	p, m := best(plain, plain2), best(masked, masked2)
	t.Logf("%s customers: unmasked restore %s and %s, masked %s and %s (best: %.2f×)", n, plain.Round(time.Millisecond), plain2.Round(time.Millisecond),
		masked.Round(time.Millisecond), masked2.Round(time.Millisecond), float64(m)/float64(p))
	if m >= 2*p {
		t.Fatalf("masking costs %.2f× the unmasked restore", float64(m)/float64(p))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
