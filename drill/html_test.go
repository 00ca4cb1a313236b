package drill

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/headless"
)

// Names a hostile database could hold: the page must show them as text.
const (
	evilTable  = `<script>alert("x")</script>`
	evilSource = `crm & <b>billing</b>`
)

func sampleReport() *Report {
	at := time.Date(2026, 3, 2, 14, 5, 9, 0, time.UTC)
	table := func(name string, want, got int64, reason string) TableCheck {
		return TableCheck{engine.TableResult{Table: name, WantRows: want, GotRows: got, Match: reason == "", Reason: reason}}
	}
	phases := func(dl, load, verify, assert time.Duration) []Phase {
		return []Phase{{"download and decrypt", dl}, {"load", load}, {"verify", verify}, {"assertions", assert}}
	}
	failing := SnapshotRun{
		Snapshot: "3f2a9c0d81b7e4f5a6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d", Source: evilSource,
		Engine: "postgres", SnapshotAt: at.Add(-6*time.Hour - 3*time.Minute), Size: 3 << 30,
		Target: "postgres://drill@127.0.0.1:5432/coffer_drill_x_0",
		Checks: []Check{
			{Name: "chunks", Passed: true, Detail: "1,204 chunks decrypted and matched their IDs"},
			{Name: "stream digest", Passed: true, Detail: "sha256 matches"},
			{Name: "load", Passed: true, Detail: "pg_restore finished without error"},
			{Name: "tables", Detail: "2 of 4 tables differ: R&D_budgets, " + evilTable},
			{Name: "assertion: no order without a customer", Detail: `got 3, want 0 (query "SELECT count(*) FROM orders o LEFT JOIN customers c …")`},
			{Name: "scratch removed", Passed: true, Detail: "coffer_drill_x_0 and the restored dump were removed"},
		},
		Phases: phases(72*time.Second+300*time.Millisecond, 4*time.Minute+12*time.Second, 38*time.Second, 1200*time.Millisecond),
		RPO:    RPO{Age: 6*time.Hour + 3*time.Minute, Gap: 24 * time.Hour},
		Tables: []TableCheck{
			table("customers", 120431, 120431, ""),
			table("orders", 5234119, 5234119, ""),
			table("R&D_budgets", 880, 879, "879 rows, want 880"),
			table(evilTable, 12, 12, "same row count, different contents"),
		},
	}
	for _, p := range failing.Phases {
		failing.RTO += p.Duration
	}
	passing := SnapshotRun{
		Snapshot: "9b8a7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9", Source: evilSource,
		Engine: "postgres", SnapshotAt: at.Add(-3 * 24 * time.Hour), Size: 3<<30 - 12<<20,
		Target: "postgres://drill@127.0.0.1:5432/coffer_drill_x_1", Passed: true,
		Checks: []Check{
			{Name: "chunks", Passed: true, Detail: "1,198 chunks decrypted and matched their IDs"},
			{Name: "stream digest", Passed: true, Detail: "sha256 matches"},
			{Name: "load", Passed: true, Detail: "pg_restore finished without error"},
			{Name: "tables", Passed: true, Detail: "4 tables match"},
			{Name: "scratch removed", Passed: true, Detail: "coffer_drill_x_1 and the restored dump were removed"},
		},
		Phases: phases(70*time.Second, 4*time.Minute+2*time.Second, 36*time.Second, 0),
		RPO:    RPO{Age: 3*24*time.Hour + 4*time.Minute, Gap: 24 * time.Hour},
		Tables: []TableCheck{
			table("customers", 120100, 120100, ""),
			table("orders", 5221002, 5221002, ""),
			table("R&D_budgets", 880, 880, ""),
			table(evilTable, 12, 12, ""),
		},
	}
	for _, p := range passing.Phases {
		passing.RTO += p.Duration
	}
	return &Report{
		Version: 1, ID: "20260302t140509_a1b2c3", Started: at, Finished: at.Add(13 * time.Minute),
		Host: "drill-01.example.internal", Tool: "coffer 0.9.0", Runs: []SnapshotRun{failing, passing},
	}
}

func TestWriteHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"FAILED", "PASSED",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", // the table name, as text
		"R&amp;D_budgets",
		"crm &amp; &lt;b&gt;billing&lt;/b&gt;",
		"879 rows, want 880",
		"assertion: no order without a customer",
		"5,234,119",
		"6 h 3 min", // RPO age
		"1 day",     // gap
		"drill-01.example.internal",
		"2026-03-02 14:05:09 UTC",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	lower := strings.ToLower(page)
	for _, banned := range []string{"<script", "<b>", "<link", "<img", "@import", "url(", "http://", "https://"} {
		if strings.Contains(lower, banned) {
			t.Errorf("page contains %q: it must be escaped text and self-contained", banned)
		}
	}
	// The verdict comes first, before any run's details.
	if v, r := strings.Index(page, `class="verdict">FAILED`), strings.Index(page, `<section class="run">`); v < 0 || r < 0 || v > r {
		t.Errorf("the FAILED verdict (at %d) must come before the first run (at %d)", v, r)
	}
	if n := strings.Count(page, `<tr class="mismatch">`); n != 2 {
		t.Errorf("%d highlighted table rows, want 2", n)
	}
}

func TestWriteHTMLPassed(t *testing.T) {
	r := sampleReport()
	r.Runs = r.Runs[1:]
	r.Passed = true
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	if page := buf.String(); !strings.Contains(page, `class="verdict">PASSED`) || strings.Contains(page, "FAILED") {
		t.Errorf("a passed drill's page must say PASSED and never FAILED")
	}
}

func TestWriteHTMLEmpty(t *testing.T) {
	// A drill that could not even pick a snapshot still gets a page.
	var buf bytes.Buffer
	if err := WriteHTML(&buf, &Report{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "No snapshot was drilled.") {
		t.Errorf("an empty report's page must say that nothing was drilled")
	}
}

func TestHumanDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{300 * time.Microsecond, "< 1 ms"},
		{350 * time.Millisecond, "350 ms"},
		{999700 * time.Microsecond, "1.0 s"},
		{2345 * time.Millisecond, "2.3 s"},
		{42 * time.Second, "42 s"},
		{59700 * time.Millisecond, "1 min"},
		{5*time.Minute + 3*time.Second, "5 min 3 s"},
		{time.Hour + 5*time.Minute + 10*time.Second, "1 h 5 min"},
		{2 * time.Hour, "2 h"},
		{24 * time.Hour, "1 day"},
		{28 * time.Hour, "1 day 4 h"},
		{3*24*time.Hour + 4*time.Minute, "3 days"},
		{10*24*time.Hour + 5*time.Hour, "10 days"},
		{-90 * time.Second, "−1 min 30 s"},
	} {
		if got := humanDuration(c.d); got != c.want {
			t.Errorf("humanDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// TestHTMLRendersInChromium opens the report in headless Chromium and
// checks the screenshot: the right size, not blank, and the red FAILED
// verdict at the top.
func TestHTMLRendersInChromium(t *testing.T) {
	// The page and its screenshot outlive the test so that a person can
	// look at them; they stay out of the repository.
	out, err := os.MkdirTemp("", "coffer-drill-html-")
	if err != nil {
		t.Fatal(err)
	}
	htmlPath := filepath.Join(out, "report.html")
	f, err := os.Create(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteHTML(f, sampleReport())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	const width, height = 1280, 1800
	img, err := headless.Screenshot(htmlPath, width, height, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %s and its screenshot beside it", htmlPath)
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	if n := distinctColours(img, 1000); n < 20 {
		t.Errorf("screenshot has %d distinct colours: the page did not render", n)
	}
	// The verdict, 56 px of #c62828 text, sits in the top 300 px.
	top := image.Rect(0, 0, width, 300)
	red := func(r, g, b uint8) bool { return r > 150 && g < 90 && b < 90 }
	if n := headless.Count(img, top, red); n < 500 {
		t.Errorf("%d red pixels in the top %d px, want the red FAILED verdict there", n, top.Dy())
	}
}

// distinctColours counts the colours in img, stopping at limit.
func distinctColours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
