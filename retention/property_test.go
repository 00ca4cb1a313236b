package retention

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// randomCase draws a snapshot set and a policy. Times are whole minutes in
// spans from hours to years, with repeated times, so that ties, DST
// transitions and year ends all occur.
func randomCase(r *rand.Rand, locs []*time.Location) ([]Snapshot, Policy, *time.Location) {
	spans := []time.Duration{3 * time.Hour, 3 * 24 * time.Hour, 60 * 24 * time.Hour, 3 * 365 * 24 * time.Hour}
	span := spans[r.IntN(len(spans))]
	base := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(5 * 365 * 24 * time.Hour))))
	tags := []string{"a", "b", "c"}
	var snaps []Snapshot
	for i := range r.IntN(40) {
		s := Snapshot{
			ID:     fmt.Sprintf("s%03d", i),
			Source: []string{"db", "files"}[r.IntN(2)],
			Host:   []string{"h1", "h2"}[r.IntN(2)],
			Time:   base.Add(time.Duration(r.Int64N(int64(span))).Truncate(time.Minute)),
		}
		if i > 0 && r.IntN(10) == 0 {
			s.Time = snaps[r.IntN(i)].Time
		}
		for _, t := range tags {
			if r.IntN(4) == 0 {
				s.Tags = append(s.Tags, t)
			}
		}
		snaps = append(snaps, s)
	}
	count := func() int { return []int{Unlimited, 0, 0, 0, 1, 2, 3, 7}[r.IntN(8)] }
	p := Policy{
		Last: count(), Hourly: count(), Daily: count(), Weekly: count(), Monthly: count(), Yearly: count(),
		Within:     []time.Duration{0, 0, 0, time.Hour, 36 * time.Hour, 30 * 24 * time.Hour}[r.IntN(6)],
		AllowEmpty: r.IntN(3) == 0,
	}
	for _, t := range tags {
		if r.IntN(5) == 0 {
			p.Tags = append(p.Tags, t)
		}
	}
	return snaps, p, locs[r.IntN(len(locs))]
}

// TestProperties checks, over thousands of random snapshot sets and
// policies, what must hold whatever the rules are.
func TestProperties(t *testing.T) {
	var locs []*time.Location
	for _, name := range []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"} {
		locs = append(locs, zone(t, name))
	}
	r := rand.New(rand.NewPCG(20261101, 5))
	for i := range 5000 {
		snaps, p, loc := randomCase(r, locs)
		groups := Apply(snaps, p, loc)
		if t.Failed() {
			break
		}
		desc := fmt.Sprintf("case %d: policy %+v in %s", i, p, loc)
		checkProperties(t, desc, snaps, p, loc, groups)

		if again := Apply(shuffled(snaps), p, loc); !reflect.DeepEqual(again, groups) {
			t.Errorf("%s: the input order changed the result", desc)
		}

		// Idempotence holds exactly for these rules: the kept set is a
		// fixed point, and every snapshot keeps the same reasons. For a
		// bucket rule, the newest snapshot of each of its N newest
		// buckets is in the kept set, and the kept set has no bucket the
		// original lacked, so the same N buckets and the same
		// representatives come first again; Last, Within (same newest)
		// and Tags are unaffected by dropping older snapshots.
		var kept []Snapshot
		want := map[string][]string{}
		for _, g := range groups {
			for _, d := range g.Decisions {
				if d.Keep {
					kept = append(kept, d.Snapshot)
					want[d.Snapshot.ID] = d.Reasons
				}
			}
		}
		for _, g := range Apply(kept, p, loc) {
			for _, d := range g.Decisions {
				if !slices.Equal(d.Reasons, want[d.Snapshot.ID]) {
					t.Errorf("%s: applied again, %s has reasons %q, first %q", desc, d.Snapshot.ID, d.Reasons, want[d.Snapshot.ID])
				}
			}
		}

		// Keeping more of anything never forgets a snapshot kept before.
		more := p
		for _, n := range []*int{&more.Last, &more.Hourly, &more.Daily, &more.Weekly, &more.Monthly, &more.Yearly} {
			if *n >= 0 {
				*n++
			}
		}
		more.Within += time.Hour
		for _, g := range Apply(snaps, more, loc) {
			for _, d := range g.Decisions {
				if _, was := want[d.Snapshot.ID]; was && !d.Keep {
					t.Errorf("%s: with %+v, %s is forgotten", desc, more, d.Snapshot.ID)
				}
			}
		}
	}
}

