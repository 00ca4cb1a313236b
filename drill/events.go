package drill

import "time"

// Event is a step of a running drill, told as it happens (Options.Events):
// a snapshot's drill begins, a phase begins or ends, a snapshot's drill
// ends with its verdict. A drill of a large database takes long; events
// are how an operator sees it work.
type Event struct {
	Kind     EventKind
	Snapshot string        // the snapshot's id
	Source   string        // its source
	Phase    string        // PhaseStart, PhaseEnd: the phase's name (as in Report's phases)
	Duration time.Duration // PhaseEnd: the phase's; SnapshotEnd: the RTO
	Passed   bool          // SnapshotEnd: the verdict
}

// EventKind says what an Event tells.
type EventKind string

// The kinds of events.
const (
	SnapshotStart EventKind = "snapshot_start"
	PhaseStart    EventKind = "phase_start"
	PhaseEnd      EventKind = "phase_end"
	SnapshotEnd   EventKind = "snapshot_end"
)

// emit tells opts.Events of e, if anyone listens.
func (r *runner) emit(kind EventKind, phase string, d time.Duration) {
	if r.opts.Events == nil {
		return
	}
	r.opts.Events(Event{Kind: kind, Snapshot: r.run.Snapshot, Source: r.run.Source, Phase: phase, Duration: d, Passed: r.run.Passed})
}
