// Package drill proves backups: it restores snapshots into a scratch
// database, checks every chunk, the stream, the load, every table's row
// count and digest and the user's assertions, times each phase (RTO),
// measures the snapshot's age (RPO), reports, and drops the scratch copy,
// also after a failure or, through markers, after being killed. With
// Options.PITR it drills point-in-time recovery instead: a physical base
// backup and the WAL archive, recovered in an ephemeral server (pitr.go).
package drill

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// Options configure a drill.
type Options struct {
	Source   string // the source to drill (required when the repository has several)
	Snapshot string // a snapshot id or "latest" (default)
	Sample   int    // also drill this many older snapshots of the source, chosen at random

	Scratch    string // postgres:// or mysql:// server for scratch databases
	Ephemeral  bool   // PostgreSQL: start a throwaway server instead
	Jobs       int    // parallel load jobs
	Assertions []Assertion
	// Mask drills a masked restore: the scratch copy is masked under these
	// rules and verified as restore --mask verifies it.
	Mask *restore.Masking

	// PITR drills point-in-time recovery of PostgreSQL: the newest
	// physical base backup of the source (taken before TargetTime, if
	// set) and the WAL archive, recovered into an ephemeral server to
	// TargetTime or to the end of the archive (see pitr.go).
	PITR       bool
	TargetTime time.Time
	Superuser  string // PITR: overrides the cluster's superuser the base backup recorded (default: that one, else postgres)
	Database   string // PITR: the database the assertions run in; default postgres

	// StateDir is where markers of running drills live (see Cleanup): a
	// directory of ours with mode 0700 (EnsureStateDir), never a shared
	// one; "" keeps no markers.
	StateDir string
	TempDir  string // for work directories and ephemeral servers; default os.TempDir()
	Host     string
	Tool     string
	Now      func() time.Time

	// Events, when set, is told of each step as the drill runs it.
	Events func(Event)

	// AfterLoad, when set, runs between load and verification (tests use
	// it to alter the scratch database and prove the drill notices).
	AfterLoad func(ctx context.Context, db Queryer) error
}

// Run drills the chosen snapshots and returns the report. The error is
// only for a drill that could not run at all; failed checks are in the
// report (Report.Passed false).
func Run(ctx context.Context, repo *repository.Repo, opts Options) (*Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Snapshot == "" {
		opts.Snapshot = "latest"
	}
	var snaps, history []*repository.Snapshot
	var damaged []string
	var err error
	if opts.PITR {
		var snap *repository.Snapshot
		snap, damaged, err = choosePITR(ctx, repo, opts)
		snaps = []*repository.Snapshot{snap}
	} else {
		snaps, history, damaged, err = choose(ctx, repo, opts)
	}
	if err != nil {
		return nil, err
	}
	rep := &Report{Version: 1, ID: newID(opts.Now()), Started: opts.Now().UTC(), Host: opts.Host, Tool: opts.Tool, Passed: len(damaged) == 0, Damaged: damaged}
	if opts.StateDir != "" {
		if err := EnsureStateDir(opts.StateDir); err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
	}
	cleaned, err := Cleanup(ctx, CleanupOptions{StateDir: opts.StateDir, TempDir: opts.TempDir, Scratch: opts.Scratch})
	if err != nil {
		return nil, fmt.Errorf("drill: clean up after an earlier drill: %w", err)
	}
	rep.Warnings = cleaned.Ignored
	for i, s := range snaps {
		name := fmt.Sprintf("%s_%d", rep.ID, i)
		var run SnapshotRun
		if opts.PITR {
			run = drillPITR(ctx, repo, s, name, opts)
		} else {
			run = drillOne(ctx, repo, s, history, name, opts)
		}
		rep.Runs = append(rep.Runs, run)
		rep.Passed = rep.Passed && run.Passed
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rep.Finished = opts.Now().UTC()
	return rep, nil
}

// newID names a drill: its time and a random suffix, so scratch databases
// named after it cannot collide.
func newID(t time.Time) string {
	var b [3]byte
	crand.Read(b[:])
	return t.UTC().Format("20060102t150405") + "_" + hex.EncodeToString(b[:])
}

// choose returns the snapshots to drill, every snapshot of the source
// (oldest first) for the RPO, and the snapshot objects that could not be
// read.
func choose(ctx context.Context, repo *repository.Repo, opts Options) ([]*repository.Snapshot, []*repository.Snapshot, []string, error) {
	first, err := repo.FindSnapshot(ctx, opts.Snapshot, opts.Source)
	if err != nil {
		return nil, nil, nil, err
	}
	all, damaged, err := snapshots(ctx, repo)
	if err != nil {
		return nil, nil, nil, err
	}
	var history, older []*repository.Snapshot
	for _, s := range all {
		if s.Source != first.Source {
			continue
		}
		history = append(history, s)
		if s.Time.Before(first.Time) {
			older = append(older, s)
		}
	}
	picked := []*repository.Snapshot{first}
	for _, i := range rand.Perm(len(older))[:min(opts.Sample, len(older))] {
		picked = append(picked, older[i])
	}
	sort.SliceStable(picked[1:], func(i, j int) bool { return picked[1+i].Time.After(picked[1+j].Time) })
	return picked, history, damaged, nil
}

// snapshots lists the repository's snapshots, and the snapshot objects
// that could not be read.
func snapshots(ctx context.Context, repo *repository.Repo) ([]*repository.Snapshot, []string, error) {
	all, err := repo.Snapshots(ctx)
	var de *repository.DamagedError
	var damaged []string
	if errors.As(err, &de) {
		for _, e := range de.Errs {
			damaged = append(damaged, e.Error())
		}
	} else if err != nil {
		return nil, nil, err
	}
	return all, damaged, nil
}

// rpo measures the snapshot's age and the gap between the source's two
// newest snapshots.
func rpo(s *repository.Snapshot, history []*repository.Snapshot, now time.Time) RPO {
	r := RPO{Age: now.Sub(s.Time)}
	if n := len(history); n >= 2 {
		r.Gap = history[n-1].Time.Sub(history[n-2].Time)
	}
	return r
}
