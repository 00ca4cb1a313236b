// Package schedule is the scheduling core of coffer's daemon: it runs jobs at
// the times of their cron expressions, never two jobs on the same source at
// once, catches up a run missed while the daemon was down, retries failed
// runs with exponential backoff and adds optional jitter. Time comes from an
// injected Clock, so tests drive it with a FakeClock; the only I/O is the
// small state file behind a StateStore.
//
// # Cron expressions and daylight saving time
//
// A Job's Spec is a standard 5-field cron expression ("30 2 * * *") or a
// descriptor (@yearly, @monthly, @weekly, @daily, @midnight, @hourly), parsed
// by github.com/robfig/cron/v3 and read in the job's Location (time.Local if
// nil). @every is refused: it has no fixed times, so a missed run cannot be
// told.
//
// On the days a zone changes its offset, robfig/cron skips a time that does
// not exist (a daily 02:30 job in Europe/Berlin does not run at all on
// 2026-03-29, when clocks jump from 02:00 to 03:00) and runs twice at a time
// that occurs twice (02:30 CEST and 02:30 CET on 2026-10-25). A backup
// scheduler should do neither, so this package corrects both:
//
//   - A time swallowed by a spring-forward jump runs at the instant of the
//     jump: the 02:30 job runs at 03:00 CEST on 2026-03-29. An hourly job runs
//     at 01:00 CET and then at 03:00 CEST, once.
//   - A time that occurs twice runs at its first occurrence only: the 02:30
//     job runs at 02:30 CEST on 2026-10-25, not again at 02:30 CET. An hourly
//     job therefore runs at 02:00 CEST and next at 03:00 CET, two hours later.
//
// # Catch-up
//
// When Run starts, a job whose state records a last scheduled time, and that
// has had a scheduled time since then up to now, runs once at once — once,
// however many runs were missed — and then keeps its normal schedule. A job
// with no recorded run (new, or state file removed) does not catch up: it
// waits for its first scheduled time, so that adding a job to the
// configuration does not start it on the spot.
//
// # Shutdown
//
// When Run's context is cancelled, Run starts nothing more and waits for the
// running jobs to return. Their contexts are cancelled only if
// Options.CancelRunning is set: by default a running backup finishes, so a
// SIGTERM never leaves a partial snapshot behind. A run that is stopped by the
// cancellation, and a retry that was still waiting, do not advance the job's
// LastScheduled, so the next start catches them up.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// maxBackoff caps the delay before a retry.
const maxBackoff = 24 * time.Hour

// Job is one scheduled task.
type Job struct {
	// Name identifies the job in events and in the state file; unique.
	Name string
	// Source names what the job reads or locks: jobs on the same source
	// never overlap.
	Source string
	// Spec is a 5-field cron expression such as "30 2 * * *", or @daily etc.
	Spec string
	// Location is the time zone Spec is read in; nil means time.Local.
	Location *time.Location
	// Jitter delays each scheduled run by a random duration in [0, Jitter).
	// Retries and catch-up runs are not jittered.
	Jitter time.Duration
	// Retries is how many times a failed run is retried; the k-th retry
	// (k from 0) starts RetryBase·2^k after the failed attempt ended, at
	// most 24h later.
	Retries   int
	RetryBase time.Duration
	// Run does the work. It must return when its context is cancelled.
	Run func(ctx context.Context) error
}

// Options tune a Scheduler. The zero value is usable.
type Options struct {
	// Rand returns a number in [0, 1) to draw jitter; math/rand/v2 if nil.
	Rand func() float64
	// OnEvent, if set, is called for every Event, one at a time, from Run's
	// goroutine: it must not block for long.
	OnEvent func(Event)
	// CancelRunning cancels the context of running jobs when Run's context
	// is cancelled. By default they are left to finish.
	CancelRunning bool
}

// EventKind says what happened to a job.
type EventKind string

