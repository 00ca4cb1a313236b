package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/mysql"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/repository"
)

// Target is a database a snapshot can be loaded into.
type Target interface {
	// Load reads the dump stream into the database. rep is what the
	// snapshot recorded about the stream (its parts, its tables).
	Load(ctx context.Context, r io.Reader, rep engine.Report) error
	// Digests computes the per-table digests of the loaded database.
	Digests(ctx context.Context) ([]engine.TableDigest, error)
	// Engine is the engine whose snapshots it loads: postgres, mysql, sqlite.
	Engine() string
	// String names the target for messages, without secrets.
	String() string
}

// TargetOptions tune how a target loads.
type TargetOptions struct {
	Clean bool // replace what the target holds
	Jobs  int  // parallel load jobs, where the engine can
}

// DBOptions tune a restore into a database.
type DBOptions struct {
	Options
	Verify bool // compare per-table digests after loading
}

// DBSummary describes a restore into a database.
type DBSummary struct {
	Summary
	Load   time.Duration        // stream and load, together
	Verify time.Duration        // digests of the loaded database
	Tables []engine.TableResult // per-table comparison, when verified
}

// ParseTarget turns a --to address into a Target.
func ParseTarget(addr string, opts TargetOptions) (Target, error) {
	switch {
	case strings.HasPrefix(addr, "sqlite:"):
		return &sqliteTarget{path: strings.TrimPrefix(addr, "sqlite:"), clean: opts.Clean}, nil
	case strings.HasPrefix(addr, "mysql://"), strings.HasPrefix(addr, "mariadb://"):
		return mysql.NewTarget(addr, opts.Clean, opts.Jobs)
	case strings.HasPrefix(addr, "postgres://"), strings.HasPrefix(addr, "postgresql://"):
		return postgres.NewTarget(addr, opts.Clean, opts.Jobs)
	}
	return nil, fmt.Errorf("restore target %q: give sqlite:PATH, postgres://… or mysql://…", addr)
}

// ToDatabase streams snapshot snap into target and, with Verify, compares
// the loaded tables with the digests recorded at backup time.
func ToDatabase(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, target Target, opts DBOptions) (*DBSummary, error) {
	if snap.Engine != target.Engine() {
		return nil, fmt.Errorf("snapshot %s is a %s backup and cannot be loaded into %s: restore it into a %s target, or with --output", snap.ID().Short(), snap.Engine, target, snap.Engine)
	}
	if len(snap.Private) == 0 {
		return nil, fmt.Errorf("snapshot %s is a %s backup, not a database dump: restore it with --output", snap.ID().Short(), snap.Engine)
	}
	var want engine.Report
	if err := repo.OpenPrivate(snap, &want); err != nil {
		return nil, err
	}
	start := time.Now()
	pr, pw := io.Pipe()
	g, gctx := errgroup.WithContext(ctx)
	var sum *Summary
	g.Go(func() error {
		var err error
		sum, err = Run(gctx, repo, snap, pw, opts.Options)
		pw.CloseWithError(err)
		return err
	})
	g.Go(func() error {
		err := target.Load(gctx, pr, want)
		pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("restore snapshot %s into %s: %w", snap.ID().Short(), target, err)
	}
	out := &DBSummary{Summary: *sum, Load: time.Since(start)}
	if !opts.Verify {
		return out, nil
	}
	vstart := time.Now()
	got, err := target.Digests(ctx)
	if err != nil {
		return out, fmt.Errorf("verify %s: %w", target, err)
	}
	out.Verify = time.Since(vstart)
	out.Tables = engine.Compare(want.Tables, got)
	return out, nil
}

type sqliteTarget struct {
	path  string
	clean bool
}

func (t *sqliteTarget) Load(ctx context.Context, r io.Reader, _ engine.Report) error {
	return sqlite.Load(ctx, r, t.path, t.clean)
}

func (t *sqliteTarget) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	return sqlite.Digests(ctx, t.path)
}

func (t *sqliteTarget) String() string { return "sqlite:" + t.path }

func (t *sqliteTarget) Engine() string { return "sqlite" }
