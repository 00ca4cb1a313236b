package schedule

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// kinds returns "job:kind@HH:MM" for each event, for compact comparisons.
func kinds(evs []Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, fmt.Sprintf("%s:%s@%s", ev.Job, ev.Kind, ev.At.UTC().Format("01-02T15:04")))
	}
	return strings.Join(s, " ")
}

func only(evs []Event, kind EventKind) []Event {
	var out []Event
	for _, ev := range evs {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestRunDST runs a daily 02:30 job across both transitions of 2026 and
// checks the instants it starts at.
func TestRunDST(t *testing.T) {
	tests := []struct {
		zone, start string
		want        []string
	}{
		{"Europe/Berlin", "2026-03-27T12:00:00+01:00", []string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Europe/Berlin", "2026-10-24T00:00:00+02:00", []string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"America/New_York", "2026-03-07T00:00:00-05:00", []string{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"America/New_York", "2026-10-31T00:00:00-04:00", []string{"2026-10-31T02:30:00-04:00", "2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.start, func(t *testing.T) {
			loc := mustLoc(t, tt.zone)
			job := Job{Name: "nightly", Source: "db", Spec: "30 2 * * *", Location: loc, Run: ok}
			h := newHarness(t, mustTime(t, tt.start), []Job{job}, Options{}, nil).run()
			var got []string
			for range tt.want {
				h.advance()
				for _, ev := range only(h.drain(0), EventStarted) {
					got = append(got, ev.At.In(loc).Format(time.RFC3339))
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("starts:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// blocker is a job body that runs until released.
type blocker struct {
	release chan struct{}
	ctxErr  atomic.Value // the job context's error when it returned
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) run(ctx context.Context) error {
	<-b.release
	b.ctxErr.Store(fmt.Sprint(ctx.Err()))
	return nil
}

func TestNoOverlap(t *testing.T) {
	a, b, c := newBlocker(), newBlocker(), newBlocker()
	jobs := []Job{
		{Name: "a", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Run: a.run},
		{Name: "b", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Run: b.run},
		{Name: "c", Source: "files", Spec: "0 3 * * *", Location: time.UTC, Run: c.run},
	}
	h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), jobs, Options{}, nil).run()
	h.advance()
	// a and c (different sources) run at once; b waits for a.
	if got, want := kinds(h.drain(2)), "a:started@01-01T03:00 c:started@01-01T03:00"; got != want {
		t.Fatalf("events at 03:00:\n got %s\nwant %s", got, want)
	}
	h.set(mustTime(t, "2026-01-01T03:10:00Z"))
	close(a.release)
	if got, want := kinds([]Event{h.event(), h.event()}), "a:succeeded@01-01T03:10 b:started@01-01T03:10"; got != want {
		t.Fatalf("after a ends:\n got %s\nwant %s", got, want)
	}
	close(b.release)
	close(c.release)
	evs := h.drain(0)
	if got := kinds(only(evs, EventSucceeded)); !strings.Contains(got, "b:succeeded") || !strings.Contains(got, "c:succeeded") {
		t.Fatalf("got %s, want b and c to succeed", kinds(evs))
	}
	if n := len(only(evs, EventStarted)); n != 0 {
		t.Fatalf("unexpected starts: %s", kinds(evs))
	}
}

// TestMissedTicksRunOnce: a job due several times while its source is busy
// runs once when it is free, not once per missed time.
func TestMissedTicksRunOnce(t *testing.T) {
	long := newBlocker()
	jobs := []Job{
		{Name: "long", Source: "db", Spec: "0 1 * * *", Location: time.UTC, Run: long.run},
		{Name: "hourly", Source: "db", Spec: "0 * * * *", Location: time.UTC, Run: ok},
	}
	h := newHarness(t, mustTime(t, "2026-01-01T00:30:00Z"), jobs, Options{}, nil).run()
	h.advance() // 01:00: long starts, hourly waits
	for _, hour := range []string{"02", "03", "04"} {
		h.waitIdle(1)
		h.set(mustTime(t, "2026-01-01T"+hour+":00:00Z"))
	}
	h.waitIdle(1)
	h.set(mustTime(t, "2026-01-01T04:30:00Z"))
	close(long.release)
	evs := h.drain(0)
	h.advance() // 05:00
	evs = append(evs, h.drain(0)...)
	// hourly's 01:00 run waits for long; its 02:00-04:00 times merge into it.
	want := "long:started@01-01T01:00 " +
		"hourly:skipped@01-01T02:00 hourly:skipped@01-01T03:00 hourly:skipped@01-01T04:00 " +
		"long:succeeded@01-01T04:30 hourly:started@01-01T04:30 hourly:succeeded@01-01T04:30 " +
		"hourly:started@01-01T05:00 hourly:succeeded@01-01T05:00"
	if got := kinds(evs); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	st, err := h.state.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := st["hourly"]; got.Successes != 2 || !got.LastScheduled.Equal(mustTime(t, "2026-01-01T05:00:00Z")) {
		t.Errorf("hourly state: %+v", got)
	}
}

func TestCatchUp(t *testing.T) {
	now := mustTime(t, "2026-01-10T10:00:00Z")
	spec := "30 2 * * *"
	jobs := []Job{
		{Name: "behind", Source: "s1", Spec: spec, Location: time.UTC, Run: ok},
		{Name: "current", Source: "s2", Spec: spec, Location: time.UTC, Run: ok},
		{Name: "new", Source: "s3", Spec: spec, Location: time.UTC, Run: ok},
	}
	seed := map[string]JobState{
		"behind":  {LastScheduled: mustTime(t, "2026-01-07T02:30:00Z"), Successes: 5},
		"current": {LastScheduled: mustTime(t, "2026-01-10T02:30:00Z"), Successes: 5},
	}
	h := newHarness(t, now, jobs, Options{}, seed).run()
	if got, want := kinds(h.drain(0)), "behind:started@01-10T10:00 behind:succeeded@01-10T10:00"; got != want {
		t.Fatalf("at start:\n got %s\nwant %s", got, want)
	}
	if at := h.advance(); !at.Equal(mustTime(t, "2026-01-11T02:30:00Z")) {
		t.Fatalf("next wake-up at %v, want the next day's 02:30", at)
	}
	if got := len(only(h.drain(0), EventStarted)); got != 3 {
		t.Fatalf("%d jobs started at 02:30, want 3", got)
	}
	st, err := h.state.Load()
	if err != nil {
		t.Fatal(err)
	}
	if b := st["behind"]; b.Successes != 7 || !b.LastScheduled.Equal(mustTime(t, "2026-01-11T02:30:00Z")) {
		t.Errorf("behind: %+v", b)
	}
	if n := st["new"]; n.Successes != 1 {
		t.Errorf("new: %+v", n)
	}
}

// TestCatchUpAfterRestart stops a daemon during a run, with CancelRunning,
// and starts another: the interrupted run is caught up once.
func TestCatchUpAfterRestart(t *testing.T) {
	var calls atomic.Int32
	run := func(ctx context.Context) error {
		if calls.Add(1) != 2 {
			return nil
		}
		<-ctx.Done() // day 2: stopped by the shutdown
		return ctx.Err()
	}
	job := Job{Name: "nightly", Source: "db", Spec: "30 2 * * *", Location: time.UTC, Run: run}
	h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), []Job{job}, Options{CancelRunning: true}, nil).run()
	h.advance()
	h.waitIdle(0)
	h.advance()
	h.waitIdle(1)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	want := "nightly:started@01-01T02:30 nightly:succeeded@01-01T02:30 nightly:started@01-02T02:30 nightly:failed@01-02T02:30"
	if got := kinds(h.collect()); got != want {
		t.Fatalf("first daemon:\n got %s\nwant %s", got, want)
	}

	h2 := newHarness(t, mustTime(t, "2026-01-02T08:00:00Z"), []Job{job}, Options{}, nil)
	h2.s.store = h.state
	h2.state = h.state
	h2.run()
	if got, want := kinds(h2.drain(0)), "nightly:started@01-02T08:00 nightly:succeeded@01-02T08:00"; got != want {
		t.Fatalf("second daemon:\n got %s\nwant %s", got, want)
	}
	if at := h2.advance(); !at.Equal(mustTime(t, "2026-01-03T02:30:00Z")) {
		t.Fatalf("then next wake-up at %v", at)
	}
}

// TestShutdownLetsRunningJobFinish: without CancelRunning, Run waits for a
// running job, whose context stays live, and starts nothing more.
func TestShutdownLetsRunningJobFinish(t *testing.T) {
	b := newBlocker()
	jobs := []Job{
		{Name: "backup", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Run: b.run},
		{Name: "check", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Run: ok},
	}
	h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), jobs, Options{}, nil).run()
	h.advance()
	h.waitIdle(1)
	h.cancel()
	select {
	case err := <-h.errc:
		t.Fatalf("Run returned (%v) while a job was running", err)
	default:
	}
	close(b.release)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.ctxErr.Load(); got != "<nil>" {
		t.Errorf("job context error %v, want none", got)
	}
	if got, want := kinds(h.collect()), "backup:started@01-01T03:00 backup:succeeded@01-01T03:00"; got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}

func TestRetryBackoff(t *testing.T) {
	const base = 5 * time.Minute
	tests := []struct {
		name      string
		failFirst int // attempts that fail; -1 for all
		wantAt    []time.Duration
		wantFinal EventKind
	}{
		{"fails twice then succeeds", 2, []time.Duration{0, base, 3 * base}, EventSucceeded},
		{"always fails", -1, []time.Duration{0, base, 3 * base, 7 * base}, EventFailed},
		{"succeeds at once", 0, []time.Duration{0}, EventSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			run := func(context.Context) error {
				n := int(attempts.Add(1))
				if tt.failFirst < 0 || n <= tt.failFirst {
					return fmt.Errorf("attempt %d: disk full", n)
				}
				return nil
			}
			job := Job{Name: "j", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Retries: 3, RetryBase: base, Run: run}
			h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), []Job{job}, Options{}, nil).run()
			tick := h.advance()
			var evs []Event
			for {
				evs = append(evs, h.drain(0)...)
				if k := evs[len(evs)-1].Kind; k == EventSucceeded || k == EventFailed {
					break
				}
				h.advance()
			}
			var got []time.Duration
			for _, ev := range only(evs, EventStarted) {
				got = append(got, ev.At.Sub(tick))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantAt) {
				t.Errorf("attempts at tick+%v, want %v", got, tt.wantAt)
			}
			final := evs[len(evs)-1]
			if final.Kind != tt.wantFinal {
				t.Errorf("final event %s, want %s", final.Kind, tt.wantFinal)
			}
			if final.Kind == EventFailed && (final.Err == nil || !strings.Contains(final.Err.Error(), "disk full")) {
				t.Errorf("failed event error: %v", final.Err)
			}
			st, err := h.state.Load()
			if err != nil {
				t.Fatal(err)
			}
			js := st["j"]
			wantF, wantS := 0, 1
			if tt.wantFinal == EventFailed {
				wantF, wantS = 1, 0
			}
			if js.Failures != wantF || js.Successes != wantS || !js.LastScheduled.Equal(tick) || (js.LastError != "") != (wantF == 1) {
				t.Errorf("state %+v", js)
			}
			if at := h.advance(); !at.Equal(tick.Add(24 * time.Hour)) {
				t.Errorf("after the run, next wake-up %v, want the next tick", at)
			}
		})
	}
}

