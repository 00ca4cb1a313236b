package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMaskCost measures done-when 5 of issue 14: a masked restore of a
// 1 M-row customers table against the unmasked restore of the same
// snapshot, both verified. It runs with COFFER_MASK_BENCH=ROWS (it takes
// minutes), COFFER_MASK_BENCH_ROUNDS rounds (3 by default) of one unmasked
// and one masked restore in turn, and reports the medians; with
// COFFER_MASK_BENCH_PROFILE=DIR each restore writes a CPU profile there
// (plain-N.prof, masked-N.prof). It fails if masking costs 2× or more.
func TestMaskCost(t *testing.T) {
	n := os.Getenv("COFFER_MASK_BENCH")
	if n == "" {
		t.Skip("set COFFER_MASK_BENCH=1000000 to measure the cost of masking")
	}
	rounds := 3
	if s := os.Getenv("COFFER_MASK_BENCH_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("COFFER_MASK_BENCH_ROUNDS=%q: give a number of rounds", s)
		}
	}
	src := createDB(t, "h_maskspeed_bench")
	fillMaskBench(t, src, n)
	c, rules, snap := maskRepo(t, src)
	prof := os.Getenv("COFFER_MASK_BENCH_PROFILE")
	run := func(what string, i int, args ...string) benchRun {
		target := fmt.Sprintf("%s_%s%d", src, what, i)
		cc := c
		if prof != "" {
			cc = c.with("COFFER_CPUPROFILE=" + filepath.Join(prof, fmt.Sprintf("%s-%d.prof", what, i)))
		}
		cmd := cc.cmd(context.Background(), nil, append([]string{"restore", snap.Snapshot, "--to", pgURL + target, "--json"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		r := benchRun{total: time.Since(start)}
		if err != nil {
			t.Fatalf("restore %s: %v\n%s", what, err, stderr.String())
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("restore --json: %v\n%s", err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		r.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		r.maxRSS = ru.Maxrss << 10
		dropLike(t, target)
		t.Logf("%s round %d: %s (load %.2f s, verify %.2f s; CPU of coffer and its pg_restore, pg_dump %.2f s, max RSS %d MiB)", what, i, r.total.Round(time.Millisecond), r.Load, r.Verify,
			r.cpu.Seconds(), r.maxRSS>>20)
		return r
	}
	var plain, masked []benchRun
	for i := range rounds {
		plain = append(plain, run("plain", i))
		masked = append(masked, run("masked", i, "--mask", rules))
	}
	p, m := median(plain), median(masked)
	t.Logf("%s customers, %d rounds, medians: unmasked restore %s (load %.2f s, verify %.2f s, CPU %.2f s), masked %s (load %.2f s, verify %.2f s, CPU %.2f s): %.2f×",
		n, rounds, p.total.Round(time.Millisecond), p.Load, p.Verify, p.cpu.Seconds(), m.total.Round(time.Millisecond), m.Load, m.Verify, m.cpu.Seconds(),
		float64(m.total)/float64(p.total))
	if m.total >= 2*p.total {
		t.Fatalf("masking costs %.2f× the unmasked restore", float64(m.total)/float64(p.total))
	}
}

// benchRun is one timed restore: its wall time and what it reported.
type benchRun struct {
	total  time.Duration
	cpu    time.Duration // of coffer and the pg_restore and pg_dump it ran, user and system
	maxRSS int64
	Load   float64 `json:"load_seconds"`
	Verify float64 `json:"verify_seconds"`
}

// median is the run of median wall time.
func median(rs []benchRun) benchRun {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b benchRun) int { return int(a.total - b.total) })
	return s[len(s)/2]
}

// fillMaskBench creates the shop's schema in db and n customers, with a
// note holding an e-mail in every fifth.
func fillMaskBench(t *testing.T, db, n string) {
	t.Helper()
	ctx := context.Background()
	l := loadShopLists(t)
	q := func(s []string) string { return "ARRAY['" + strings.Join(s, "','") + "']" }
	if _, err := postgres(t, db).Exec(ctx, shopSchema); err != nil {
		t.Fatal(err)
	}
	fill := `INSERT INTO customers SELECT g, (` + q(l.first) + `)[1 + g % ` + itoa(len(l.first)) + `], (` + q(l.last) + `)[1 + (g / 7) % ` + itoa(len(l.last)) + `],
		'c.' || g || '@mail.example.com', '+1-555-' || lpad((g % 10000)::text, 4, '0') || '-' || lpad(((g * 7) % 10000)::text, 4, '0'),
		(1 + g % 300) || ' Main St', 'Lyon', 'FR', '5500 0000 ' || lpad((g % 10000)::text, 4, '0') || ' 0004', date '1950-01-01' + (g % 20000),
		CASE WHEN g % 5 = 0 THEN 'Asked to send invoices to x' || g || '@mail.example.com instead' END, 'gold', now()
		FROM generate_series(1, ` + n + `) g`
	if _, err := postgres(t, db).Exec(ctx, fill); err != nil {
		t.Fatal(err)
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
