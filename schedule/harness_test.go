package schedule

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// harness runs a Scheduler on a FakeClock and lets a test move time only
// while the scheduler is waiting, so that every start time is exact.
type harness struct {
	t      *testing.T
	fc     *FakeClock
	s      *Scheduler
	state  FileState
	idle   chan idleReport
	events chan Event
	last   *idleReport // the latest report, while the scheduler still waits on it
	cancel context.CancelFunc
	errc   chan error
}

type idleReport struct {
	deadline time.Time
	running  int
}

const harnessTimeout = 10 * time.Second

// newHarness creates a scheduler starting at start. seed, if not nil, is
// stored as the state before Run starts. Run is started by h.run.
func newHarness(t *testing.T, start time.Time, jobs []Job, opts Options, seed map[string]JobState) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		fc:     NewFakeClock(start),
		state:  FileState(filepath.Join(t.TempDir(), "schedule.json")),
		idle:   make(chan idleReport, 10000),
		events: make(chan Event, 10000),
	}
	if seed != nil {
		if err := h.state.Save(seed); err != nil {
			t.Fatal(err)
		}
	}
	user := opts.OnEvent
	opts.OnEvent = func(ev Event) {
		if user != nil {
			user(ev)
		}
		h.events <- ev
	}
	s, err := New(h.fc, h.state, jobs, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.idle = func(deadline time.Time, running int) { h.idle <- idleReport{deadline, running} }
	h.s = s
	return h
}

// run starts Run; the test's cleanup stops it (jobs must have been released).
func (h *harness) run() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.errc = make(chan error, 1)
	go func() { h.errc <- h.s.Run(ctx) }()
	h.t.Cleanup(func() {
		if err := h.stop(); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
	return h
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.errc:
		h.errc <- err // for a second stop
		return err
	case <-time.After(harnessTimeout):
		h.t.Fatal("Run did not return after cancellation")
		return nil
	}
}

// waitIdle returns the first report from the scheduler, waiting, with n jobs
// running.
func (h *harness) waitIdle(n int) idleReport {
	h.t.Helper()
	if h.last != nil && h.last.running == n {
		return *h.last
	}
	for {
		select {
		case r := <-h.idle:
			h.last = &r
			if r.running == n {
				return r
			}
		case <-time.After(harnessTimeout):
			h.t.Fatalf("scheduler never waited with %d jobs running", n)
		}
	}
}

// advance waits until the scheduler waits with no job running, then moves
// the clock to the time it waits for, which it returns.
func (h *harness) advance() time.Time {
	h.t.Helper()
	r := h.waitIdle(0)
	if r.deadline.IsZero() {
		h.t.Fatal("scheduler waits for nothing")
	}
	h.set(r.deadline)
	return r.deadline
}

// set moves the clock to t: the scheduler wakes if it waits for t or earlier.
func (h *harness) set(t time.Time) {
	h.last = nil
	h.fc.Set(t)
}

// drain returns the events so far, once the scheduler waits with n jobs
// running.
func (h *harness) drain(n int) []Event {
	h.t.Helper()
	h.waitIdle(n)
	return h.collect()
}

// collect returns the events so far without waiting.
func (h *harness) collect() []Event {
	var evs []Event
	for {
		select {
		case ev := <-h.events:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// event returns the next event.
func (h *harness) event() Event {
	h.t.Helper()
	select {
	case ev := <-h.events:
		return ev
	case <-time.After(harnessTimeout):
		h.t.Fatal("no event")
		return Event{}
	}
}

func ok(context.Context) error { return nil }