func TestBackoffCap(t *testing.T) {
	if got := backoff(time.Hour, 100); got != maxBackoff {
		t.Errorf("backoff(1h, 100) = %v, want %v", got, maxBackoff)
	}
	if got := backoff(time.Second, 3); got != 8*time.Second {
		t.Errorf("backoff(1s, 3) = %v", got)
	}
}

func TestJitter(t *testing.T) {
	const jitter = 10 * time.Minute
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name    string
		ticks   int
		rand    func() float64
		minWant time.Duration // of the start's offset from its tick
		maxWant time.Duration
	}{
		{"zero", 5, func() float64 { return 0 }, 0, 0},
		{"almost one", 5, func() float64 { return 0.9999999999 }, jitter - time.Millisecond, jitter - 1},
		{"one, out of contract", 5, func() float64 { return 1 }, jitter - 1, jitter - 1},
		{"negative, out of contract", 5, func() float64 { return -0.5 }, 0, 0},
		{"random", 100, rng.Float64, 0, jitter - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := Job{Name: "j", Source: "db", Spec: "0 * * * *", Location: time.UTC, Jitter: jitter, Run: ok}
			h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), []Job{job}, Options{Rand: tt.rand}, nil).run()
			for range tt.ticks {
				tick := h.advance()
				evs := h.drain(0)
				if tt.maxWant > 0 {
					if len(evs) != 0 {
						t.Fatalf("events at the tick, before the jittered start: %s", kinds(evs))
					}
					h.advance()
					evs = h.drain(0)
				}
				evs = only(evs, EventStarted)
				if len(evs) != 1 {
					t.Fatalf("want one start, got %v", kinds(evs))
				}
				if d := evs[0].At.Sub(tick); d < tt.minWant || d > tt.maxWant || !evs[0].Scheduled.Equal(tick) {
					t.Fatalf("start at tick+%v, want in [%v, %v]", d, tt.minWant, tt.maxWant)
				}
			}
		})
	}
}

// TestClockJump: when the clock jumps over several times (a machine resumed
// from suspend), the job runs once, and its state covers the times it missed.
func TestClockJump(t *testing.T) {
	job := Job{Name: "hourly", Source: "db", Spec: "0 * * * *", Location: time.UTC, Run: ok}
	h := newHarness(t, mustTime(t, "2026-01-01T00:30:00Z"), []Job{job}, Options{}, nil).run()
	h.waitIdle(0)
	h.set(mustTime(t, "2026-01-01T05:10:00Z"))
	want := "hourly:skipped@01-01T05:10 hourly:started@01-01T05:10 hourly:succeeded@01-01T05:10"
	if got := kinds(h.drain(0)); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	st, err := h.state.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := st["hourly"].LastScheduled; !got.Equal(mustTime(t, "2026-01-01T05:10:00Z")) {
		t.Errorf("LastScheduled %v, want 05:10", got)
	}
	if at := h.advance(); !at.Equal(mustTime(t, "2026-01-01T06:00:00Z")) {
		t.Fatalf("next wake-up %v, want 06:00", at)
	}
}