// The kinds of Event.
const (
	EventStarted   EventKind = "started"   // an attempt started
	EventSucceeded EventKind = "succeeded" // an attempt succeeded
	EventFailed    EventKind = "failed"    // a run failed, with no retry left
	EventRetrying  EventKind = "retrying"  // an attempt failed; a retry is set for RetryAt
	EventSkipped   EventKind = "skipped"   // a scheduled time was merged into a run already waiting
	EventStateSave EventKind = "state-save-failed"
)

// Event reports one thing that happened to a job, for logs and metrics.
type Event struct {
	Job       string
	Kind      EventKind
	At        time.Time     // when it happened
	Scheduled time.Time     // the scheduled time of the run
	Attempt   int           // 0 for the first attempt, k for the k-th retry
	Duration  time.Duration // of the attempt, for succeeded, failed and retrying
	RetryAt   time.Time     // for retrying
	Err       error         // for failed, retrying and state-save-failed
}

// Planned is the next scheduled time of a job.
type Planned struct {
	Job    string
	Source string
	At     time.Time
}

// Scheduler runs jobs on their schedules. Create one with New.
type Scheduler struct {
	clock   Clock
	store   StateStore
	opts    Options
	entries []*entry

	// Owned by Run's goroutine.
	state   map[string]JobState
	busy    map[string]bool // sources with a running job
	running int

	// idle, if set (by tests), is called each time Run is about to wait,
	// with the time it waits for (zero if none) and the number of running
	// jobs.
	idle func(deadline time.Time, running int)
}

type entry struct {
	job      Job
	spec     *spec
	nextTick time.Time
	pending  *run // the run waiting for its start time, a retry or its source
	running  *run
}

type run struct {
	scheduled time.Time
	startAt   time.Time
	attempt   int
	cancel    context.CancelFunc
}

type result struct {
	e          *entry
	r          *run
	start, end time.Time
	err        error
	cancelled  bool // the run's context had been cancelled
}

// New returns a Scheduler for jobs, or an error naming the first invalid job.
func New(clock Clock, state StateStore, jobs []Job, opts Options) (*Scheduler, error) {
	if clock == nil || state == nil {
		return nil, errors.New("schedule.New: clock and state store are required")
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	s := &Scheduler{clock: clock, store: state, opts: opts}
	seen := map[string]bool{}
	for _, j := range jobs {
		if err := checkJob(j, seen); err != nil {
			return nil, err
		}
		sp, err := parseSpec(j.Spec, j.Location)
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j.Name, err)
		}
		s.entries = append(s.entries, &entry{job: j, spec: sp})
	}
	return s, nil
}

func checkJob(j Job, seen map[string]bool) error {
	switch {
	case j.Name == "":
		return errors.New("a job has no name")
	case seen[j.Name]:
		return fmt.Errorf("two jobs are named %q; job names must be unique", j.Name)
	case j.Run == nil:
		return fmt.Errorf("job %q has no Run function", j.Name)
	case j.Jitter < 0 || j.Retries < 0 || j.RetryBase < 0:
		return fmt.Errorf("job %q: jitter, retries and retry base must not be negative", j.Name)
	case j.Retries > 0 && j.RetryBase == 0:
		return fmt.Errorf("job %q retries %d times but has no retry base; set one, such as 1m", j.Name, j.Retries)
	}
	seen[j.Name] = true
	return nil
}

// Next returns the next scheduled time after now of every job, in the order
// the jobs were given. It ignores jitter and catch-up. A job with no time in
// the next five years (such as "0 0 30 2 *") has a zero At.
func (s *Scheduler) Next(now time.Time) []Planned {
	out := make([]Planned, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, Planned{Job: e.job.Name, Source: e.job.Source, At: e.spec.next(now)})
	}
	return out
}

// backoff returns the delay before retry k (from 0).
func backoff(base time.Duration, k int) time.Duration {
	d := base
	for i := 0; i < k && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// jitter draws a delay in [0, max).
func (s *Scheduler) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	r := s.opts.Rand()
	if !(r > 0) { // also NaN
		return 0
	}
	d := time.Duration(r * float64(max))
	if d >= max {
		d = max - 1
	}
	return d
}

func (s *Scheduler) emit(ev Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(ev)
	}
}
