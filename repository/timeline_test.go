package repository_test

import (
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/repository"
)

// TestHostileHistory: a database host writes history files; anything but
// strictly increasing ancestors with WAL locations is refused.
func TestHostileHistory(t *testing.T) {
	good := "1\t0/5000000\tno recovery target specified\n\n# a comment\n2\t0/7000000\tbefore 2026-12-01 10:00:00+00\n"
	h, err := repository.ParseHistory(3, []byte(good))
	if err != nil || len(h) != 2 || h[0] != (repository.HistoryEntry{Timeline: 1, End: 0x5000000}) || h[1].Timeline != 2 {
		t.Fatalf("%v %v", h, err)
	}
	for name, text := range map[string]string{
		"empty":            "",
		"no tab":           "1 0/5000000 reason\n",
		"parent zero":      "0\t0/5000000\tx\n",
		"parent self":      "3\t0/5000000\tx\n",
		"parent later":     "4\t0/5000000\tx\n",
		"parent sign":      "+1\t0/5000000\tx\n",
		"parent leading 0": "01\t0/5000000\tx\n",
		"lsn":              "1\t../etc\tx\n",
		"lsn control":      "1\t0/5\x1b[2J\tx\n",
		"order":            "2\t0/7000000\tx\n1\t0/5000000\tx\n",
		"switch back":      "1\t0/7000000\tx\n2\t0/5000000\tx\n",
		"huge":             strings.Repeat("#", repository.MaxHistoryFile+1),
	} {
		if _, err := repository.ParseHistory(3, []byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTimelinePath: recovery from a backup on timeline 1 to timeline 3
// reads timeline 1 up to the segment of the first switch, 2 up to the
// second, then 3; a backup after the branch, or a timeline that did not
// branch from the backup's, has no path.
func TestTimelinePath(t *testing.T) {
	seg, _ := repository.NewWALSegments(16 << 20)
	tls := &repository.Timelines{Histories: map[uint32]repository.History{
		2: {{Timeline: 1, End: 0x5000060}},
		3: {{Timeline: 1, End: 0x5000060}, {Timeline: 2, End: 0x7000000}},
		5: {{Timeline: 4, End: 0x9000000}},
	}}
	p, err := tls.Path(seg, 1, 0x2000028, 3)
	if err != nil {
		t.Fatal(err)
	}
	for no, want := range map[uint64]uint32{2: 1, 4: 1, 5: 2, 6: 2, 7: 3, 100: 3} {
		if got := p.TimelineOf(no); got != want {
			t.Errorf("segment %d: timeline %d, want %d", no, got, want)
		}
	}
	have := map[string]bool{}
	for _, n := range []string{"000000010000000000000002", "000000010000000000000003", "000000010000000000000004",
		"000000020000000000000005", "000000020000000000000006", "000000030000000000000007",
		"000000010000000000000005", "000000010000000000000009"} { // the old timeline after its switch: not read
		have[n] = true
	}
	if end, ok := seg.NewestOn(have, p); !ok || end != 7 {
		t.Fatalf("newest on the path: %d %v", end, ok)
	}
	if n, missing := seg.ChainPath(have, p, 2, 7); n != 6 || missing != "" {
		t.Fatalf("chain: %d, missing %q", n, missing)
	}
	delete(have, "000000020000000000000005")
	if _, missing := seg.ChainPath(have, p, 2, 7); missing != "000000020000000000000005" {
		t.Fatalf("missing %q", missing)
	}
	if tls.Latest(1) != 3 || tls.Latest(4) != 5 {
		t.Fatalf("latest: %d %d", tls.Latest(1), tls.Latest(4))
	}
	for name, err := range map[string]error{
		"after the branch": func() error { _, err := tls.Path(seg, 1, 0x6000000, 2); return err }(),
		"not an ancestor":  func() error { _, err := tls.Path(seg, 1, 0x2000028, 5); return err }(),
		"no history":       func() error { _, err := tls.Path(seg, 1, 0x2000028, 9); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: a path", name)
		}
	}
}

func FuzzParseHistory(f *testing.F) {
	f.Add(uint32(3), []byte("1\t0/5000000\tx\n2\t0/7000000\ty\n"))
	f.Fuzz(func(t *testing.T, tl uint32, b []byte) {
		h, err := repository.ParseHistory(tl, b)
		if err != nil {
			return
		}
		for i, e := range h {
			if e.Timeline == 0 || e.Timeline >= tl || i > 0 && (e.Timeline <= h[i-1].Timeline || e.End < h[i-1].End) {
				t.Fatalf("accepted %v", h)
			}
		}
	})
}
