package status

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/repository"
)

// lastDrills records each source's last drill run, and every run's RTO.
// A failed last drill is a problem.
func lastDrills(rep *Report, drills []*drill.Stored, by map[string]*Source) {
	rep.Drills = []DrillPoint{}
	for i := len(drills) - 1; i >= 0; i-- { // oldest first
		d := drills[i]
		for _, r := range d.Runs {
			rep.Drills = append(rep.Drills, DrillPoint{Time: d.Started.UTC(), Source: r.Source, RTOSeconds: r.RTO.Seconds(), Passed: r.Passed})
			s := by[r.Source]
			if s == nil {
				continue
			}
			s.LastDrill = &Drill{ID: d.ID, Time: d.Started.UTC(), Passed: r.Passed, RTOSeconds: r.RTO.Seconds()}
		}
	}
	for _, s := range by {
		if s.LastDrill != nil && !s.LastDrill.Passed {
			s.Problems = append(s.Problems, fmt.Sprintf("the last drill (%s, %s) failed: coffer drills --full shows why",
				s.LastDrill.ID, s.LastDrill.Time.Format(time.RFC3339)))
		}
	}
}

// walLag reads the WAL archive's newest object for the physical sources.
// The archive is the repository's, not a source's: every physical source
// shows it.
func walLag(ctx context.Context, repo *repository.Repo, opts Options, by map[string]*Source) error {
	var physical []string
	if c := opts.Config; c != nil {
		for _, s := range c.Sources {
			if s.Physical {
				physical = append(physical, s.Name)
			}
		}
	}
	if len(physical) == 0 {
		return nil
	}
	wal, err := repo.SummarizeWAL(ctx)
	if err != nil {
		return err
	}
	for _, name := range physical {
		s := by[name]
		if wal.Files == 0 {
			s.Problems = append(s.Problems, "no WAL archived: is archive_command set to coffer wal-push?")
			continue
		}
		age := opts.Now.Sub(wal.Newest).Seconds()
		s.WALAgeSecond = &age
		if age > opts.MaxWALAge.Seconds() {
			s.Problems = append(s.Problems, fmt.Sprintf("the newest archived WAL is %s old (more than %s): point-in-time recovery would lose that much",
				(time.Duration(age)*time.Second).Round(time.Second), opts.MaxWALAge))
		}
	}
	return nil
}

// auditHead is the newest audit record, when the log can be read.
func auditHead(ctx context.Context, repo *repository.Repo) *Audit {
	recs, problems, err := repo.AuditLog(ctx)
	if err != nil || len(recs) == 0 {
		return nil
	}
	a := &Audit{Records: len(recs), Problems: len(problems)}
	for _, r := range recs {
		if r.Time.After(a.Newest) {
			a.Newest, a.Event = r.Time.UTC(), r.Event
		}
	}
	return a
}

// nights adds up the stored bytes per day and the worst RPO (the longest
// gap between two snapshots of a source ending that day), for the last
// opts.Days days.
func nights(snaps []*repository.Snapshot, opts Options) []Night {
	first := opts.Now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -opts.Days+1)
	days := map[string]*Night{}
	var out []Night
	for d := first; !d.After(opts.Now); d = d.AddDate(0, 0, 1) {
		out = append(out, Night{Day: d.Format(time.DateOnly)})
	}
	for i := range out {
		days[out[i].Day] = &out[i]
	}
	sorted := append([]*repository.Snapshot(nil), snaps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	prev := map[string]time.Time{}
	for _, s := range sorted {
		n := days[s.Time.UTC().Format(time.DateOnly)]
		if p, ok := prev[s.Source]; ok && n != nil {
			n.RPOSeconds = max(n.RPOSeconds, s.Time.Sub(p).Seconds())
		}
		prev[s.Source] = s.Time
		if n != nil {
			n.Stored += s.Stored
		}
	}
	return out
}