func checkProperties(t *testing.T, desc string, snaps []Snapshot, p Policy, loc *time.Location, groups []Group) {
	t.Helper()
	n := 0
	for gi, g := range groups {
		if gi > 0 {
			prev := groups[gi-1]
			if prev.Source > g.Source || prev.Source == g.Source && prev.Host >= g.Host {
				t.Errorf("%s: group %s/%s listed after %s/%s", desc, g.Source, g.Host, prev.Source, prev.Host)
			}
		}
		if len(g.Decisions) == 0 {
			t.Errorf("%s: group %s/%s is empty", desc, g.Source, g.Host)
			continue
		}
		n += len(g.Decisions)
		onlyGuard := true
		for i, d := range g.Decisions {
			if d.Snapshot.Source != g.Source || d.Snapshot.Host != g.Host {
				t.Errorf("%s: %s of %s/%s is in group %s/%s", desc, d.Snapshot.ID, d.Snapshot.Source, d.Snapshot.Host, g.Source, g.Host)
			}
			if i > 0 {
				a, b := g.Decisions[i-1].Snapshot, d.Snapshot
				if a.Time.Before(b.Time) || a.Time.Equal(b.Time) && a.ID > b.ID {
					t.Errorf("%s: %s listed before %s", desc, a.ID, b.ID)
				}
			}
			if d.Keep != (len(d.Reasons) > 0) {
				t.Errorf("%s: %s has Keep %v and reasons %q", desc, d.Snapshot.ID, d.Keep, d.Reasons)
			}
			if slices.Contains(d.Reasons, ReasonNewest) && (i > 0 || len(d.Reasons) > 1) {
				t.Errorf("%s: %s has reasons %q", desc, d.Snapshot.ID, d.Reasons)
			}
			if d.Keep && !guardOnly(d) {
				onlyGuard = false
			}
		}
		if g.ForgetsAll() != onlyGuard {
			t.Errorf("%s: group %s/%s: ForgetsAll() = %v", desc, g.Source, g.Host, !onlyGuard)
		}
		newest := g.Decisions[0]
		if !p.AllowEmpty && !newest.Keep {
			t.Errorf("%s: group %s/%s loses its newest snapshot %s", desc, g.Source, g.Host, newest.Snapshot.ID)
		}
		// Only Tags can miss the newest snapshot: every other rule starts
		// with it.
		ruled := p.Last != 0 || p.Hourly != 0 || p.Daily != 0 || p.Weekly != 0 || p.Monthly != 0 || p.Yearly != 0 || p.Within > 0
		if ruled && (guardOnly(newest) || !newest.Keep) {
			t.Errorf("%s: no rule keeps newest %s: %q", desc, newest.Snapshot.ID, newest.Reasons)
		}
		checkBuckets(t, desc, g, p, loc)
	}
	if n != len(snaps) {
		t.Errorf("%s: %d decisions for %d snapshots", desc, n, len(snaps))
	}
}

// guardOnly reports whether d is kept only by the newest-snapshot guard.
func guardOnly(d Decision) bool { return slices.Equal(d.Reasons, []string{ReasonNewest}) }

// checkBuckets checks each bucket rule with count N: it keeps min(N,
// distinct buckets) snapshots, each the newest of its own bucket, and the
// buckets it keeps are newer than any it skips.
func checkBuckets(t *testing.T, desc string, g Group, p Policy, loc *time.Location) {
	t.Helper()
	for _, c := range []struct {
		name  string
		count int
	}{{"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		buckets := map[string]int{} // bucket → index of its newest snapshot
		var order []string          // buckets by their newest snapshot
		keptBy := map[string]int{}  // bucket → index of the snapshot kept for it
		for i, d := range g.Decisions {
			b := bucketOf(c.name, d.Snapshot.Time.In(loc))
			if _, ok := buckets[b]; !ok {
				buckets[b] = i
				order = append(order, b)
			}
			for _, r := range d.Reasons {
				if label, ok := strings.CutPrefix(r, c.name+" "); ok {
					if label != b {
						t.Errorf("%s: %s in bucket %s kept as %q", desc, d.Snapshot.ID, b, r)
					}
					if _, dup := keptBy[label]; dup {
						t.Errorf("%s: two snapshots kept for %s %s", desc, c.name, label)
					}
					keptBy[label] = i
				}
			}
		}
		want := len(order)
		if c.count >= 0 {
			want = min(c.count, want)
		}
		if len(keptBy) != want {
			t.Errorf("%s: %s keeps %d buckets of %d, want %d", desc, c.name, len(keptBy), len(order), want)
		}
		for _, b := range order[:want] {
			if i, ok := keptBy[b]; !ok || i != buckets[b] {
				t.Errorf("%s: %s %s: kept snapshot %d, want its newest, %d", desc, c.name, b, i, buckets[b])
			}
		}
	}
}

// bucketOf names a bucket independently of the code under test.
func bucketOf(kind string, t time.Time) string {
	switch kind {
	case "hourly":
		return fmt.Sprintf("%04d-%02d-%02d %02d:00", t.Year(), t.Month(), t.Day(), t.Hour())
	case "daily":
		return fmt.Sprintf("%04d-%02d-%02d", t.Year(), t.Month(), t.Day())
	case "weekly":
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	case "monthly":
		return fmt.Sprintf("%04d-%02d", t.Year(), t.Month())
	default:
		return fmt.Sprintf("%04d", t.Year())
	}
}
