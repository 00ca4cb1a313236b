// Package retention decides which snapshots a forget policy keeps. It is
// pure logic: it reads no repository and deletes nothing.
//
// The semantics follow restic's forget. Snapshots are grouped by (source,
// host) and each group is judged on its own, walking its snapshots newest
// first:
//
//   - Last N keeps the N newest snapshots.
//   - Hourly, Daily, Weekly, Monthly and Yearly N keep the newest snapshot of
//     each of the N newest distinct calendar buckets (hours, days, ISO weeks,
//     months, years) that hold a snapshot. Buckets without a snapshot do not
//     count, so Daily 7 over a source backed up on weekdays only reaches back
//     more than a week.
//   - Within D keeps every snapshot strictly newer than the group's newest
//     snapshot minus D. It is measured from the newest snapshot, not from the
//     clock, so a source that stopped backing up keeps its last D of history
//     rather than losing it all once it is D old.
//   - Tags keeps every snapshot carrying at least one of the tags.
//
// A snapshot is kept if any rule keeps it, and its Decision lists every rule
// that did. Unless Policy.AllowEmpty is set, the newest snapshot of each
// group is always kept, with the reason "newest" if no rule kept it.
//
// Calendar buckets are computed in the time zone given to Apply (the
// repository's), from the local wall-clock date and time there. A day is
// therefore one calendar day even when daylight saving time makes it 23 or
// 25 hours long, and in the hour repeated when clocks go back both
// occurrences of, say, 01:30 fall into the single bucket "01:00" (the later
// one is kept by Hourly). Weeks are ISO 8601 weeks (Monday to Sunday, week 1
// holds the year's first Thursday), so 2027-01-01 is in week 2026-W53; years
// are calendar years.
package retention

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unlimited as a count keeps every bucket of that kind (every snapshot, for
// Last).
const Unlimited = -1

// ReasonNewest is the reason given for a group's newest snapshot when it is
// kept only because Apply never forgets it (see Policy.AllowEmpty).
const ReasonNewest = "newest"

// ErrEmptyPolicy is returned by Validate for a policy with no rule at all.
var ErrEmptyPolicy = errors.New("nothing to keep: give at least one --keep-* rule")

// Policy says which snapshots to keep. A count of 0 turns its rule off and
// Unlimited (-1) keeps every bucket of its kind.
type Policy struct {
	Last    int // --keep-last: the newest N snapshots
	Hourly  int // --keep-hourly: the newest snapshot of each of the newest N hours
	Daily   int // --keep-daily: … days
	Weekly  int // --keep-weekly: … ISO weeks
	Monthly int // --keep-monthly: … months
	Yearly  int // --keep-yearly: … years

	// Within (--keep-within) keeps every snapshot taken less than Within
	// before the newest snapshot of its group, in elapsed time: across a
	// DST change, 24h is not the same as one calendar day.
	Within time.Duration

	// Tags (--keep-tag) keeps every snapshot carrying any of these tags.
	Tags []string

	// AllowEmpty (--allow-empty) lets Apply forget a group's newest
	// snapshot too, when no rule keeps it. Without it the newest snapshot
	// is kept with ReasonNewest, so a policy can never empty a group.
	AllowEmpty bool
}

// counts lists the count rules with the flags that set them.
func (p Policy) counts() []struct {
	flag string
	n    int
} {
	return []struct {
		flag string
		n    int
	}{
		{"--keep-last", p.Last},
		{"--keep-hourly", p.Hourly},
		{"--keep-daily", p.Daily},
		{"--keep-weekly", p.Weekly},
		{"--keep-monthly", p.Monthly},
		{"--keep-yearly", p.Yearly},
	}
}

// Validate reports every malformed rule, naming its flag, or ErrEmptyPolicy
// if the policy has no rule. Apply does not validate.
func (p Policy) Validate() error {
	var errs []error
	empty := p.Within == 0 && len(p.Tags) == 0
	for _, c := range p.counts() {
		if c.n < Unlimited {
			errs = append(errs, fmt.Errorf("%s %d: give a count of 0 or more, or -1 to keep every one", c.flag, c.n))
		}
		if c.n != 0 {
			empty = false
		}
	}
	if p.Within < 0 {
		errs = append(errs, fmt.Errorf("--keep-within %s: give a positive duration, such as 30d", p.Within))
	}
	for _, t := range p.Tags {
		if t == "" {
			errs = append(errs, errors.New(`--keep-tag "": give a tag name`))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if empty {
		return ErrEmptyPolicy
	}
	return nil
}

// Snapshot is what the policy needs to know about a snapshot.
type Snapshot struct {
	ID     string
	Time   time.Time
	Source string
	Host   string
	Tags   []string
}

// Decision is the verdict on one snapshot.
type Decision struct {
	Snapshot Snapshot
	// Keep is true exactly when Reasons is not empty.
	Keep bool
	// Reasons lists every rule that keeps the snapshot, in the order
	// last, hourly, daily, weekly, monthly, yearly, within, tag, newest:
	// "last 2" (the second newest), "hourly 2026-11-01 01:00",
	// "daily 2026-11-20", "weekly 2026-W53", "monthly 2026-10",
	// "yearly 2026", "within 30d", "tag nightly", ReasonNewest.
	Reasons []string
}

// Group holds the decisions on the snapshots of one source and host.
type Group struct {
	Source, Host string
	// Decisions are newest first; snapshots taken at the same time are
	// ordered by ID, and the lower ID counts as the newer.
	Decisions []Decision
}

// ForgetsAll reports whether the policy's rules keep none of the group's
// snapshots: either everything is forgotten (Policy.AllowEmpty) or only the
// newest is kept, and only as ReasonNewest. The CLI refuses such a policy
// unless --allow-empty; the ReasonNewest guard protects callers that do not
// ask.
func (g Group) ForgetsAll() bool {
	for _, d := range g.Decisions {
		if d.Keep && !(len(d.Reasons) == 1 && d.Reasons[0] == ReasonNewest) {
			return false
		}
	}
	return true
}

// Apply groups snaps by source and host and decides, for each group, which
// snapshots p keeps. Groups are sorted by source, then host. Calendar
// buckets are computed in loc; nil means UTC. Apply expects a valid policy
// (see Validate) and treats any negative count as Unlimited.
func Apply(snaps []Snapshot, p Policy, loc *time.Location) []Group {
	if loc == nil {
		loc = time.UTC
	}
	type key struct{ source, host string }
	byKey := map[key][]Decision{}
	for _, s := range snaps {
		k := key{s.Source, s.Host}
		byKey[k] = append(byKey[k], Decision{Snapshot: s})
	}
	groups := make([]Group, 0, len(byKey))
	for k, ds := range byKey {
		slices.SortFunc(ds, func(a, b Decision) int {
			if c := b.Snapshot.Time.Compare(a.Snapshot.Time); c != 0 {
				return c
			}
			return strings.Compare(a.Snapshot.ID, b.Snapshot.ID)
		})
		decide(ds, p, loc)
		groups = append(groups, Group{Source: k.source, Host: k.host, Decisions: ds})
	}
	slices.SortFunc(groups, func(a, b Group) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Host, b.Host))
	})
	return groups
}

