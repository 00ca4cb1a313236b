package schedule

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRejects(t *testing.T) {
	good := Job{Name: "a", Source: "db", Spec: "@daily", Run: ok}
	with := func(f func(*Job)) []Job { j := good; f(&j); return []Job{j} }
	tests := []struct {
		name    string
		jobs    []Job
		wantErr string
	}{
		{"no name", with(func(j *Job) { j.Name = "" }), "no name"},
		{"duplicate", []Job{good, good}, `two jobs are named "a"`},
		{"no run", with(func(j *Job) { j.Run = nil }), "no Run"},
		{"bad spec", with(func(j *Job) { j.Spec = "30 25 * * *" }), `job "a": cron spec`},
		{"retries without base", with(func(j *Job) { j.Retries = 3 }), "no retry base"},
		{"negative jitter", with(func(j *Job) { j.Jitter = -time.Second }), "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(RealClock{}, FileState("unused"), tt.jobs, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSchedulerNext(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	jobs := []Job{
		{Name: "pg", Source: "db", Spec: "30 2 * * *", Location: berlin, Run: ok},
		{Name: "check", Source: "repo", Spec: "0 4 * * sun", Location: time.UTC, Run: ok},
	}
	s, err := New(RealClock{}, FileState("unused"), jobs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Next(mustTime(t, "2026-03-28T12:00:00Z")) // a Saturday
	want := []Planned{
		{Job: "pg", Source: "db", At: mustTime(t, "2026-03-29T03:00:00+02:00")},
		{Job: "check", Source: "repo", At: mustTime(t, "2026-03-29T04:00:00Z")},
	}
	for i := range want {
		if got[i].Job != want[i].Job || got[i].Source != want[i].Source || !got[i].At.Equal(want[i].At) {
			t.Errorf("Next[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPanicIsFailure(t *testing.T) {
	job := Job{Name: "p", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Run: func(context.Context) error { panic("boom") }}
	h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), []Job{job}, Options{}, nil).run()
	h.advance()
	evs := h.drain(0)
	if last := evs[len(evs)-1]; last.Kind != EventFailed || !strings.Contains(last.Err.Error(), "boom") {
		t.Fatalf("events %s, last error %v", kinds(evs), last.Err)
	}
}

// TestStateSaveFailure: a state that cannot be saved is reported, and jobs
// still run.
func TestStateSaveFailure(t *testing.T) {
	job := Job{Name: "a", Source: "db", Spec: "0 3 * * *", Location: time.UTC, Run: ok}
	h := newHarness(t, mustTime(t, "2026-01-01T00:00:00Z"), []Job{job}, Options{}, nil)
	h.s.store = FileState(filepath.Join(t.TempDir(), "missing", "schedule.json"))
	h.run()
	h.advance()
	evs := h.drain(0)
	if got := len(only(evs, EventStateSave)); got != 2 {
		t.Errorf("%d state-save-failed events, want 2 (start and end): %s", got, kinds(evs))
	}
	if got := len(only(evs, EventSucceeded)); got != 1 {
		t.Errorf("job did not run: %s", kinds(evs))
	}
}

func TestFakeClock(t *testing.T) {
	start := mustTime(t, "2026-01-01T00:00:00Z")
	c := NewFakeClock(start)
	now := c.After(0)
	later := c.After(2 * time.Second)
	sooner := c.After(time.Second)
	select {
	case got := <-now:
		if !got.Equal(start) {
			t.Errorf("After(0) sent %v", got)
		}
	default:
		t.Fatal("After(0) not ready")
	}
	c.Advance(time.Second)
	select {
	case <-sooner:
	default:
		t.Fatal("After(1s) not ready after Advance(1s)")
	}
	select {
	case <-later:
		t.Fatal("After(2s) ready after 1s")
	default:
	}
	if c.Waiters() != 1 {
		t.Errorf("%d waiters, want 1", c.Waiters())
	}
	c.Set(start.Add(time.Hour))
	if got := <-later; !got.Equal(start.Add(time.Hour)) {
		t.Errorf("After(2s) sent %v", got)
	}
	if !c.Now().Equal(start.Add(time.Hour)) {
		t.Errorf("Now = %v", c.Now())
	}
}
