package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
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
	run    *SnapshotRun
	opts   Options
	target restore.Target // once made: Abort removes what its load created
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
	r.emit(PhaseStart, name, 0)
	err := fn()
	d := time.Since(start)
	r.run.Phases = append(r.run.Phases, Phase{Name: name, Duration: d})
	r.run.RTO += d
	r.emit(PhaseEnd, name, d)
	return err
}

// verdict sets the run's verdict: passed when it has checks and all
// passed.
func (r *runner) verdict() {
	r.run.Passed = len(r.run.Checks) > 0
	for _, c := range r.run.Checks {
		r.run.Passed = r.run.Passed && c.Passed
	}
	r.emit(SnapshotEnd, "", r.run.RTO)
}

// begin saves the run's marker and makes its work directory. The marker
// comes first, and names each resource before it exists: a drill killed
// at any point leaves nothing that cleanup does not know of.
func (r *runner) begin(name string) (string, *marker, bool) {
	r.emit(SnapshotStart, "", 0)
	dir := filepath.Join(tempDir(r.opts.TempDir), workPrefix+name)
	m := &marker{ID: name, PID: os.Getpid(), Started: r.opts.Now().UTC(), Dir: dir}
	if err := m.save(r.opts.StateDir); !r.must("scratch", err) {
		return "", nil, false
	}
	if err := os.Mkdir(dir, 0o700); !r.must("scratch", err) {
		m.remove(r.opts.StateDir)
		return "", nil, false
	}
	return dir, m, true
}

func drillOne(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, history []*repository.Snapshot, name string, opts Options) (run SnapshotRun) {
	run = SnapshotRun{Snapshot: snap.ID().String(), Source: snap.Source, Engine: snap.Engine, SnapshotAt: snap.Time,
		Size: snap.Size, RPO: rpo(snap, history, opts.Now())}
	r := &runner{run: &run, opts: opts}
	defer r.verdict()
	dir, m, ok := r.begin(name)
	if !ok {
		return run
	}
	sc, stop, err := prepareScratch(ctx, snap.Engine, dir, scratchPrefix+name, opts, m)
	if !r.must("scratch", err) {
		os.RemoveAll(dir)
		m.remove(opts.StateDir)
		return run
	}
	run.Target = sc.String()
	m.Scratch = sc
	saved := m.save(opts.StateDir)
	defer func() {
		err := stop.do(context.WithoutCancel(ctx), sc, dir, r.target)
		if err == nil {
			err = m.remove(opts.StateDir)
		}
		r.check("scratch removed", err, fmt.Sprintf("%s and the work directory were removed", sc))
	}()
	if !r.must("scratch", saved) {
		return run
	}
	r.steps(ctx, repo, snap, sc, dir)
	return run
}

// steps restores, loads, verifies and asserts, stopping at the first
// step whose failure makes the next meaningless.
func (r *runner) steps(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, sc *scratch, dir string) {
	dump, err := spool(dir)
	if !r.must("chunks and stream digest", err) {
		return
	}
	defer dump.Close()
	err = r.phase("download and decrypt", func() error {
		_, err := restore.Run(ctx, repo, snap, dump, restore.Options{})
		return err
	})
	if !r.check("chunks and stream digest", err, fmt.Sprintf("%d chunks decrypted and matched their ids; the %d-byte stream matched its digest", snap.ChunksTotal, snap.Size)) {
		return
	}
	var want engine.Report
	if !r.check("table digests recorded", repo.OpenPrivate(snap, &want), fmt.Sprintf("%d tables recorded at backup time", len(want.Tables))) {
		return
	}
	target, err := sc.target(r.opts.Jobs, dir, r.opts.Mask)
	if !r.must("load", err) {
		return
	}
	r.target = target
	err = r.phase("load", func() error {
		if _, err := dump.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return target.Load(ctx, dump, want)
	})
	if !r.check("load", err, "the dump loaded without error into "+sc.String()) {
		return
	}
	dump.Close() // customer data: its space is freed as soon as it is loaded
	if r.opts.AfterLoad != nil {
		db, err := sc.open(ctx)
		if !r.must("connect to scratch", err) {
			return
		}
		err = r.opts.AfterLoad(ctx, db)
		db.Close()
		if err != nil {
			r.check("test hook", err, "")
		}
	}
	if len(r.opts.Assertions) > 0 {
		// After the verification, which the reader's login may serve too:
		// the reader can log in no more once the assertions' connection
		// is open (OpenReader).
		defer func() {
			db, err := openReader(ctx, target, sc)
			if !r.must("connect to scratch", err) {
				return
			}
			defer db.Close()
			r.assertions(ctx, db)
		}()
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
	res := engine.Compare(restore.Expected(target, want.Tables), got)
	for _, t := range res {
		r.run.Tables = append(r.run.Tables, TableCheck{t})
	}
	r.check("tables", tablesVerdict(res), fmt.Sprintf("all %d tables have the row counts and digests recorded at backup time", len(res)))
}

// spool creates the file the restored dump is written to, and unlinks it
// at once: the dump is read back through the open file, so that no
// plaintext outlives the process, even when it is killed.
func spool(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "dump"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readerTarget is a target that can connect to what it loaded with no
// more rights than reading it (the PostgreSQL and MariaDB targets).
type readerTarget interface {
	OpenReader(ctx context.Context) (*sql.DB, error)
}

// openReader connects for the assertions. They are the operator's, but
// the objects they read are the snapshot's: a view in it may call a
// function the backup host wrote, which runs with the rights of whoever
// queries. So they run as the target's reader role where it has one,
// never as the scratch server's superuser.
func openReader(ctx context.Context, t restore.Target, sc *scratch) (*sql.DB, error) {
	if rt, ok := t.(readerTarget); ok {
		return rt.OpenReader(ctx)
	}
	return sc.open(ctx)
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

// stopper undoes a scratch: drops the database, stops an ephemeral
// server, removes the work directory.
type stopper struct {
	dir  string // an ephemeral server's directory, if any
	stop func(context.Context) error
}

func (s *stopper) do(ctx context.Context, sc *scratch, work string, target restore.Target) error {
	var errs []error
	if s.stop != nil {
		errs = append(errs, s.stop(ctx)) // the whole server goes, its databases and roles with it
	} else {
		if target != nil {
			errs = append(errs, target.Abort(ctx)) // what the load made: the database, its roles
		}
		errs = append(errs, sc.drop(ctx))
	}
	errs = append(errs, os.RemoveAll(work))
	return errors.Join(errs...)
}
