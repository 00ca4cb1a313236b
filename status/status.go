// Package status builds the one screen an operator opens on Monday: per
// source the newest snapshot and its age against the schedule, the last
// drill's verdict and RTO, what is stored and how it grows, the WAL
// archive's lag, and the audit log's head; and whether anything is
// overdue or failed. Everything is read with the writer key.
package status

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/schedule"
)

// Report is the status of a repository.
type Report struct {
	Time     time.Time `json:"time"`
	OK       bool      `json:"ok"`
	Problems []string  `json:"problems"`
	Sources  []Source  `json:"sources"`
	Audit    *Audit    `json:"audit,omitempty"`
	// Nights are the stored bytes and the RPO per day (UTC), oldest
	// first; Drills the RTO of each drill run: the plots of the HTML page.
	Nights []Night      `json:"nights"`
	Drills []DrillPoint `json:"drills"`
}

// Source is one source's status.
type Source struct {
	Source       string     `json:"source"`
	Snapshots    int        `json:"snapshots"`
	Newest       *Snapshot  `json:"newest,omitempty"`
	Schedule     string     `json:"schedule,omitempty"`
	Due          *time.Time `json:"due,omitempty"` // the scheduled run the newest snapshot must be from, or later
	Overdue      bool       `json:"overdue"`
	StoredBytes  int64      `json:"stored_bytes"`    // what its snapshots added when taken
	Stored7Days  int64      `json:"stored_7d_bytes"` // of which in the last 7 days
	LastDrill    *Drill     `json:"last_drill,omitempty"`
	WALAgeSecond *float64   `json:"wal_age_seconds,omitempty"` // physical sources: the newest archived WAL's age
	Problems     []string   `json:"problems"`
}

// Snapshot is a snapshot's identity and age.
type Snapshot struct {
	ID         string    `json:"snapshot"`
	Time       time.Time `json:"time"`
	AgeSeconds float64   `json:"age_seconds"`
}

// Drill is a drill run's verdict.
type Drill struct {
	ID         string    `json:"drill"`
	Time       time.Time `json:"time"`
	Passed     bool      `json:"passed"`
	RTOSeconds float64   `json:"rto_seconds"`
}

// Audit is the audit log's head.
type Audit struct {
	Records  int       `json:"records"`
	Newest   time.Time `json:"time"`
	Event    string    `json:"event"`
	Problems int       `json:"problems"`
}

// Night is one day's stored bytes and worst RPO (the longest gap between
// a snapshot and the one before it of the same source).
type Night struct {
	Day        string  `json:"day"` // 2006-01-02
	Stored     int64   `json:"stored_bytes"`
	RPOSeconds float64 `json:"rpo_seconds"`
}

// DrillPoint is one drill run's RTO.
type DrillPoint struct {
	Time       time.Time `json:"time"`
	Source     string    `json:"source"`
	RTOSeconds float64   `json:"rto_seconds"`
	Passed     bool      `json:"passed"`
}

// Options say what is expected.
type Options struct {
	// Config, when set, gives the sources, their schedules and the drills.
	Config *config.Config
	// MaxAge is the oldest a source's newest snapshot may be when it has
	// no schedule (default 26 h); Grace is how long after its scheduled
	// time a backup may take to be saved (default 1 h).
	MaxAge, Grace time.Duration
	// MaxWALAge is the oldest the newest archived WAL file may be for a
	// physical source (default 15 min).
	MaxWALAge time.Duration
	Now       time.Time
	Days      int // days of history in Nights (default 30)
}

// Build reads the repository.
func Build(ctx context.Context, repo *repository.Repo, opts Options) (*Report, error) {
	if opts.MaxAge == 0 {
		opts.MaxAge = 26 * time.Hour
	}
	if opts.Grace == 0 {
		opts.Grace = time.Hour
	}
	if opts.MaxWALAge == 0 {
		opts.MaxWALAge = 15 * time.Minute
	}
	if opts.Days == 0 {
		opts.Days = 30
	}
	snaps, err := repo.Snapshots(ctx)
	var damaged *repository.DamagedError
	if err != nil && !errors.As(err, &damaged) {
		return nil, err
	}
	drills, err := drill.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	rep := &Report{Time: opts.Now.UTC(), Problems: []string{}}
	if damaged != nil {
		for _, e := range damaged.Errs {
			rep.Problems = append(rep.Problems, e.Error())
		}
	}
	by := map[string]*Source{}
	source := func(name string) *Source {
		if by[name] == nil {
			by[name] = &Source{Source: name, Problems: []string{}}
		}
		return by[name]
	}
	if opts.Config != nil {
		for _, s := range opts.Config.Sources {
			source(s.Name)
		}
	}
	for _, s := range snaps {
		src := source(s.Source)
		src.Snapshots++
		src.StoredBytes += s.Stored
		if opts.Now.Sub(s.Time) <= 7*24*time.Hour {
			src.Stored7Days += s.Stored
		}
		if src.Newest == nil || s.Time.After(src.Newest.Time) {
			src.Newest = &Snapshot{ID: s.ID().String(), Time: s.Time.UTC(), AgeSeconds: opts.Now.Sub(s.Time).Seconds()}
		}
	}
	if err := expect(opts, by); err != nil {
		return nil, err
	}
	lastDrills(rep, drills, by)
	if err := walLag(ctx, repo, opts, by); err != nil {
		return nil, err
	}
	rep.Audit = auditHead(ctx, repo)
	rep.Nights = nights(snaps, opts)
	for _, name := range sortedKeys(by) {
		s := by[name]
		rep.Sources = append(rep.Sources, *s)
		for _, p := range s.Problems {
			rep.Problems = append(rep.Problems, fmt.Sprintf("source %s: %s", name, p))
		}
	}
	if rep.Audit != nil && rep.Audit.Problems > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the audit log has %d problems: run coffer audit verify", rep.Audit.Problems))
	}
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}

// expect judges each source's newest snapshot against its schedule (from
// the config) or, for a source the config does not name (or without a
// config), MaxAge. A configured source without a schedule is backed up by
// hand and never overdue.
func expect(opts Options, by map[string]*Source) error {
	schedules := map[string]string{}
	var loc *time.Location
	if c := opts.Config; c != nil {
		loc = c.Repository.Location
		for _, s := range c.Sources {
			schedules[s.Name] = s.Schedule
		}
	}
	for _, name := range sortedKeys(by) {
		s := by[name]
		due := opts.Now.Add(-opts.MaxAge)
		rule := fmt.Sprintf("more than %s old (--max-age)", opts.MaxAge)
		if spec, known := schedules[name]; known {
			if spec == "" {
				continue
			}
			s.Schedule = spec
			prev, err := schedule.Previous(spec, loc, opts.Now.Add(-opts.Grace))
			if err != nil {
				return fmt.Errorf("source %s: %w", name, err)
			}
			if prev.IsZero() {
				continue // nothing was due yet
			}
			due = prev
			rule = fmt.Sprintf("from before the run %q due at %s", spec, prev.UTC().Format(time.RFC3339))
		}
		d := due.UTC()
		s.Due = &d
		switch {
		case s.Newest == nil:
			s.Overdue = true
			s.Problems = append(s.Problems, "no snapshot yet")
		case s.Newest.Time.Before(due):
			s.Overdue = true
			s.Problems = append(s.Problems, fmt.Sprintf("overdue: the newest snapshot (%s, %s) is %s",
				s.Newest.ID[:8], s.Newest.Time.Format(time.RFC3339), rule))
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
