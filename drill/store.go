package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/repository"
)

// RecordVersion is the version of the drill records Save writes. Version 1
// records (written before reports were sealed) are the whole Report,
// readable with the writer key; version 2 records carry a Summary for
// writers and the whole Report sealed to the repository key.
const RecordVersion = 2

// Summary is what a stored drill record tells whoever holds the writer
// key: the verdict, when, where, with which tool, and for each snapshot its
// id and source, RTO, RPO and which checks passed. It names no table,
// count, digest, assertion, scratch target or warning: those are derived
// from customer rows or from the operator's setup, and are only in the
// sealed report.
type Summary struct {
	Version  int          `json:"version"` // of the stored record: 1 or 2
	ID       string       `json:"id"`
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished"`
	Host     string       `json:"host"`
	Tool     string       `json:"tool"`
	Passed   bool         `json:"passed"`
	Runs     []RunSummary `json:"runs"`
}

// RunSummary is the drill of one snapshot, as writers see it. Snapshot,
// source, engine, time and size are in the snapshot's own metadata too.
type RunSummary struct {
	Snapshot   string         `json:"snapshot"`
	Source     string         `json:"source"`
	Engine     string         `json:"engine"`
	SnapshotAt time.Time      `json:"snapshot_time"`
	Size       int64          `json:"size"`
	Passed     bool           `json:"passed"`
	Checks     []CheckSummary `json:"checks"`
	RTO        time.Duration  `json:"rto_ns"`
	RPO        RPO            `json:"rpo"`
}

// CheckSummary is a check's name and verdict without its detail. An
// assertion is named by its position ("assertion 2"), not by its name.
type CheckSummary struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
}

// fixedChecks are the checks whose names the drill itself chooses; any
// other name (an assertion's, or one a future check makes up) is not
// copied into a summary.
var fixedChecks = map[string]bool{
	"scratch": true, "chunks and stream digest": true, "table digests recorded": true,
	"load": true, "connect to scratch": true, "test hook": true, "tables": true, "scratch removed": true,
	checkWALChain: true, checkWALFiles: true, checkWALAge: true, checkRecovery: true, checkAmcheck: true, checkRowCounts: true,
}

// Summarize returns what the stored record of r shows to writers.
func Summarize(r *Report) Summary {
	s := Summary{Version: RecordVersion, ID: r.ID, Started: r.Started, Finished: r.Finished, Host: r.Host, Tool: r.Tool, Passed: r.Passed}
	for _, run := range r.Runs {
		rs := RunSummary{Snapshot: run.Snapshot, Source: run.Source, Engine: run.Engine, SnapshotAt: run.SnapshotAt,
			Size: run.Size, Passed: run.Passed, RTO: run.RTO, RPO: run.RPO}
		assertion := 0
		for i, c := range run.Checks {
			name := c.Name
			switch {
			case strings.HasPrefix(name, "assertion: "):
				assertion++
				name = fmt.Sprintf("assertion %d", assertion)
			case !fixedChecks[name]:
				name = fmt.Sprintf("check %d", i+1)
			}
			rs.Checks = append(rs.Checks, CheckSummary{Name: name, Passed: c.Passed})
		}
		s.Runs = append(s.Runs, rs)
	}
	return s
}

// record is a version 2 drills/ object: the summary, and the whole report
// sealed to the repository key.
type record struct {
	Summary
	Private []byte `json:"private"`
}

// Save stores the report in the repository, under drills/, so auditors can
// list past drills: a summary that the writer key reads, and the whole
// report sealed to the repository key. Writers can save.
func Save(ctx context.Context, repo *repository.Repo, r *Report) error {
	private, err := repo.SealPrivate(r)
	if err != nil {
		return fmt.Errorf("drill: seal report %s: %w", r.ID, err)
	}
	_, err = repo.SaveRecord(ctx, "drill", "drills", record{Summary: Summarize(r), Private: private})
	return err
}

// Stored is a drill record read from the repository. It marshals as its
// Summary; Report returns the whole report.
type Stored struct {
	Summary
	object  string
	private []byte  // version 2: the sealed report
	report  *Report // version 1: the report, stored readable by writers
}

// Report returns the whole report. For a version 2 record it needs the
// repository key (repository.ErrNeedIdentity without it).
func (s *Stored) Report(repo *repository.Repo) (*Report, error) {
	if s.report != nil {
		return s.report, nil
	}
	var r Report
	if err := repo.OpenSealed(s.object+" (sealed report)", s.private, &r); err != nil {
		return nil, err
	}
	if r.ID != s.ID {
		return nil, &repository.CorruptError{Object: s.object, Reason: fmt.Sprintf("its sealed report is of drill %q, not %q", r.ID, s.ID)}
	}
	return &r, nil
}

// List returns the drill records stored in the repository, newest first.
func List(ctx context.Context, repo *repository.Repo) ([]*Stored, error) {
	var out []*Stored
	err := repo.Records(ctx, "drill", "drills", func(id repository.ID, b []byte) error {
		s, err := parseRecord("drills/"+id.String(), b)
		if err == nil {
			out = append(out, s)
		}
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, err
}

func parseRecord(object string, b []byte) (*Stored, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, &repository.CorruptError{Object: object, Reason: "malformed JSON", Err: err}
	}
	switch v.Version {
	case 1:
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, &repository.CorruptError{Object: object, Reason: "malformed JSON", Err: err}
		}
		s := &Stored{Summary: Summarize(&r), object: object, report: &r}
		s.Version = 1
		return s, nil
	case RecordVersion:
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, &repository.CorruptError{Object: object, Reason: "malformed JSON", Err: err}
		}
		return &Stored{Summary: rec.Summary, object: object, private: rec.Private}, nil
	default:
		return nil, fmt.Errorf("%s is a drill record of version %d; this coffer reads versions 1 and %d: upgrade coffer", object, v.Version, RecordVersion)
	}
}
