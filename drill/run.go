package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// Queryer is the scratch database, as AfterLoad sees it.
type Queryer = *sql.DB

// runner drills one snapshot.
type runner struct {
	run  *SnapshotRun
	opts Options
}

// must records a failed check; success is recorded by the step's own check.
func (r *runner) must(name string, err error) bool {
	if err != nil {
		r.check(name, err, "")
	}
	return err == nil
}

func (r *runner) check(name string, err error, okDetail string) bool {
	c := Check{Name: name, Passed: err == nil, Detail: okDetail}
	if err != nil {
		c.Detail = err.Error()
	}
	r.run.Checks = append(r.run.Checks, c)
	return err == nil
}

// phase runs fn and records how long it took.
func (r *runner) phase(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	r.run.Phases = append(r.run.Phases, Phase{Name: name, Duration: time.Since(start)})
	r.run.RTO += time.Since(start)
	return err
}

func drillOne(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, history []*repository.Snapshot, name string, opts Options) (run SnapshotRun) {
	run = SnapshotRun{Snapshot: snap.ID().String(), Source: snap.Source, Engine: snap.Engine, SnapshotAt: snap.Time,
		Size: snap.Size, RPO: rpo(snap, history, opts.Now())}
	r := &runner{run: &run, opts: opts}
	defer func() {
		run.Passed = len(run.Checks) > 0
		for _, c := range run.Checks {
			run.Passed = run.Passed && c.Passed
		}
	}()
	dir, err := workDir(opts.TempDir, name)
	if !r.must("scratch", err) {
		return run
	}
	sc, stop, err := prepareScratch(ctx, snap.Engine, dir, "coffer_drill_"+name, opts)
	if !r.must("scratch", err) {
		os.RemoveAll(dir)
		return run
	}
	run.Target = sc.String()
	m := &marker{ID: name, PID: os.Getpid(), Started: opts.Now().UTC(), Dir: dir, Scratch: sc, Ephemeral: stop.dir}
	if err := m.save(opts.StateDir); !r.must("scratch", err) {
		stop.do(context.WithoutCancel(ctx), sc, dir)
		return run
	}
	defer func() {
		err := stop.do(context.WithoutCancel(ctx), sc, dir)
		if err == nil {
			err = m.remove(opts.StateDir)
		}
		r.check("scratch removed", err, fmt.Sprintf("%s and the restored dump were removed", sc))
	}()
	r.steps(ctx, repo, snap, sc, dir)
	return run
}

// steps restores, loads, verifies and asserts, stopping at the first
// step whose failure makes the next meaningless.
func (r *runner) steps(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, sc *scratch, dir string) {
	dump := filepath.Join(dir, "dump")
	err := r.phase("download and decrypt", func() error { return restoreFile(ctx, repo, snap, dump) })
	if !r.check("chunks and stream digest", err, fmt.Sprintf("%d chunks decrypted and matched their ids; the %d-byte stream matched its digest", len(snap.Chunks), snap.Size)) {
		return
	}
	var want engine.Report
	if !r.check("table digests recorded", repo.OpenPrivate(snap, &want), fmt.Sprintf("%d tables recorded at backup time", len(want.Tables))) {
		return
	}
	target, err := sc.target(r.opts.Jobs)
	if !r.must("load", err) {
		return
	}
	err = r.phase("load", func() error { return loadFile(ctx, target, dump, want) })
	if !r.check("load", err, "the dump loaded without error into "+sc.String()) {
		return
	}
	os.Remove(dump) // customer data: gone as soon as it is loaded
	if r.opts.AfterLoad != nil || len(r.opts.Assertions) > 0 {
		db, err := sc.open(ctx)
		if !r.must("connect to scratch", err) {
			return
		}
		defer db.Close()
		if r.opts.AfterLoad != nil {
			if err := r.opts.AfterLoad(ctx, db); err != nil {
				r.check("test hook", err, "")
			}
		}
		defer r.assertions(ctx, db)
	}
	var got []engine.TableDigest
	err = r.phase("verify", func() error {
		var err error
		got, err = target.Digests(ctx)
		return err
	})
	if !r.must("tables", err) {
		return
	}
	res := engine.Compare(want.Tables, got)
	for _, t := range res {
		r.run.Tables = append(r.run.Tables, TableCheck{t})
	}
	r.check("tables", tablesVerdict(res), fmt.Sprintf("all %d tables have the row counts and digests recorded at backup time", len(res)))
}

func (r *runner) assertions(ctx context.Context, db *sql.DB) {
	if len(r.opts.Assertions) == 0 {
		return
	}
	r.phase("assertions", func() error {
		for _, a := range r.opts.Assertions {
			got, err := a.eval(ctx, db)
			r.check("assertion: "+a.Name, err, fmt.Sprintf("%s = %s", strings.TrimSpace(a.SQL), got))
		}
		return nil
	})
}

func tablesVerdict(res []engine.TableResult) error {
	var bad []string
	for _, t := range res {
		if !t.Match {
			bad = append(bad, t.Table+": "+t.Reason)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d tables differ from the backup: %s", len(bad), len(res), strings.Join(bad, "; "))
}

func restoreFile(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = restore.Run(ctx, repo, snap, f, restore.Options{})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func loadFile(ctx context.Context, t restore.Target, path string, rep engine.Report) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.Load(ctx, f, rep)
}

// stopper undoes a scratch: drops the database, stops an ephemeral
// server, removes the work directory.
type stopper struct {
	dir  string // an ephemeral server's directory, if any
	stop func(context.Context) error
}

func (s *stopper) do(ctx context.Context, sc *scratch, work string) error {
	var errs []error
	if s.stop != nil {
		errs = append(errs, s.stop(ctx)) // the whole server goes, its databases with it
	} else {
		errs = append(errs, sc.drop(ctx))
	}
	errs = append(errs, os.RemoveAll(work))
	return errors.Join(errs...)
}
