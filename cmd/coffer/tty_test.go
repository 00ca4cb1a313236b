package main_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTTYProgressEnds runs restore --to and drill on a pseudo-terminal:
// restore's progress line reaches 100 % and its result starts on a line of
// its own; the drill shows its phases while it runs, before its report.
func TestTTYProgressEnds(t *testing.T) {
	src := createDB(t, "h_json_tty")
	genShop(t, src, 3000, 5)
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	b := c.backup(nil, "--source", "shop", "--postgres", pgURL+src)

	r := c.runScript("", "restore", b.Snapshot, "--to", pgURL+src+"_copy")
	if r.code != 0 {
		t.Fatalf("restore --to on a terminal: exit %d\n%s", r.code, r.stdout)
	}
	out := strings.ReplaceAll(r.stdout, "\r\n", "\n")
	i := strings.Index(out, "restored snapshot")
	if i < 0 {
		t.Fatalf("restore --to printed no result:\n%q", out)
	}
	before := out[:i]
	last := before[strings.LastIndex(before, "\r")+1:]
	if !strings.HasSuffix(before, "\n") || !strings.Contains(last, "(100%") {
		t.Errorf("restore --to: the result does not follow a progress line ended at 100 %%:\n%q", out)
	}

	state := filepath.Join(dir, "state")
	r = c.runScript("", "drill", "--source", "shop", "--scratch", pgURL, "--state-dir", state, "--report-dir", dir)
	if r.code != 0 {
		t.Fatalf("drill on a terminal: exit %d\n%s", r.code, r.stdout)
	}
	out = strings.ReplaceAll(r.stdout, "\r\n", "\n")
	report := strings.Index(out, "PASSED")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`drill: snapshot ` + b.Snapshot[:8] + ` of shop\n`),
		regexp.MustCompile(`\r\x1b\[K  download and decrypt [0-9.]+m?s\n`),
		regexp.MustCompile(`\r\x1b\[K  load [0-9.]+m?s\n`),
		regexp.MustCompile(`\r\x1b\[K  verify [0-9.]+m?s\n`),
		regexp.MustCompile(`drill: snapshot ` + b.Snapshot[:8] + ` passed, done in [0-9.]+m?s\n`),
	} {
		loc := want.FindStringIndex(out)
		if loc == nil || loc[0] > report {
			t.Errorf("drill on a terminal: no %q before its report:\n%q", want, out)
		}
	}

	// Not on a terminal, the drill prints no phases (cron mails stay short).
	if plain := c.run(nil, "drill", "--source", "shop", "--scratch", pgURL, "--state-dir", state, "--report-dir", dir); plain.code != 0 || strings.Contains(plain.stderr, "drill: snapshot") {
		t.Errorf("drill without a terminal: exit %d, standard error:\n%s", plain.code, plain.stderr)
	}
}
