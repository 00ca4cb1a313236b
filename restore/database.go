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
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/repository"
)

// Target is a database a snapshot can be loaded into.
type Target interface {
	// Load reads the dump stream into the database.
	Load(ctx context.Context, r io.Reader) error
	// Digests computes the per-table digests of the loaded database.
	Digests(ctx context.Context) ([]engine.TableDigest, error)
	// String names the target for messages, without secrets.
	String() string
}

// DBOptions tune a restore into a database.
type DBOptions struct {
	Options
	Clean  bool // replace a non-empty target
	Verify bool // compare per-table digests after loading
}

// DBSummary describes a restore into a database.
type DBSummary struct {
	Summary
	Load   time.Duration        // stream and load, together
	Verify time.Duration        // digests of the loaded database
	Tables []engine.TableResult // per-table comparison, when verified
}

// ParseTarget turns a --to address into a Target for a snapshot of engine.
func ParseTarget(addr string, clean bool) (Target, error) {
	switch {
	case strings.HasPrefix(addr, "sqlite:"):
		return &sqliteTarget{path: strings.TrimPrefix(addr, "sqlite:"), clean: clean}, nil
	}
	return nil, fmt.Errorf("restore target %q: give sqlite:PATH, postgres://… or mysql://…", addr)
}

// ToDatabase streams snapshot snap into target and, with Verify, compares
// the loaded tables with the digests recorded at backup time.
func ToDatabase(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, target Target, opts DBOptions) (*DBSummary, error) {
	var want engine.Report
	if opts.Verify {
		if len(snap.Private) == 0 {
			return nil, fmt.Errorf("snapshot %s has no per-table digests (it is a %s backup): restore it with --output, or pass --verify=false", snap.ID().Short(), snap.Engine)
		}
		if err := repo.OpenPrivate(snap, &want); err != nil {
			return nil, err
		}
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
		err := target.Load(gctx, pr)
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

func (t *sqliteTarget) Load(ctx context.Context, r io.Reader) error {
	return sqlite.Load(ctx, r, t.path, t.clean)
}

func (t *sqliteTarget) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	return sqlite.Digests(ctx, t.path)
}

func (t *sqliteTarget) String() string { return "sqlite:" + t.path }
