package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/termsafe"
)

// drillEventJSON is one line of drill --json --events.
type drillEventJSON struct {
	Event    string   `json:"event"` // snapshot_start, phase_start, phase_end, snapshot_end
	Snapshot string   `json:"snapshot"`
	Source   string   `json:"source"`
	Phase    string   `json:"phase,omitempty"`
	Duration *float64 `json:"duration_seconds,omitempty"` // phase_end: the phase's; snapshot_end: the RTO
	Passed   *bool    `json:"passed,omitempty"`           // snapshot_end
}

// drillEvents says how the drill's steps are shown as they run: as JSON
// lines on standard output with --json --events; as lines on standard
// error when it is a terminal (and no JSON is asked for); else not at all.
func drillEvents(g *globals, events bool, stdout io.Writer) (func(drill.Event), error) {
	var mu sync.Mutex
	switch {
	case events && !g.json:
		return nil, errors.New("drill: --events goes with --json (on a terminal the phases are shown without it)")
	case events:
		return func(e drill.Event) {
			mu.Lock()
			defer mu.Unlock()
			printJSONLine(stdout, toDrillEventJSON(e))
		}, nil
	case !g.json && isTerminal(os.Stderr):
		return func(e drill.Event) {
			mu.Lock()
			defer mu.Unlock()
			printDrillEvent(os.Stderr, e)
		}, nil
	}
	return nil, nil
}

func toDrillEventJSON(e drill.Event) drillEventJSON {
	j := drillEventJSON{Event: string(e.Kind), Snapshot: e.Snapshot, Source: e.Source, Phase: e.Phase}
	if e.Kind == drill.PhaseEnd || e.Kind == drill.SnapshotEnd {
		s := float64(e.Duration) / 1e9
		j.Duration = &s
	}
	if e.Kind == drill.SnapshotEnd {
		j.Passed = &e.Passed
	}
	return j
}

// printDrillEvent draws a step on a terminal: a phase's line says
// "load…" while it runs and "load 1.234s" once done.
func printDrillEvent(w io.Writer, e drill.Event) {
	short := e.Snapshot[:min(8, len(e.Snapshot))]
	switch e.Kind {
	case drill.SnapshotStart:
		fmt.Fprintf(w, "drill: snapshot %s of %s\n", termsafe.String(short), termsafe.String(e.Source))
	case drill.PhaseStart:
		fmt.Fprintf(w, "  %s…", termsafe.String(e.Phase))
	case drill.PhaseEnd:
		fmt.Fprintf(w, "\r\x1b[K  %s %s\n", termsafe.String(e.Phase), e.Duration.Round(1e6))
	case drill.SnapshotEnd:
		verdict := "passed"
		if !e.Passed {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "drill: snapshot %s %s, done in %s\n", termsafe.String(short), verdict, e.Duration.Round(1e6))
	}
}
