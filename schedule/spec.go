package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// spec is a parsed cron expression bound to a time zone, with coffer's rules
// for the days the zone changes its offset (see the package documentation).
type spec struct {
	loc  *time.Location
	cron *cron.SpecSchedule // in loc
	wall *cron.SpecSchedule // the same fields read as UTC wall-clock time
}

// parseSpec parses a standard 5-field cron expression or a descriptor such as
// @daily, to be read in loc.
func parseSpec(expr string, loc *time.Location) (*spec, error) {
	if loc == nil {
		loc = time.Local
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("cron spec %q names a time zone; set the job's time zone instead", expr)
	}
	if strings.HasPrefix(expr, "@every") {
		return nil, fmt.Errorf("cron spec %q: @every has no fixed times, so a missed run cannot be told; use a cron expression such as \"0 */6 * * *\"", expr)
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %w (want 5 fields \"minute hour day-of-month month day-of-week\", e.g. \"30 2 * * *\", or @daily, @weekly…)", expr, err)
	}
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("cron spec %q: unsupported schedule type %T", expr, s)
	}
	inLoc, wall := *ss, *ss
	inLoc.Location = loc
	wall.Location = time.UTC
	return &spec{loc: loc, cron: &inLoc, wall: &wall}, nil
}

// next returns the first scheduled time strictly after t, or the zero time if
// there is none within five years.
//
// robfig/cron skips a wall-clock time that a spring-forward transition
// swallows and fires twice for one that a fall-back transition repeats. next
// corrects both: a swallowed time fires at the transition instant, and a
// repeated time fires only at its first occurrence.
func (s *spec) next(t time.Time) time.Time {
	t = t.In(s.loc)
	for {
		n := s.cron.Next(t)
		if n.IsZero() {
			return n
		}
		if g := s.swallowed(t, n); !g.IsZero() {
			return g
		}
		if !s.repeated(n) {
			return n
		}
		t = n
	}
}

// swallowed returns the first zone transition in (t, n) that skips over a
// wall-clock time matching the spec, or the zero time.
func (s *spec) swallowed(t, n time.Time) time.Time {
	for c := t; ; {
		_, end := c.ZoneBounds()
		if end.IsZero() || !end.Before(n) {
			return time.Time{}
		}
		_, before := end.Add(-time.Nanosecond).Zone()
		_, after := end.Zone()
		if gap := time.Duration(after-before) * time.Second; gap > 0 {
			// Wall times in [wall(end)-gap, wall(end)) never happen.
			to := wallUTC(end)
			if m := s.wall.Next(to.Add(-gap - time.Second)); m.Before(to) {
				return end
			}
		}
		c = end
	}
}

// repeated reports whether n's wall-clock time already happened, earlier, in
// the zone offset in effect before a fall-back transition.
func (s *spec) repeated(n time.Time) bool {
	start, _ := n.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, off := n.Zone()
	_, prev := start.Add(-time.Nanosecond).Zone()
	overlap := time.Duration(prev-off) * time.Second
	return overlap > 0 && n.Before(start.Add(overlap))
}

// wallUTC returns t's wall-clock reading as a UTC time.
func wallUTC(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
}

// Previous returns the latest time at or before t at which expr, read in
// loc, schedules a run, looking back at most 32 days (zero if none).
func Previous(expr string, loc *time.Location, t time.Time) (time.Time, error) {
	s, err := parseSpec(expr, loc)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for n := s.next(t.Add(-32 * 24 * time.Hour)); !n.IsZero() && !n.After(t); n = s.next(n) {
		last = n
	}
	return last, nil
}
