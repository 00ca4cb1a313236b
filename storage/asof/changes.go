package asof

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/storage"
)

// Changes is how a store differs from what it was at a moment.
type Changes struct {
	// Restore holds, for every object deleted or overwritten since, the
	// version that was current at the moment.
	Restore []storage.Version
	// Newer holds the current versions of objects that did not exist at
	// the moment (written since, or written again after a delete).
	Newer []storage.Version
	// Same counts the objects unchanged since (or restored already: a
	// copy of the version of the moment counts as unchanged).
	Same int
}

// Compare lists every version under prefix and says what changed since
// the moment at.
func Compare(ctx context.Context, src Source, prefix string, at time.Time) (*Changes, error) {
	c := &Changes{}
	err := group(ctx, src, prefix, func(_ string, vs []storage.Version) {
		then := Pick(vs, at)
		var now storage.Version
		for _, x := range vs {
			if x.Latest {
				now = x
			}
		}
		existed := then.ID != "" && !then.Deleted
		exists := now.ID != "" && !now.Deleted
		switch {
		case existed && (!exists || !same(now, then)):
			c.Restore = append(c.Restore, then)
		case !existed && exists:
			c.Newer = append(c.Newer, now)
		case existed:
			c.Same++
		}
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// same reports whether two versions hold the same content: the same
// version, or a copy of it (which S3 gives the same tag and size).
func same(a, b storage.Version) bool {
	return a.ID == b.ID || (a.ETag != "" && a.ETag == b.ETag && a.Size == b.Size)
}

// Restorer is a store that can make an old version current again
// (storage/s3).
type Restorer interface {
	// RestoreVersion copies a version of the object to be its current
	// version, retained until retainUntil when that is set.
	RestoreVersion(ctx context.Context, name, version string, retainUntil time.Time) error
}

// Hider is a store that can hide an object behind a delete marker,
// keeping its versions (storage/s3).
type Hider interface {
	Hide(ctx context.Context, name string) error
}

// restoreWorkers bounds the copies in flight: each is one request the
// server carries out.
const restoreWorkers = 8

// Apply makes every version in vs current again, several at a time; the
// first failure stops the rest and is returned. Run again, Compare then
// finds only what is left to do.
func Apply(ctx context.Context, r Restorer, vs []storage.Version, retainUntil time.Time) error {
	return each(ctx, vs, func(ctx context.Context, x storage.Version) error {
		return r.RestoreVersion(ctx, x.Name, x.ID, retainUntil)
	})
}

// HideAll hides every object of vs behind a delete marker, several at a
// time; the first failure stops the rest and is returned.
func HideAll(ctx context.Context, h Hider, vs []storage.Version) error {
	return each(ctx, vs, func(ctx context.Context, x storage.Version) error { return h.Hide(ctx, x.Name) })
}

func each(ctx context.Context, vs []storage.Version, fn func(context.Context, storage.Version) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(restoreWorkers)
	for _, x := range vs {
		g.Go(func() error { return fn(ctx, x) })
	}
	return g.Wait()
}
