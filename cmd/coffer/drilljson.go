package main

import (
	"io"
	"strconv"
	"time"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/engine"
)

// drillJSON is a drill report, or a stored drill's summary, in the names
// of docs/json.md: durations in seconds, the drill's id under "drill". The
// repository stores reports in their own format (drill.Report), which
// this converts from; summaries leave out what only the sealed report has.
type drillJSON struct {
	Version  int            `json:"version"` // of the report, or of the stored record
	Drill    string         `json:"drill"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Host     string         `json:"host"`
	Tool     string         `json:"tool"`
	Passed   bool           `json:"passed"`
	Runs     []drillRunJSON `json:"runs"`
	Warnings []string       `json:"warnings,omitempty"`
	Damaged  []string       `json:"damaged_snapshots,omitempty"`
}

type drillRunJSON struct {
	Snapshot   string               `json:"snapshot"`
	Source     string               `json:"source"`
	Engine     string               `json:"engine"`
	SnapshotAt time.Time            `json:"snapshot_time"`
	Size       int64                `json:"size_bytes"`
	Target     string               `json:"target,omitempty"`
	Passed     bool                 `json:"passed"`
	Checks     []drillCheckJSON     `json:"checks"`
	Phases     []drillPhaseJSON     `json:"phases,omitempty"`
	RTO        float64              `json:"rto_seconds"`
	RPO        drillRPOJSON         `json:"rpo"`
	Tables     []engine.TableResult `json:"tables,omitempty"`
}

type drillCheckJSON struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

type drillPhaseJSON struct {
	Name     string  `json:"name"`
	Duration float64 `json:"duration_seconds"`
}

type drillRPOJSON struct {
	Age float64 `json:"age_seconds"`
	Gap float64 `json:"gap_seconds"`
}

// secondsStr is d in seconds, as a decimal without a float's noise: 2.236
// for 2.236s.
func secondsStr(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/1e9, 'f', -1, 64)
}

// printCleanupJSON prints what drill --cleanup removed and left.
func printCleanupJSON(w io.Writer, res *drill.CleanupResult) error {
	out := struct {
		Removed []drill.Cleaned `json:"removed"`
		Ignored []string        `json:"ignored"`
	}{append([]drill.Cleaned{}, res.Removed...), append([]string{}, res.Ignored...)}
	return printJSON(w, out)
}

// drillRun is what a report's run and a summary's have in common.
func drillRun(r drill.RunSummary) drillRunJSON {
	return drillRunJSON{Snapshot: r.Snapshot, Source: r.Source, Engine: r.Engine, SnapshotAt: r.SnapshotAt, Size: r.Size,
		Passed: r.Passed, Checks: []drillCheckJSON{}, RTO: r.RTO.Seconds(),
		RPO: drillRPOJSON{Age: r.RPO.Age.Seconds(), Gap: r.RPO.Gap.Seconds()}}
}

func toDrillJSON(r *drill.Report) drillJSON {
	out := drillJSON{Version: r.Version, Drill: r.ID, Started: r.Started, Finished: r.Finished, Host: r.Host, Tool: r.Tool,
		Passed: r.Passed, Runs: []drillRunJSON{}, Warnings: r.Warnings, Damaged: r.Damaged}
	for _, run := range r.Runs {
		j := drillRun(drill.RunSummary{Snapshot: run.Snapshot, Source: run.Source, Engine: run.Engine, SnapshotAt: run.SnapshotAt,
			Size: run.Size, Passed: run.Passed, RTO: run.RTO, RPO: run.RPO})
		j.Target = run.Target
		for _, c := range run.Checks {
			j.Checks = append(j.Checks, drillCheckJSON{Name: c.Name, Passed: c.Passed, Detail: c.Detail})
		}
		for _, p := range run.Phases {
			j.Phases = append(j.Phases, drillPhaseJSON{Name: p.Name, Duration: p.Duration.Seconds()})
		}
		for _, t := range run.Tables {
			j.Tables = append(j.Tables, t.TableResult)
		}
		out.Runs = append(out.Runs, j)
	}
	return out
}

func toDrillSummaryJSON(s *drill.Stored) drillJSON {
	out := drillJSON{Version: s.Version, Drill: s.ID, Started: s.Started, Finished: s.Finished, Host: s.Host, Tool: s.Tool,
		Passed: s.Passed, Runs: []drillRunJSON{}}
	for _, run := range s.Runs {
		j := drillRun(run)
		for _, c := range run.Checks {
			j.Checks = append(j.Checks, drillCheckJSON{Name: c.Name, Passed: c.Passed})
		}
		out.Runs = append(out.Runs, j)
	}
	return out
}
