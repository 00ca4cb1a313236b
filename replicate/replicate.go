// Package replicate copies a coffer repository, or the snapshots of some
// of its sources, into a second repository on any backend: the same
// repository id and keys, every object carried as ciphertext, so the writer
// key suffices and nothing is decrypted (docs/format.md, "Copies").
//
// Every object read from the source is authenticated before it is carried
// (packs against their names, metadata against the writer key's MAC), so a
// planted object is named and left behind rather than laundered into the
// copy; and the copy writes in a backup's order (packs, then the index
// listing them, then chunk lists, then snapshots), so a copy killed at any
// point leaves no snapshot at the destination whose objects are missing.
package replicate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// Options select what a copy carries and how.
type Options struct {
	// Sources, when set, limit the copy to the snapshots of these sources.
	Sources []string
	// Snapshots, when set, limit it to these snapshots (ids or unique
	// prefixes).
	Snapshots []string
	// Lock is the Object Lock policy of a destination that the copy
	// initialises; nil takes the source's. Ignored when the destination
	// exists: its config says.
	Lock *repository.ObjectLock
	// KeepSourceLock, when Lock is nil, makes a new destination take the
	// source's Object Lock policy; otherwise it gets none.
	KeepSourceLock bool
	Host           string // for the locks
	Timing         repository.LockTiming
	Now            func() time.Time
	Parallel       int // packs in flight; default GOMAXPROCS, at least 2
	// Warn is told of source objects that are not carried (planted,
	// damaged) and of snapshots forgotten during the copy.
	Warn func(error)
	// AfterPacks, when set, is called once the packs and index objects
	// are stored, before any chunk list or snapshot (crash tests).
	AfterPacks func()
}

// Summary says what a copy did.
type Summary struct {
	Source           string        `json:"source"`
	Destination      string        `json:"destination"`
	Initialised      bool          `json:"initialised"`       // the destination was created by this copy
	Snapshots        int           `json:"snapshots"`         // snapshots copied
	SnapshotsPresent int           `json:"snapshots_present"` // selected snapshots the destination already held
	SnapshotsDropped int           `json:"snapshots_dropped"` // carried before, since forgotten at the destination
	Packs            int           `json:"packs"`             // packs copied
	PacksPresent     int           `json:"packs_present"`     // packs the destination already held, unindexed
	Bytes            int64         `json:"copied_bytes"`      // bytes of packs copied
	Lists            int           `json:"lists"`             // chunk lists copied
	Records          int           `json:"records"`           // audit, drill and WAL objects copied
	Refused          []string      `json:"refused,omitempty"` // source objects not carried, and why
	Duration         time.Duration `json:"-"`                 // cmd/coffer prints duration_seconds
}

// Copy copies the selected snapshots of src (opened with the writer key),
// and everything they need, into dst, initialising it on first use.
func Copy(ctx context.Context, src *repository.Repo, dst storage.Backend, opts Options) (*Summary, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Parallel <= 0 {
		opts.Parallel = max(2, runtime.GOMAXPROCS(0))
	}
	if opts.Warn == nil {
		opts.Warn = func(error) {}
	}
	start := opts.Now()
	sum := &Summary{Source: src.Backend().Location(), Destination: dst.Location()}
	if dst.Location() == src.Backend().Location() {
		return nil, fmt.Errorf("copy: %s is the source itself: give a second repository with --to", dst.Location())
	}
	if err := checkSelection(ctx, src, opts); err != nil {
		return nil, err
	}
	to, initialised, err := openDestination(ctx, src, dst, opts)
	if err != nil {
		return nil, err
	}
	sum.Initialised = initialised
	lockOpts := repository.LockOptions{Host: opts.Host, PID: os.Getpid(), Now: opts.Now, Timing: opts.Timing}
	srcLock, err := src.AcquireLock(ctx, lockOpts)
	if err != nil {
		return nil, fmt.Errorf("copy: lock the source: %w", err)
	}
	defer srcLock.Release(context.WithoutCancel(ctx))
	dstLock, err := to.AcquireLock(ctx, lockOpts)
	if err != nil {
		return nil, fmt.Errorf("copy: lock the destination: %w", err)
	}
	defer dstLock.Release(context.WithoutCancel(ctx))
	c := &copier{src: src, dst: to, opts: opts, sum: sum, srcLock: srcLock, dstLock: dstLock}
	if err := c.run(ctx); err != nil {
		for _, l := range []*repository.Lock{srcLock, dstLock} {
			if lerr := l.Err(); lerr != nil {
				return nil, fmt.Errorf("copy: %w", lerr)
			}
		}
		return nil, err
	}
	sum.Duration = opts.Now().Sub(start)
	return sum, nil
}

// checkSelection refuses --source and --snapshot values that name no
// snapshot, before anything is written.
func checkSelection(ctx context.Context, src *repository.Repo, opts Options) error {
	if len(opts.Sources) == 0 && len(opts.Snapshots) == 0 {
		return nil
	}
	all, err := src.Snapshots(ctx)
	var damaged *repository.DamagedError
	if err != nil && !errors.As(err, &damaged) {
		return fmt.Errorf("copy: %w", err)
	}
	_, err = (&copier{src: src, opts: opts}).choose(all)
	return err
}

// copier is one run of Copy.
type copier struct {
	src, dst         *repository.Repo
	opts             Options
	sum              *Summary
	srcLock, dstLock *repository.Lock
}

func (c *copier) run(ctx context.Context) error {
	p, err := c.plan(ctx)
	if err != nil {
		return err
	}
	defer p.close()
	if err := c.copyPacks(ctx, p); err != nil {
		return err
	}
	if err := c.writeIndex(ctx, p); err != nil {
		return err
	}
	if c.opts.AfterPacks != nil {
		c.opts.AfterPacks()
	}
	if err := c.copyLists(ctx, p); err != nil {
		return err
	}
	// What the new snapshots reuse stays locked as long as they are.
	if len(p.snaps) > 0 {
		if _, err := c.dst.ExtendRetentionOf(ctx, p.dstIdx, p.listOrder, p.packSet()); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
	}
	// The audit log before the snapshots that witness its records, drill
	// records after the snapshots they name.
	if err := c.copyRecords(ctx, p, "audit"); err != nil {
		return err
	}
	if err := c.copySnapshots(ctx, p); err != nil {
		return err
	}
	if err := c.copyRecords(ctx, p, "drill"); err != nil {
		return err
	}
	if err := c.copyWAL(ctx, p); err != nil {
		return err
	}
	return c.recordCopy(ctx, p)
}

// refuse notes a source object that is not carried.
func (c *copier) refuse(err error) {
	c.sum.Refused = append(c.sum.Refused, err.Error())
	c.opts.Warn(err)
}

// lost returns why a lock was lost, or nil.
func (c *copier) lost() error {
	return errors.Join(c.srcLock.Err(), c.dstLock.Err())
}
