package main_test

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/headless"
	"github.com/coffer-backup/coffer/status"
)

// TestCLIStatus is done-when 5 of the operator issue: coffer status exits
// non-zero for a source whose newest snapshot is older than its schedule
// allows and for a failed last drill, and its HTML page, rendered in
// headless Chromium, shows the three plots.
func TestCLIStatus(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	c.ok(nil, "demo", "--dir", filepath.Join(dir, "demo"), "--customers", "300")
	db := filepath.Join(dir, "demo", "customers.db")
	// Four nights of shop (the last one now), and crm three days ago.
	for i, off := range []string{"-72h", "-48h", "-24h", "0s"} {
		c.with("COFFER_TEST_CLOCK_OFFSET="+off).backup(strings.NewReader(strings.Repeat(fmt.Sprintf("night %d\n", i), 20000*(i+1))), "--source", "shop", "--stdin")
	}
	c.with("COFFER_TEST_CLOCK_OFFSET=-72h").backup(nil, "--source", "crm", "--sqlite", db)
	assertions := filepath.Join(dir, "assert.yaml")
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(*) FROM customers\n  expect: 300\n"), 0o600)
	c.drill("--source", "crm", "--assertions", assertions)

	cfg := filepath.Join(dir, "coffer.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`repository:
  url: %s
  writer_key_file: %s
  time_zone: UTC
sources:
  - name: shop
    exec: "cat /dev/null"
    schedule: "@daily"
  - name: crm
    sqlite: %s
    schedule: "@daily"
`, filepath.Join(dir, "repo"), filepath.Join(c.dir, "writer.key"), db)), 0o600)

	// crm's newest snapshot is three days old against a daily schedule.
	writer := c.without("COFFER_IDENTITY_FILE")
	r := writer.run(nil, "status", "--config", cfg, "--json")
	if r.code != 1 {
		t.Fatalf("status with an overdue source: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep status.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	bySource := map[string]status.Source{}
	for _, s := range rep.Sources {
		bySource[s.Source] = s
	}
	if rep.OK || !bySource["crm"].Overdue || bySource["shop"].Overdue || bySource["shop"].Snapshots != 4 {
		t.Fatalf("status: %+v", rep)
	}
	if d := bySource["crm"].LastDrill; d == nil || !d.Passed || d.RTOSeconds <= 0 {
		t.Fatalf("crm's last drill: %+v", d)
	}
	// With --json the error is JSON too, on standard error.
	var failed struct{ Error string }
	if err := json.Unmarshal([]byte(r.stderr), &failed); err != nil {
		t.Fatalf("status --json: standard error %q: %v", r.stderr, err)
	}
	mustContain(t, "status", failed.Error, "source crm: overdue", `"@daily" due at`)

	// Fresh again: exit 0.
	c.backup(nil, "--source", "crm", "--sqlite", db)
	mustContain(t, "status when all is well", writer.ok(nil, "status", "--config", cfg), "all sources are up to date")

	// A failed last drill: exit 1, naming it.
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(*) FROM customers\n  expect: 301\n"), 0o600)
	if r := c.run(nil, "drill", "--source", "crm", "--assertions", assertions, "--report-dir", t.TempDir(), "--state-dir", filepath.Join(c.dir, "state")); r.code != 1 {
		t.Fatalf("the failing drill: exit %d", r.code)
	}
	r = writer.run(nil, "status", "--config", cfg)
	if r.code != 1 {
		t.Fatalf("status after a failed drill: exit %d\n%s", r.code, r.stdout)
	}
	mustContain(t, "status after a failed drill", r.stdout, "FAILED", "the last drill", "failed")

	// The HTML page: three plots, each in its own colour, in a real browser.
	out, err := os.MkdirTemp("", "coffer-status-html-")
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(out, "status.html")
	writer.run(nil, "status", "--config", cfg, "--html", page)
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), "<svg"); n != 3 {
		t.Fatalf("the page has %d plots, want 3", n)
	}
	img, err := headless.Screenshot(page, 1000, 1400, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status page %s and its screenshot beside it", page)
	for name, hex := range map[string]string{"stored per night": status.ColorStored, "RPO per night": status.ColorRPO, "RTO per drill": status.ColorRTO} {
		var cr, cg, cb uint8
		fmt.Sscanf(hex, "#%02x%02x%02x", &cr, &cg, &cb)
		near := func(r, g, b uint8) bool {
			d := func(a, b uint8) float64 { return math.Abs(float64(a) - float64(b)) }
			return d(r, cr) < 12 && d(g, cg) < 12 && d(b, cb) < 12
		}
		if n := headless.Count(img, image.Rect(0, 0, 1000, 1400), near); n < 200 {
			t.Errorf("the %s plot: %d pixels of %s in the screenshot, want its bars", name, n, hex)
		}
	}
}
