package main_test

import (
	"context"
	"os"
	"path/filepath"
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

// TestMaskCostMariaDBSQLite is TestMaskCost for MariaDB and SQLite (with
// COFFER_MASK_BENCH=ROWS): it logs both times and fails at 2× or more.
func TestMaskCostMariaDBSQLite(t *testing.T) {
	n := os.Getenv("COFFER_MASK_BENCH")
	if n == "" {
		t.Skip("set COFFER_MASK_BENCH=1000000 to measure the cost of masking")
	}
	name, _, my := myShop(t, 0, 1)
	path, lite := liteShop(t, 0, 1)
	hmyExec(t, my, `INSERT INTO customers SELECT seq, 'Anna', 'Berg', CONCAT('c.', seq, '@mail.example.com'), CONCAT('+1-555-', LPAD(seq % 10000, 4, '0'), '-', LPAD((seq * 7) % 10000, 4, '0')),
		CONCAT(1 + seq % 300, ' Main St'), 'Lyon', 'FR', CONCAT('5500 0000 ', LPAD(seq % 10000, 4, '0'), ' 0004'), DATE '1950-01-01' + INTERVAL (seq % 20000) DAY,
		IF(seq % 5 = 0, CONCAT('Asked to send invoices to x', seq, '@mail.example.com instead'), NULL), 'gold', NOW() FROM seq_1_to_`+n)
	hmyExec(t, lite, `WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < `+n+`)
		INSERT INTO customers SELECT x, 'Anna', 'Berg', 'c.' || x || '@mail.example.com', '+1-555-' || substr('0000' || (x % 10000), -4) || '-' || substr('0000' || ((x * 7) % 10000), -4),
		(1 + x % 300) || ' Main St', 'Lyon', 'FR', '5500 0000 ' || substr('0000' || (x % 10000), -4) || ' 0004', date('1950-01-01', '+' || (x % 20000) || ' days'),
		CASE WHEN x % 5 = 0 THEN 'Asked to send invoices to x' || x || '@mail.example.com instead' END, 'gold', datetime('now') FROM g`)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	rules := writeRules(t, myShopRules)
	dir := t.TempDir()
	for _, e := range []struct{ engine, flag, src string }{{"mariadb", "--mysql", hmyServer + name}, {"sqlite", "--sqlite", path}} {
		snap := c.backup(nil, "--source", e.engine, e.flag, e.src)
		i := 0
		run := func(args ...string) time.Duration {
			i++
			to := hmyServer + name + "_" + strconv.Itoa(i)
			if e.engine == "sqlite" {
				to = "sqlite:" + filepath.Join(dir, strconv.Itoa(i)+".db")
			} else {
				hmyDrop(t, mariadb(t, ""), name+"_"+strconv.Itoa(i))
			}
			start := time.Now()
			c.ok(nil, append([]string{"restore", snap.Snapshot, "--to", to}, args...)...)
			return time.Since(start)
		}
		p, m := min(run(), run()), min(run("--mask", rules), run("--mask", rules))
		t.Logf("%s, %s customers: unmasked restore %s, masked %s (best of two: %.2f×)", e.engine, n, p.Round(time.Millisecond), m.Round(time.Millisecond), float64(m)/float64(p))
		if m >= 2*p {
			t.Errorf("%s: masking costs %.2f× the unmasked restore", e.engine, float64(m)/float64(p))
		}
	}
}
