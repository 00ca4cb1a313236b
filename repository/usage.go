package repository

import (
	"context"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/storage"
)

// packUse is how many of a pack's blob bytes (compressed) a snapshot
// references. Stats adds them up; prune --repack chooses by them the packs
// it rewrites.
type packUse struct{ ref, unref, size int64 }

// add counts blob b, referenced or not.
func (u *packUse) add(b Blob, referenced bool) {
	if referenced {
		u.ref += int64(b.Len)
	} else {
		u.unref += int64(b.Len)
	}
}

// unused returns the bytes of a live pack (one holding a referenced
// chunk) that no snapshot references, what repacking it frees; 0 for a
// pack no snapshot references at all, which prune deletes whole.
func (u *packUse) unused() int64 {
	if u.ref == 0 {
		return 0
	}
	return u.unref
}

// unusedShare returns unused() as a share of the pack's blob bytes.
func (u *packUse) unusedShare() float64 {
	if u.ref == 0 {
		return 0
	}
	return float64(u.unref) / float64(u.ref+u.unref)
}

// packUsage counts the referenced and unreferenced bytes of each pack.
func packUsage(entries []PackEntry, refs map[ID]bool) map[ID]*packUse {
	out := make(map[ID]*packUse, len(entries))
	for _, e := range entries {
		u := &packUse{size: e.Size}
		for _, b := range e.Blobs {
			u.add(b, refs[b.ID])
		}
		out[e.ID] = u
	}
	return out
}

// retainedPacks returns those of names that Object Lock retains now (none
// without an Object Lock policy), one request per name.
func (r *Repo) retainedPacks(ctx context.Context, names []string) (map[string]bool, error) {
	out := map[string]bool{}
	ret, ok := storage.Find[storage.Retainer](r.be)
	if r.cfg.Lock == nil || !ok {
		return out, nil
	}
	now := r.clock()
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, name := range names {
		g.Go(func() error {
			until, err := ret.Retention(gctx, name)
			if err == nil && until.After(now) {
				mu.Lock()
				out[name] = true
				mu.Unlock()
			}
			return err
		})
	}
	return out, g.Wait()
}
