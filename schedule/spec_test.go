package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load time zone: %v", err)
	}
	return loc
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// nexts returns the n scheduled times after from.
func nexts(sp *spec, from time.Time, n int) []string {
	var out []string
	for t := from; len(out) < n; {
		t = sp.next(t)
		out = append(out, t.Format(time.RFC3339))
	}
	return out
}

// TestNextDST pins the times across both DST transitions of 2026 in Berlin
// (03-29 02:00→03:00, 10-25 03:00→02:00) and New York (03-08 02:00→03:00,
// 11-01 02:00→01:00).
func TestNextDST(t *testing.T) {
	tests := []struct {
		name, zone, spec, from string
		want                   []string
	}{
		{"berlin spring daily 02:30 runs at the jump", "Europe/Berlin", "30 2 * * *", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"berlin spring daily 03:30 unaffected", "Europe/Berlin", "30 3 * * *", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T03:30:00+02:00", "2026-03-30T03:30:00+02:00"}},
		{"berlin spring hourly", "Europe/Berlin", "0 * * * *", "2026-03-29T00:30:00+01:00",
			[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
		{"berlin spring every 15 min", "Europe/Berlin", "*/15 * * * *", "2026-03-29T01:40:00+01:00",
			[]string{"2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"}},
		{"berlin fall daily 02:30 runs once", "Europe/Berlin", "30 2 * * *", "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"berlin fall from inside the repeated hour", "Europe/Berlin", "30 2 * * *", "2026-10-25T02:10:00+01:00",
			[]string{"2026-10-26T02:30:00+01:00"}},
		{"berlin fall hourly", "Europe/Berlin", "0 * * * *", "2026-10-25T01:30:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00"}},
		{"berlin @daily", "Europe/Berlin", "@daily", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
		{"new york spring daily 02:30", "America/New_York", "30 2 * * *", "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"new york fall daily 01:30 runs once", "America/New_York", "30 1 * * *", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"new york fall daily 02:30", "America/New_York", "30 2 * * *", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"}},
		{"new york fall hourly", "America/New_York", "0 * * * *", "2026-11-01T00:30:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := parseSpec(tt.spec, mustLoc(t, tt.zone))
			if err != nil {
				t.Fatal(err)
			}
			got := nexts(sp, mustTime(t, tt.from), len(tt.want))
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("from %s:\n got %v\nwant %v", tt.from, got, tt.want)
			}
		})
	}
}

// TestRobfigDST pins what robfig/cron itself does, which next corrects: if
// an upgrade changes it, the corrections must be revisited.
func TestRobfigDST(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	s, err := cron.ParseStandard("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	s.(*cron.SpecSchedule).Location = loc
	var got []string
	for tm, i := mustTime(t, "2026-03-28T12:00:00+01:00"), 0; i < 1; i++ {
		tm = s.Next(tm)
		got = append(got, tm.In(loc).Format(time.RFC3339))
	}
	for tm, i := mustTime(t, "2026-10-24T12:00:00+02:00"), 0; i < 3; i++ {
		tm = s.Next(tm)
		got = append(got, tm.In(loc).Format(time.RFC3339))
	}
	want := []string{
		"2026-03-30T02:30:00+02:00",                              // 03-29 skipped
		"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", // twice
		"2026-10-26T02:30:00+01:00",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("robfig/cron DST behaviour changed:\n got %v\nwant %v", got, want)
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string
	}{
		{"30 2 * * *", ""},
		{"@weekly", ""},
		{"0 3 * * mon-fri", ""},
		{"30 2 * *", "5 fields"},
		{"61 2 * * *", "5 fields"},
		{"0 0 30 2 * *", "5 fields"},
		{"@every 1h", "@every"},
		{"TZ=UTC 30 2 * * *", "time zone"},
		{"", "5 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := parseSpec(tt.spec, time.UTC)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("parse: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("parse: got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNextNever(t *testing.T) {
	sp, err := parseSpec("0 0 30 2 *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if n := sp.next(mustTime(t, "2026-01-01T00:00:00Z")); !n.IsZero() {
		t.Errorf("February 30th: got %v, want zero", n)
	}
}

func TestPrevious(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tc := range []struct{ expr, now, want string }{
		{"30 2 * * *", "2026-12-02T05:00:00Z", "2026-12-02T02:30:00Z"},
		{"30 2 * * *", "2026-12-02T02:30:00Z", "2026-12-02T02:30:00Z"},
		{"30 2 * * *", "2026-12-02T02:29:00Z", "2026-12-01T02:30:00Z"},
		{"0 3 * * 1-5", "2026-12-06T12:00:00Z", "2026-12-04T03:00:00Z"}, // Sunday: Friday's
		{"@monthly", "2026-12-20T00:00:00Z", "2026-12-01T00:00:00Z"},
	} {
		got, err := Previous(tc.expr, utc, at(tc.now))
		if err != nil || !got.Equal(at(tc.want)) {
			t.Errorf("Previous(%q, %s) = %s, %v; want %s", tc.expr, tc.now, got, err, tc.want)
		}
	}
}