// calendar is a bucket rule: label names the bucket a local time falls in.
type calendar struct {
	name  string
	count int
	label func(t time.Time) string
}

// decide fills in the reasons of ds, one group sorted newest first.
func decide(ds []Decision, p Policy, loc *time.Location) {
	for i := range ds {
		if p.Last < 0 || i < p.Last {
			ds[i].Reasons = append(ds[i].Reasons, "last "+strconv.Itoa(i+1))
		}
	}
	for _, c := range []calendar{
		{"hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02 15:00") }},
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
	} {
		keepBuckets(ds, c, loc)
	}
	if p.Within > 0 && len(ds) > 0 {
		cutoff := ds[0].Snapshot.Time.Add(-p.Within)
		reason := "within " + FormatDuration(p.Within)
		for i := range ds {
			if ds[i].Snapshot.Time.After(cutoff) {
				ds[i].Reasons = append(ds[i].Reasons, reason)
			}
		}
	}
	for _, tag := range dedup(p.Tags) {
		for i := range ds {
			if slices.Contains(ds[i].Snapshot.Tags, tag) {
				ds[i].Reasons = append(ds[i].Reasons, "tag "+tag)
			}
		}
	}
	if !p.AllowEmpty && len(ds) > 0 && len(ds[0].Reasons) == 0 {
		ds[0].Reasons = []string{ReasonNewest}
	}
	for i := range ds {
		ds[i].Keep = len(ds[i].Reasons) > 0
	}
}

// keepBuckets keeps the newest snapshot of each of the c.count newest
// buckets. It remembers every bucket seen, not just the previous one, so a
// bucket counts once even where a time zone's clock jumps back across a
// bucket boundary.
func keepBuckets(ds []Decision, c calendar, loc *time.Location) {
	if c.count == 0 {
		return
	}
	seen := map[string]bool{}
	for i := range ds {
		if c.count > 0 && len(seen) == c.count {
			return
		}
		label := c.label(ds[i].Snapshot.Time.In(loc))
		if seen[label] {
			continue
		}
		seen[label] = true
		ds[i].Reasons = append(ds[i].Reasons, c.name+" "+label)
	}
}

func dedup(tags []string) []string {
	var out []string
	for _, t := range tags {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

const day = 24 * time.Hour

// ParseDuration parses a --keep-within value: a sequence of numbers with
// units, where the units are those of time.ParseDuration plus "d" (24 hours)
// and "w" (7 days), as in "30d", "2w", "1d12h". Days are 24 hours of elapsed
// time, not calendar days. Months and years are refused: they have no fixed
// length.
func ParseDuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("duration %q: %s; write it like 30d, 2w, 36h or 1d12h", s, why)
	}
	if s == "" {
		return bad("empty")
	}
	var total time.Duration
	for rest := s; rest != ""; {
		i := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return bad("expected a number")
		}
		j := strings.IndexFunc(rest[i:], func(r rune) bool { return r >= '0' && r <= '9' || r == '.' })
		if j < 0 {
			j = len(rest) - i
		}
		num, unit := rest[:i], rest[i:i+j]
		rest = rest[i+j:]
		var d time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseInt(num, 10, 64)
			size := day
			if unit == "w" {
				size = 7 * day
			}
			if err != nil || n > int64(time.Duration(1<<63-1)/size) {
				return bad("days and weeks must be whole numbers of a sane size")
			}
			d = time.Duration(n) * size
		case "y", "mo", "M":
			return bad("months and years have no fixed length; use days (365d)")
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return bad("unknown unit " + strconv.Quote(unit))
			}
		}
		if total > 1<<63-1-d {
			return bad("too long")
		}
		total += d
	}
	return total, nil
}

// FormatDuration writes d in the form ParseDuration reads, with days for
// whole 24 hours: 720h is "30d", 36h is "1d12h".
func FormatDuration(d time.Duration) string {
	if d <= 0 || d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		size time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.size
		}
	}
	return b.String()
}
