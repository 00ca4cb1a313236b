package schedule

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"
)

// maxWait bounds how long Run sleeps before it looks at the clock again.
const maxWait = time.Minute

// Run runs the jobs until ctx is cancelled, then waits for the running jobs
// to return (see the package documentation on shutdown) and returns nil. It
// returns an error only if the state cannot be loaded. Run must not be called
// again while it runs.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.begin(); err != nil {
		return err
	}
	done := make(chan result)
	for ctx.Err() == nil {
		now := s.clock.Now()
		s.tick(now)
		s.startDue(ctx, now, done)

		deadline := s.deadline(now)
		// Wake at least every maxWait: timers run on the monotonic clock,
		// so a wall clock that NTP steps or a machine that resumes from
		// suspend would otherwise go unnoticed until the timer fires.
		wait := maxWait
		if !deadline.IsZero() {
			wait = min(wait, deadline.Sub(now))
		}
		timer := s.clock.After(wait)
		if s.idle != nil {
			s.idle(deadline, s.running)
		}
		select {
		case <-ctx.Done():
		case r := <-done:
			s.finish(ctx, r)
		case <-timer:
		}
	}

	for _, e := range s.entries {
		if e.running != nil && s.opts.CancelRunning {
			e.running.cancel()
		}
	}
	for s.running > 0 {
		s.finish(ctx, <-done)
	}
	return nil
}

// begin loads the state and sets up each job's next time and catch-up run.
func (s *Scheduler) begin() error {
	st, err := s.store.Load()
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	s.state = maps.Clone(st)
	if s.state == nil {
		s.state = map[string]JobState{}
	}
	s.busy = map[string]bool{}
	s.running = 0

	now := s.clock.Now()
	for _, e := range s.entries {
		e.pending, e.running = nil, nil
		e.nextTick = e.spec.next(now)
		last := s.state[e.job.Name].LastScheduled
		if last.IsZero() {
			continue // never run: wait for the first time
		}
		if n := e.spec.next(last); !n.IsZero() && !n.After(now) {
			// Missed while down: one run now, recorded as scheduled now.
			e.pending = &run{scheduled: now, startAt: now}
		}
	}
	return nil
}

// tick turns every scheduled time that has come into a pending run. A job
// whose previous run is still waiting gets no second one: the time is merged
// into it and reported as skipped.
func (s *Scheduler) tick(now time.Time) {
	for _, e := range s.entries {
		if e.nextTick.IsZero() || e.nextTick.After(now) {
			continue
		}
		t := e.nextTick
		e.nextTick = e.spec.next(t)
		if !e.nextTick.IsZero() && !e.nextTick.After(now) {
			// The clock jumped over several times (a suspended machine):
			// they merge into one run, recorded as scheduled now so that
			// LastScheduled covers them all.
			s.emit(Event{Job: e.job.Name, Kind: EventSkipped, At: now, Scheduled: t})
			t, e.nextTick = now, e.spec.next(now)
		}
		if e.pending != nil {
			// The waiting run stands for this time too; recording the later
			// time keeps a restart from catching it up again.
			s.emit(Event{Job: e.job.Name, Kind: EventSkipped, At: now, Scheduled: t})
			e.pending.scheduled = t
			continue
		}
		e.pending = &run{scheduled: t, startAt: t.Add(s.jitter(e.job.Jitter))}
	}
}

// startDue starts the pending runs whose time has come and whose source is
// free, earliest first, then in job order.
func (s *Scheduler) startDue(ctx context.Context, now time.Time, done chan<- result) {
	var due []*entry
	for _, e := range s.entries {
		if e.pending != nil && e.running == nil && !e.pending.startAt.After(now) {
			due = append(due, e)
		}
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].pending.startAt.Before(due[j].pending.startAt) })
	for _, e := range due {
		if s.busy[e.job.Source] {
			continue
		}
		s.start(ctx, now, e, done)
	}
}

func (s *Scheduler) start(ctx context.Context, now time.Time, e *entry, done chan<- result) {
	r := e.pending
	e.pending, e.running = nil, r
	s.busy[e.job.Source] = true
	s.running++

	// The run outlives ctx unless CancelRunning: Run cancels it explicitly.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel

	js := s.state[e.job.Name]
	js.LastStart = now
	s.state[e.job.Name] = js
	s.save(now)
	s.emit(Event{Job: e.job.Name, Kind: EventStarted, At: now, Scheduled: r.scheduled, Attempt: r.attempt})

	go func() {
		err := call(runCtx, e.job.Run)
		res := result{e: e, r: r, start: now, end: s.clock.Now(), err: err, cancelled: runCtx.Err() != nil}
		cancel()
		done <- res
	}()
}

// call runs f, turning a panic into an error so that one job cannot bring
// the daemon down.
func call(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return f(ctx)
}

// deadline returns the next time something is due: a scheduled time or the
// start of a pending run. Pending runs already due wait for their source,
// which a finishing job frees, so they set no deadline.
func (s *Scheduler) deadline(now time.Time) time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, e := range s.entries {
		earlier(e.nextTick)
		if e.pending != nil && e.pending.startAt.After(now) {
			earlier(e.pending.startAt)
		}
	}
	return d
}

// finish records the end of an attempt and sets up its retry.
func (s *Scheduler) finish(ctx context.Context, res result) {
	e, r := res.e, res.r
	e.running = nil
	s.busy[e.job.Source] = false
	s.running--

	name := e.job.Name
	ev := Event{Job: name, At: res.end, Scheduled: r.scheduled, Attempt: r.attempt, Duration: res.end.Sub(res.start), Err: res.err}
	js := s.state[name]
	js.LastEnd = res.end
	js.LastError = ""
	switch {
	case res.err == nil:
		ev.Kind = EventSucceeded
		js.Successes++
		js.LastScheduled = r.scheduled
		js.LastSuccess = res.end
	case res.cancelled || ctx.Err() != nil:
		// Stopped by, or failed during, shutdown: no retry, and no new
		// LastScheduled, so the next start catches the run up.
		ev.Kind = EventFailed
		js.LastError = res.err.Error()
		js.Failures++
	case r.attempt < e.job.Retries:
		ev.Kind = EventRetrying
		js.LastError = res.err.Error()
		ev.RetryAt = res.end.Add(backoff(e.job.RetryBase, r.attempt))
		scheduled := r.scheduled
		if e.pending != nil {
			// A scheduled time came while this attempt ran: the retry
			// stands for it too.
			scheduled = e.pending.scheduled
			s.emit(Event{Job: name, Kind: EventSkipped, At: res.end, Scheduled: scheduled})
		}
		e.pending = &run{scheduled: scheduled, startAt: ev.RetryAt, attempt: r.attempt + 1}
	default:
		ev.Kind = EventFailed
		js.LastError = res.err.Error()
		js.Failures++
		js.LastScheduled = r.scheduled
	}
	s.state[name] = js
	s.save(res.end)
	s.emit(ev)
}

func (s *Scheduler) save(now time.Time) {
	if err := s.store.Save(maps.Clone(s.state)); err != nil {
		s.emit(Event{Kind: EventStateSave, At: now, Err: err})
	}
}
