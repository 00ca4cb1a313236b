package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/storage"
)

// lockSlack is how far past the needed date a reused object's retention is
// extended, so that an object reused every night costs one retention
// request a week rather than one a night.
const lockSlack = 7 * 24 * time.Hour

// lockModeSetter is implemented by backends whose retention mode is set
// from the repository's config (storage/s3).
type lockModeSetter interface {
	SetLockMode(mode string) error
}

// lockChecker is implemented by backends that can tell whether Object Lock
// is enabled (storage/s3).
type lockChecker interface {
	ObjectLockEnabled(ctx context.Context) (bool, error)
}

// setupLock prepares be for the config's lock policy.
func setupLock(ctx context.Context, be storage.Backend, l *ObjectLock) error {
	if l == nil {
		return nil
	}
	chk, ok := storage.Find[lockChecker](be)
	if !ok {
		return fmt.Errorf("%s cannot lock objects: Object Lock needs an S3 bucket created with it", be.Location())
	}
	on, err := chk.ObjectLockEnabled(ctx)
	if err != nil {
		return fmt.Errorf("object lock on %s: %w", be.Location(), err)
	}
	if !on {
		return fmt.Errorf("bucket of %s does not have Object Lock enabled: create the bucket with it (coffer init creates a missing bucket so), or init without --lock", be.Location())
	}
	if s, ok := storage.Find[lockModeSetter](be); ok {
		return s.SetLockMode(l.Mode)
	}
	return nil
}

// SetClock replaces the clock that dates retention (for tests that
// simulate days passing).
func (r *Repo) SetClock(now func() time.Time) { r.now = now }

func (r *Repo) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// putOptions returns the options for storing a data or metadata object:
// retained for the lock policy's days from now, when there is one.
func (r *Repo) putOptions() storage.PutOptions {
	if r.cfg == nil || r.cfg.Lock == nil {
		return storage.PutOptions{}
	}
	return storage.PutOptions{RetainUntil: r.clock().Add(time.Duration(r.cfg.Lock.Days) * 24 * time.Hour)}
}

// ExtendRetention makes every object that snapshot s depends on (its
// chunk lists, the packs of its chunks and the index objects listing them)
// retained at least as long as s. It reads s's chunk lists; a backup,
// which knows the packs it reused, calls ExtendRetentionOf instead. It
// costs one retention read per object and one write per object whose
// retention was shorter (see docs/format.md).
func (r *Repo) ExtendRetention(ctx context.Context, idx *Index, s *Snapshot) (extended int, err error) {
	if r.cfg.Lock == nil {
		return 0, nil
	}
	packs := map[ID]bool{}
	err = r.SnapshotChunks(ctx, s, func(c ID) error {
		p, _, ok, err := idx.Lookup(c)
		if ok {
			packs[p.ID] = true
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return r.ExtendRetentionOf(ctx, idx, s.Lists, packs)
}

// ExtendRetentionOf makes the given chunk lists and packs, and every index
// object of idx, retained at least as long as a snapshot written now.
func (r *Repo) ExtendRetentionOf(ctx context.Context, idx *Index, lists []ID, packs map[ID]bool) (extended int, err error) {
	if r.cfg.Lock == nil {
		return 0, nil
	}
	ret, ok := storage.Find[storage.Retainer](r.be)
	if !ok {
		return 0, errors.New("the repository has an object lock policy but its storage cannot retain objects")
	}
	need := r.putOptions().RetainUntil
	objects := map[string]bool{}
	for p := range packs {
		objects[PackName(p)] = true
	}
	for _, l := range lists {
		objects[chunkListDir+"/"+l.String()] = true
	}
	for _, f := range idx.Files() {
		objects["index/"+f.String()] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	var n = make(chan struct{}, len(objects))
	for name := range objects {
		g.Go(func() error {
			until, err := ret.Retention(gctx, name)
			if err != nil {
				return fmt.Errorf("retention of %s: %w", name, err)
			}
			if !until.Before(need) {
				return nil
			}
			if err := ret.SetRetention(gctx, name, need.Add(lockSlack)); err != nil {
				return fmt.Errorf("extend retention of %s: %w", name, err)
			}
			n <- struct{}{}
			return nil
		})
	}
	err = g.Wait()
	return len(n), err
}
