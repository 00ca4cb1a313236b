package retention

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load time zone %s: %v", name, err)
	}
	return loc
}

// at parses an RFC 3339 time; every time in the tables carries its offset so
// that the instant, and the DST side of a repeated hour, is explicit.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// snap is a snapshot of source "db" on host "h1".
func snap(id, when string, tags ...string) Snapshot {
	return Snapshot{ID: id, Time: at(when), Source: "db", Host: "h1", Tags: tags}
}

func on(source, host string, s Snapshot) Snapshot {
	s.Source, s.Host = source, host
	return s
}

// series makes snapshots of source/host from first to last (inclusive),
// stepping with next; each ID is prefix plus the local date.
func series(source, host, prefix string, first, last time.Time, next func(time.Time) time.Time) []Snapshot {
	var out []Snapshot
	for t := first; !t.After(last); t = next(t) {
		out = append(out, Snapshot{ID: prefix + t.Format("2006-01-02"), Time: t, Source: source, Host: host})
	}
	return out
}

func shuffled(s []Snapshot) []Snapshot {
	s = slices.Clone(s)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

func TestApply(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	newYork := zone(t, "America/New_York")
	daily0030 := series("db", "h1", "",
		time.Date(2024, 1, 1, 0, 30, 0, 0, berlin), time.Date(2026, 12, 31, 0, 30, 0, 0, berlin),
		func(t time.Time) time.Time { return t.AddDate(0, 0, 1) })
	twoHosts := append(
		series("db", "h1", "h1 ",
			time.Date(2024, 1, 7, 3, 0, 0, 0, berlin), time.Date(2026, 12, 31, 0, 0, 0, 0, berlin),
			func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }),
		series("db", "h2", "h2 ",
			time.Date(2025, 1, 1, 12, 0, 0, 0, berlin), time.Date(2026, 12, 1, 12, 0, 0, 0, berlin),
			func(t time.Time) time.Time { return t.AddDate(0, 1, 0) })...)
	// Berlin's clocks go back at 03:00 CEST on 2026-10-25: hourly from
	// 23:00 CEST the day before to midnight after, the 25-hour day has 25.
	fallBack := series("db", "h1", "", at("2026-10-24T21:00:00Z"), at("2026-10-25T23:00:00Z"),
		func(t time.Time) time.Time { return t.Add(time.Hour) })
	for i := range fallBack {
		fallBack[i].ID = fallBack[i].Time.UTC().Format("15:04Z Jan 2")
	}

	tests := []struct {
		name   string
		loc    *time.Location
		policy Policy
		snaps  []Snapshot
		// want maps the ID of every kept snapshot to its reasons; every
		// other snapshot must be forgotten.
		want map[string][]string
		// groups, if set, is the expected "source/host" order.
		groups     []string
		forgetsAll bool
	}{
		{
			name:   "three years of nightly snapshots",
			loc:    berlin,
			policy: Policy{Last: 2, Daily: 7, Weekly: 5, Monthly: 13, Yearly: Unlimited},
			snaps:  shuffled(daily0030),
			want: map[string][]string{
				"2026-12-31": {"last 1", "daily 2026-12-31", "weekly 2026-W53", "monthly 2026-12", "yearly 2026"},
				"2026-12-30": {"last 2", "daily 2026-12-30"},
				"2026-12-29": {"daily 2026-12-29"},
				"2026-12-28": {"daily 2026-12-28"},
				"2026-12-27": {"daily 2026-12-27", "weekly 2026-W52"},
				"2026-12-26": {"daily 2026-12-26"},
				"2026-12-25": {"daily 2026-12-25"},
				"2026-12-20": {"weekly 2026-W51"},
				"2026-12-13": {"weekly 2026-W50"},
				"2026-12-06": {"weekly 2026-W49"},
				"2026-11-30": {"monthly 2026-11"},
				"2026-10-31": {"monthly 2026-10"},
				"2026-09-30": {"monthly 2026-09"},
				"2026-08-31": {"monthly 2026-08"},
				"2026-07-31": {"monthly 2026-07"},
				"2026-06-30": {"monthly 2026-06"},
				"2026-05-31": {"monthly 2026-05"},
				"2026-04-30": {"monthly 2026-04"},
				"2026-03-31": {"monthly 2026-03"},
				"2026-02-28": {"monthly 2026-02"},
				"2026-01-31": {"monthly 2026-01"},
				"2025-12-31": {"monthly 2025-12", "yearly 2025"},
				"2024-12-31": {"yearly 2024"},
			},
		},
		{
			// 00:30 in Berlin is the evening before in UTC, so the same
			// snapshots fall into other buckets in UTC.
			name:   "buckets follow the time zone: Berlin",
			loc:    berlin,
			policy: Policy{Daily: 2, Monthly: 2, Yearly: 2},
			snaps:  daily0030,
			want: map[string][]string{
				"2026-12-31": {"daily 2026-12-31", "monthly 2026-12", "yearly 2026"},
				"2026-12-30": {"daily 2026-12-30"},
				"2026-11-30": {"monthly 2026-11"},
				"2025-12-31": {"yearly 2025"},
			},
		},
		{
			name:   "buckets follow the time zone: UTC",
			loc:    time.UTC,
			policy: Policy{Daily: 2, Monthly: 2, Yearly: 2},
			snaps:  daily0030,
			want: map[string][]string{
				"2026-12-31": {"daily 2026-12-30", "monthly 2026-12", "yearly 2026"},
				"2026-12-30": {"daily 2026-12-29"},
				"2026-12-01": {"monthly 2026-11"},
				"2026-01-01": {"yearly 2025"},
			},
		},
		{
			name:   "weekly and monthly snapshots from two hosts over three years",
			loc:    berlin,
			policy: Policy{Weekly: 2, Monthly: 3, Yearly: 2},
			snaps:  shuffled(twoHosts),
			groups: []string{"db/h1", "db/h2"},
			want: map[string][]string{
				"h1 2026-12-27": {"weekly 2026-W52", "monthly 2026-12", "yearly 2026"},
				"h1 2026-12-20": {"weekly 2026-W51"},
				"h1 2026-11-29": {"monthly 2026-11"},
				"h1 2026-10-25": {"monthly 2026-10"},
				"h1 2025-12-28": {"yearly 2025"},
				"h2 2026-12-01": {"weekly 2026-W49", "monthly 2026-12", "yearly 2026"},
				"h2 2026-11-01": {"weekly 2026-W44", "monthly 2026-11"},
				"h2 2026-10-01": {"monthly 2026-10"},
				"h2 2025-12-01": {"yearly 2025"},
			},
		},
		{
			name:   "month ends and leap days",
			loc:    berlin,
			policy: Policy{Daily: 3, Monthly: Unlimited},
			snaps: shuffled([]Snapshot{
				snap("2024-02-28", "2024-02-28T12:00:00+01:00"),
				snap("2024-02-29", "2024-02-29T23:59:59+01:00"),
				snap("2024-03-01", "2024-03-01T00:00:00+01:00"),
				snap("2024-03-31", "2024-03-31T23:00:00+02:00"),
				snap("2024-04-01", "2024-04-01T00:30:00+02:00"),
				snap("2025-02-28", "2025-02-28T23:30:00+01:00"),
				// 23:30 UTC on the 28th is 00:30 on 1 March in Berlin.
				snap("2025-03-01 (UTC 02-28)", "2025-02-28T23:30:00Z"),
				snap("2026-01-31", "2026-01-31T23:30:00+01:00"),
				snap("2026-02-01", "2026-02-01T00:10:00+01:00"),
				snap("2027-02-28", "2027-02-28T10:00:00+01:00"),
				snap("2028-01-31", "2028-01-31T23:30:00+01:00"),
				snap("2028-02-28", "2028-02-28T10:00:00+01:00"),
				snap("2028-02-29", "2028-02-29T10:00:00+01:00"),
				snap("2028-03-01", "2028-03-01T10:00:00+01:00"),
			}),
			want: map[string][]string{
				"2028-03-01":             {"daily 2028-03-01", "monthly 2028-03"},
				"2028-02-29":             {"daily 2028-02-29", "monthly 2028-02"},
				"2028-02-28":             {"daily 2028-02-28"},
				"2028-01-31":             {"monthly 2028-01"},
				"2027-02-28":             {"monthly 2027-02"},
				"2026-02-01":             {"monthly 2026-02"},
				"2026-01-31":             {"monthly 2026-01"},
				"2025-03-01 (UTC 02-28)": {"monthly 2025-03"},
				"2025-02-28":             {"monthly 2025-02"},
				"2024-04-01":             {"monthly 2024-04"},
				"2024-03-31":             {"monthly 2024-03"},
				"2024-02-29":             {"monthly 2024-02"},
			},
		},
		{
			name:   "ISO weeks across year ends",
			loc:    time.UTC,
			policy: Policy{Weekly: Unlimited, Yearly: Unlimited},
			snaps: shuffled([]Snapshot{
				snap("2020-12-31 Thu", "2020-12-31T12:00:00Z"),
				snap("2021-01-03 Sun", "2021-01-03T12:00:00Z"),
				snap("2021-01-04 Mon", "2021-01-04T12:00:00Z"),
				snap("2024-12-30 Mon", "2024-12-30T12:00:00Z"),
				snap("2025-12-28 Sun", "2025-12-28T12:00:00Z"),
				snap("2025-12-29 Mon", "2025-12-29T12:00:00Z"),
				snap("2026-12-28 Mon", "2026-12-28T12:00:00Z"),
				snap("2026-12-31 Thu", "2026-12-31T12:00:00Z"),
				snap("2027-01-01 Fri", "2027-01-01T12:00:00Z"),
				snap("2027-01-03 Sun", "2027-01-03T12:00:00Z"),
				snap("2027-01-04 Mon", "2027-01-04T12:00:00Z"),
			}),
			want: map[string][]string{
				"2027-01-04 Mon": {"weekly 2027-W01", "yearly 2027"},
				"2027-01-03 Sun": {"weekly 2026-W53"},
				"2026-12-31 Thu": {"yearly 2026"},
				"2025-12-29 Mon": {"weekly 2026-W01", "yearly 2025"},
				"2025-12-28 Sun": {"weekly 2025-W52"},
				"2024-12-30 Mon": {"weekly 2025-W01", "yearly 2024"},
				"2021-01-04 Mon": {"weekly 2021-W01", "yearly 2021"},
				"2021-01-03 Sun": {"weekly 2020-W53"},
				"2020-12-31 Thu": {"yearly 2020"},
			},
		},
		{
			// 02:00 CET becomes 03:00 CEST: 01:30 and 03:30 are an hour apart.
			name:   "Berlin spring forward",
			loc:    berlin,
			policy: Policy{Hourly: 3, Daily: 2},
			snaps: []Snapshot{
				snap("28th 23:30", "2026-03-28T23:30:00+01:00"),
				snap("00:30", "2026-03-29T00:30:00+01:00"),
				snap("01:30", "2026-03-29T01:30:00+01:00"),
				snap("03:30", "2026-03-29T03:30:00+02:00"),
			},
			want: map[string][]string{
				"03:30":      {"hourly 2026-03-29 03:00", "daily 2026-03-29"},
				"01:30":      {"hourly 2026-03-29 01:00"},
				"00:30":      {"hourly 2026-03-29 00:00"},
				"28th 23:30": {"daily 2026-03-28"},
			},
		},
		{
			name:   "Berlin fall back: the 25-hour day is one day",
			loc:    berlin,
			policy: Policy{Daily: Unlimited},
			snaps:  fallBack,
			want: map[string][]string{
				"23:00Z Oct 25": {"daily 2026-10-26"},
				"22:00Z Oct 25": {"daily 2026-10-25"},
				"21:00Z Oct 24": {"daily 2026-10-24"},
			},
		},
		{
			name:   "Berlin fall back: the repeated 02:00 hour is one hour",
			loc:    berlin,
			policy: Policy{Hourly: Unlimited},
			snaps: []Snapshot{
				snap("01:30 CEST", "2026-10-25T01:30:00+02:00"),
				snap("02:30 CEST", "2026-10-25T02:30:00+02:00"),
				snap("02:30 CET", "2026-10-25T02:30:00+01:00"),
				snap("03:30 CET", "2026-10-25T03:30:00+01:00"),
			},
			want: map[string][]string{
				"03:30 CET":  {"hourly 2026-10-25 03:00"},
				"02:30 CET":  {"hourly 2026-10-25 02:00"},
				"01:30 CEST": {"hourly 2026-10-25 01:00"},
			},
		},
		{
			name:   "New York fall back: two snapshots at 01:30",
			loc:    newYork,
			policy: Policy{Last: 1, Hourly: 3, Daily: 2},
			snaps: shuffled([]Snapshot{
				snap("31st 23:30 EDT", "2026-10-31T23:30:00-04:00"),
				snap("00:30 EDT", "2026-11-01T00:30:00-04:00"),
				snap("01:30 EDT", "2026-11-01T01:30:00-04:00"),
				snap("01:30 EST", "2026-11-01T01:30:00-05:00"),
				snap("02:30 EST", "2026-11-01T02:30:00-05:00"),
			}),
			want: map[string][]string{
				"02:30 EST":      {"last 1", "hourly 2026-11-01 02:00", "daily 2026-11-01"},
				"01:30 EST":      {"hourly 2026-11-01 01:00"},
				"00:30 EDT":      {"hourly 2026-11-01 00:00"},
				"31st 23:30 EDT": {"daily 2026-10-31"},
			},
		},
		{
			// Within counts elapsed time: 01:30 EST and 03:30 EDT are one
			// hour apart, so "within 1h" does not reach 01:30.
			name:   "New York spring forward",
			loc:    newYork,
			policy: Policy{Hourly: 2, Within: time.Hour},
			snaps: []Snapshot{
				snap("00:00 EST", "2026-03-08T00:00:00-05:00"),
				snap("01:30 EST", "2026-03-08T01:30:00-05:00"),
				snap("03:30 EDT", "2026-03-08T03:30:00-04:00"),
			},
			want: map[string][]string{
				"03:30 EDT": {"hourly 2026-03-08 03:00", "within 1h"},
				"01:30 EST": {"hourly 2026-03-08 01:00"},
			},
		},
		{
			name:   "sources and hosts interleaved",
			loc:    time.UTC,
			policy: Policy{Last: 2},
			snaps: []Snapshot{
				on("db", "h1", snap("d1b", "2026-05-02T10:00:00Z")),
				on("files", "h1", snap("f1a", "2026-05-02T12:00:00Z")),
				on("db", "h2", snap("d2a", "2026-05-01T11:00:00Z")),
				on("db", "h1", snap("d1a", "2026-05-01T10:00:00Z")),
				on("files", "h1", snap("f1c", "2026-04-30T00:00:00Z")),
				on("app", "h9", snap("a1", "2026-01-01T00:00:00Z")),
				on("db", "h2", snap("d2b", "2026-05-03T09:00:00Z")),
				on("files", "h1", snap("f1b", "2026-05-02T13:00:00Z")),
				on("db", "h1", snap("d1c", "2026-05-03T10:00:00Z")),
			},
			groups: []string{"app/h9", "db/h1", "db/h2", "files/h1"},
			want: map[string][]string{
				"a1":  {"last 1"},
				"d1c": {"last 1"},
				"d1b": {"last 2"},
				"d2b": {"last 1"},
				"d2a": {"last 2"},
				"f1b": {"last 1"},
				"f1a": {"last 2"},
			},
		},
		{
			name:   "within is measured from each group's newest snapshot",
			loc:    time.UTC,
			policy: Policy{Within: 48 * time.Hour},
			snaps: []Snapshot{
				on("old", "h1", snap("o1", "2020-01-01T00:00:00Z")),
				on("old", "h1", snap("o2", "2020-01-02T00:00:00Z")),
				on("old", "h1", snap("o3", "2020-01-03T12:00:00Z")),
				on("new", "h1", snap("n1 (exactly 48h)", "2026-01-01T00:00:00Z")),
				on("new", "h1", snap("n2", "2026-01-01T00:00:01Z")),
				on("new", "h1", snap("n3", "2026-01-03T00:00:00Z")),
			},
			groups: []string{"new/h1", "old/h1"},
			want: map[string][]string{
				"o3": {"within 2d"},
				"o2": {"within 2d"},
				"n3": {"within 2d"},
				"n2": {"within 2d"},
			},
		},
		{
			name:   "tags",
			loc:    time.UTC,
			policy: Policy{Last: 1, Tags: []string{"nightly", "monthly"}},
			snaps: []Snapshot{
				snap("t1", "2026-01-01T00:00:00Z", "nightly"),
				snap("t2", "2026-01-02T00:00:00Z", "monthly", "nightly"),
				snap("t3", "2026-01-03T00:00:00Z"),
				snap("t4", "2026-01-04T00:00:00Z", "other"),
			},
			want: map[string][]string{
				"t4": {"last 1"},
				"t2": {"tag nightly", "tag monthly"},
				"t1": {"tag nightly"},
			},
		},
		{
			name:   "tags only: the untagged newest is kept anyway",
			loc:    time.UTC,
			policy: Policy{Tags: []string{"keep"}},
			snaps: []Snapshot{
				snap("a", "2026-01-01T00:00:00Z", "keep"),
				snap("b", "2026-01-02T00:00:00Z"),
			},
			want: map[string][]string{"b": {"newest"}, "a": {"tag keep"}},
		},
		{
			name:   "tags only, allow empty: the untagged newest goes",
			loc:    time.UTC,
			policy: Policy{Tags: []string{"keep"}, AllowEmpty: true},
			snaps: []Snapshot{
				snap("a", "2026-01-01T00:00:00Z", "keep"),
				snap("b", "2026-01-02T00:00:00Z"),
			},
			want: map[string][]string{"a": {"tag keep"}},
		},
		{
			name:   "no rule matches: the newest is kept but the group forgets all",
			loc:    time.UTC,
			policy: Policy{Tags: []string{"keep"}},
			snaps: []Snapshot{
				snap("a", "2026-01-01T00:00:00Z"),
				snap("b", "2026-01-02T00:00:00Z"),
			},
			want:       map[string][]string{"b": {"newest"}},
			forgetsAll: true,
		},
		{
			name:   "no rule matches, allow empty: everything goes",
			loc:    time.UTC,
			policy: Policy{Tags: []string{"keep"}, AllowEmpty: true},
			snaps: []Snapshot{
				snap("a", "2026-01-01T00:00:00Z"),
				snap("b", "2026-01-02T00:00:00Z"),
			},
			want:       map[string][]string{},
			forgetsAll: true,
		},
		{
			name:   "equal times are ordered by ID",
			loc:    time.UTC,
			policy: Policy{Last: 1, Daily: Unlimited},
			snaps: []Snapshot{
				snap("c", "2026-01-01T00:00:00Z"),
				snap("b", "2026-01-01T00:00:00Z"),
				snap("z", "2025-12-31T23:59:59Z"),
				snap("a", "2026-01-01T00:00:00Z"),
			},
			want: map[string][]string{
				"a": {"last 1", "daily 2026-01-01"},
				"z": {"daily 2025-12-31"},
			},
		},
		{
			name:   "keep every last",
			loc:    nil,
			policy: Policy{Last: Unlimited},
			snaps: []Snapshot{
				snap("x", "2026-01-01T00:00:00Z"),
				snap("y", "2026-01-02T00:00:00Z"),
				snap("z", "2026-01-03T00:00:00Z"),
			},
			want: map[string][]string{"z": {"last 1"}, "y": {"last 2"}, "x": {"last 3"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			groups := Apply(tc.snaps, tc.policy, tc.loc)
			checkDecisions(t, groups, tc.want)
			if tc.groups != nil {
				var got []string
				for _, g := range groups {
					got = append(got, g.Source+"/"+g.Host)
				}
				if !slices.Equal(got, tc.groups) {
					t.Errorf("groups %q, want %q", got, tc.groups)
				}
			}
			for _, g := range groups {
				if g.ForgetsAll() != tc.forgetsAll {
					t.Errorf("group %s/%s: ForgetsAll() = %v, want %v", g.Source, g.Host, !tc.forgetsAll, tc.forgetsAll)
				}
			}
		})
	}
}

// checkDecisions checks that exactly the snapshots in want are kept, for
// exactly the reasons given, and that decisions are newest first.
func checkDecisions(t *testing.T, groups []Group, want map[string][]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, g := range groups {
		for i, d := range g.Decisions {
			id := d.Snapshot.ID
			seen[id] = true
			if i > 0 && d.Snapshot.Time.After(g.Decisions[i-1].Snapshot.Time) {
				t.Errorf("%s is listed after the older %s", id, g.Decisions[i-1].Snapshot.ID)
			}
			reasons, keep := want[id]
			switch {
			case keep && !d.Keep:
				t.Errorf("%s (%s) forgotten, want kept for %q", id, d.Snapshot.Time, reasons)
			case !keep && d.Keep:
				t.Errorf("%s (%s) kept for %q, want forgotten", id, d.Snapshot.Time, d.Reasons)
			case !slices.Equal(d.Reasons, reasons):
				t.Errorf("%s (%s) reasons %q, want %q", id, d.Snapshot.Time, d.Reasons, reasons)
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("want %s kept, but there is no such snapshot", id)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   []string // substrings of the error; nil means valid
	}{
		{"daily", Policy{Daily: 7}, nil},
		{"unlimited", Policy{Yearly: Unlimited}, nil},
		{"within", Policy{Within: time.Hour}, nil},
		{"tag", Policy{Tags: []string{"x"}}, nil},
		{"empty", Policy{}, []string{"nothing to keep", "--keep-*"}},
		{"allow empty is not a rule", Policy{AllowEmpty: true}, []string{"nothing to keep"}},
		{"negative last", Policy{Last: -2}, []string{"--keep-last -2"}},
		{"negative hourly", Policy{Hourly: -5, Daily: 3}, []string{"--keep-hourly -5"}},
		{"negative daily", Policy{Daily: -2}, []string{"--keep-daily -2", "-1 to keep every one"}},
		{"negative weekly", Policy{Weekly: -3}, []string{"--keep-weekly -3"}},
		{"negative monthly", Policy{Monthly: -10}, []string{"--keep-monthly -10"}},
		{"several", Policy{Yearly: -2, Monthly: -7}, []string{"--keep-yearly -2", "--keep-monthly -7"}},
		{"negative within", Policy{Within: -time.Hour}, []string{"--keep-within -1h"}},
		{"empty tag", Policy{Last: 1, Tags: []string{""}}, []string{`--keep-tag ""`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
	if err := (Policy{}).Validate(); !errors.Is(err, ErrEmptyPolicy) {
		t.Errorf("empty policy: %v, want ErrEmptyPolicy", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0 means an error
	}{
		{"30d", 30 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"36h", 36 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1w2d3h4m5s", (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second},
		{"1.5h", 90 * time.Minute},
		{"", 0},
		{"d", 0},
		{"30", 0},
		{"-1d", 0},
		{"1.5d", 0},
		{"1y", 0},
		{"3mo", 0},
		{"5x", 0},
		{"99999999999999d", 0},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("ParseDuration(%q) = %v, want an error", tc.in, got)
		case tc.want != 0 && (err != nil || got != tc.want):
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
		if tc.want != 0 {
			if back, err := ParseDuration(FormatDuration(tc.want)); err != nil || back != tc.want {
				t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tc.want, back, err)
			}
		}
	}
	for d, want := range map[time.Duration]string{
		30 * 24 * time.Hour:     "30d",
		36 * time.Hour:          "1d12h",
		90 * time.Minute:        "1h30m",
		time.Hour:               "1h",
		1500 * time.Millisecond: "1.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
