package drill

import (
	"time"

	"github.com/coffer-backup/coffer/engine"
)

// Report is the outcome of one drill: what was restored where, every check
// with its verdict, the time each phase took (RTO) and how old the data was
// (RPO). It is written as JSON (for machines), as a self-contained HTML page
// (for people) and into the repository: there, sealed to the repository key
// next to a Summary that the writer key reads (see Save).
type Report struct {
	Version  int           `json:"version"`
	ID       string        `json:"id"` // the drill's id, also its scratch name suffix
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Host     string        `json:"host"`
	Tool     string        `json:"tool"`
	Passed   bool          `json:"passed"`
	Runs     []SnapshotRun `json:"runs"` // one per snapshot drilled
	// Warnings are about the drill host rather than the snapshots: markers
	// of earlier drills that cleanup did not act on, and why.
	Warnings []string `json:"warnings,omitempty"`
	// Damaged are the snapshot objects that could not be read (damaged,
	// or not coffer's): each fails the drill, which still drills the rest.
	Damaged []string `json:"damaged_snapshots,omitempty"`
}

// SnapshotRun is the drill of one snapshot.
type SnapshotRun struct {
	Snapshot   string        `json:"snapshot"`
	Source     string        `json:"source"`
	Engine     string        `json:"engine"`
	SnapshotAt time.Time     `json:"snapshot_time"`
	Size       int64         `json:"size"`
	Target     string        `json:"target"` // the scratch target, without secrets
	Passed     bool          `json:"passed"`
	Checks     []Check       `json:"checks"`
	Phases     []Phase       `json:"phases"`
	RTO        time.Duration `json:"rto_ns"` // the phases added up
	RPO        RPO           `json:"rpo"`
	Tables     []TableCheck  `json:"tables,omitempty"`
}

// Check is one verification with its verdict.
type Check struct {
	Name   string `json:"name"` // e.g. "chunks", "stream digest", "load", "tables", "assertion: …"
	Passed bool   `json:"passed"`
	Detail string `json:"detail"` // what was found, or why it failed
}

// Phase is one timed step of the restore.
type Phase struct {
	Name     string        `json:"name"` // download and decrypt, load, verify, assertions
	Duration time.Duration `json:"duration_ns"`
}

// RPO is how much data a restore from this snapshot would lose.
type RPO struct {
	Age time.Duration `json:"age_ns"` // from the snapshot to the drill
	// Gap is between the source's two newest snapshots (zero with one):
	// the data lost if the database failed just before the next backup.
	Gap time.Duration `json:"gap_ns"`
}

// TableCheck is one table's comparison, with row counts but no digests.
type TableCheck struct {
	engine.TableResult
}
