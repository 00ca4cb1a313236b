package repository

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/storage"
)

// CheckOptions select how deep Check goes.
type CheckOptions struct {
	// ReadData downloads packs, verifies their checksums, decrypts them and
	// verifies every chunk. It needs the repository key.
	ReadData bool
	// Subset selects the packs ReadData reads; the zero Subset reads all.
	Subset Subset
	// Progress, when set, is called after each pack read.
	Progress func(done, total int)
}

// Problem is one damaged or missing object.
type Problem struct {
	Object string `json:"object"`
	Reason string `json:"reason"`
}

// CheckReport is the result of Check.
type CheckReport struct {
	Snapshots    int      `json:"snapshots"`
	IndexFiles   int      `json:"index_files"`
	Packs        int      `json:"packs"`
	Subset       string   `json:"subset,omitempty"` // as given, e.g. "10%" or "2/3"
	PacksChosen  int      `json:"packs_chosen"`     // the packs the subset selected
	PacksRead    int      `json:"packs_read"`       // of those, the ones stored, and so read
	PacksDamaged int      `json:"packs_damaged"`    // of those read, the ones that failed
	ReadData     bool     `json:"read_data"`
	Unreferenced []string `json:"unreferenced_packs,omitempty"` // garbage, not damage
	// UnreferencedLists are chunk lists no snapshot names: garbage too.
	UnreferencedLists []string  `json:"unreferenced_lists,omitempty"`
	Problems          []Problem `json:"problems"`
}

// OK reports whether no problem was found.
func (c *CheckReport) OK() bool { return len(c.Problems) == 0 }

func (c *CheckReport) add(object, format string, args ...any) {
	c.Problems = append(c.Problems, Problem{Object: object, Reason: fmt.Sprintf(format, args...)})
}

// Check verifies the repository's structure: every index and snapshot
// decrypts and is authentic, every indexed pack exists with its size, every
// chunk list a snapshot names is stored, authentic and well formed, and
// every chunk a snapshot needs is indexed. With ReadData it also reads packs.
// It returns an error only when it cannot run; damage is in the report.
func (r *Repo) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	if opts.ReadData && r.data == nil {
		return nil, fmt.Errorf("check --read-data: %w", ErrNeedIdentity)
	}
	rep := &CheckReport{Problems: []Problem{}}
	stored := map[string]int64{}
	if err := r.be.List(ctx, "data/", func(fi storage.Info) error {
		stored[fi.Name] = fi.Size
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check: list data/ in %s: %w", r.be.Location(), err)
	}
	idx, err := r.checkIndex(ctx, rep)
	if err != nil {
		return nil, err
	}
	packs := idx.Packs()
	rep.Packs = len(packs)
	indexed := map[string]bool{}
	for _, p := range packs {
		name := PackName(p.ID)
		indexed[name] = true
		size, ok := stored[name]
		switch {
		case !ok:
			rep.add(name, "pack is listed in the index but missing from storage")
		case size != p.Size:
			rep.add(name, "pack is %d bytes, the index says %d (truncated or replaced)", size, p.Size)
		}
	}
	for name := range stored {
		if !indexed[name] {
			rep.Unreferenced = append(rep.Unreferenced, name)
		}
	}
	sort.Strings(rep.Unreferenced)
	if err := r.checkSnapshots(ctx, idx, rep); err != nil {
		return nil, err
	}
	if err := r.checkWAL(ctx, rep); err != nil {
		return nil, err
	}
	if opts.ReadData {
		if err := r.readData(ctx, idx, stored, opts, rep); err != nil {
			return nil, err
		}
	}
	sort.Slice(rep.Problems, func(i, j int) bool { return rep.Problems[i].Object < rep.Problems[j].Object })
	return rep, nil
}

func (r *Repo) checkIndex(ctx context.Context, rep *CheckReport) (*Index, error) {
	ids, err := r.ListIDs(ctx, "index")
	if err != nil {
		return nil, err
	}
	idx := NewIndex()
	superseded := map[ID]bool{}
	files := map[ID]*IndexFile{}
	for _, id := range ids {
		f, err := r.LoadIndexFile(ctx, id)
		if isNotFound(err) {
			continue // superseded and removed by a prune since the listing
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.add("index/"+id.String(), "%v", trimRemedy(err))
			continue
		}
		files[id] = f
		for _, s := range f.Supersedes {
			superseded[s] = true
		}
	}
	for id, f := range files {
		if !superseded[id] {
			if err := idx.Add(f.Packs); err != nil {
				return nil, err
			}
			rep.IndexFiles++
		}
	}
	return idx, nil
}

func (r *Repo) checkSnapshots(ctx context.Context, idx *Index, rep *CheckReport) error {
	ids, err := r.ListIDs(ctx, "snapshots")
	if err != nil {
		return err
	}
	// Lists shared by snapshots are read once: their missing chunks are
	// counted per list.
	read, lists, missingIn := chunkListCounts{}, map[ID]bool{}, map[ID]int{}
	for _, id := range ids {
		name := "snapshots/" + id.String()
		s, err := r.LoadSnapshot(ctx, id)
		if isNotFound(err) {
			continue // forgotten since the listing
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.add(name, "%v", trimRemedy(err))
			continue
		}
		rep.Snapshots++
		delete(missingIn, ID{}) // a version 1 snapshot's own chunks
		var hasErr error
		err = r.walkSnapshot(ctx, s, read, func(l ID) { lists[l] = true }, func(l, c ID) {
			ok, err := idx.Has(c)
			if err != nil && hasErr == nil {
				hasErr = err
			}
			if err == nil && !ok {
				missingIn[l]++
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.add(name, "%v", trimRemedy(err))
			continue
		}
		if hasErr != nil {
			return hasErr
		}
		missing := missingIn[ID{}]
		for _, l := range s.Lists {
			missing += missingIn[l]
		}
		if missing > 0 {
			rep.add(name, "%d of its %d chunks are in no index (their packs were deleted or never finished)", missing, s.ChunksTotal)
		}
	}
	return r.checkLists(ctx, lists, rep)
}

// checkLists notes the stored chunk lists that no snapshot references:
// garbage that prune removes, not damage.
func (r *Repo) checkLists(ctx context.Context, referenced map[ID]bool, rep *CheckReport) error {
	err := r.listIDs(ctx, chunkListDir, nil, func(id ID) {
		if !referenced[id] {
			rep.UnreferencedLists = append(rep.UnreferencedLists, chunkListDir+"/"+id.String())
		}
	})
	sort.Strings(rep.UnreferencedLists)
	return err
}

func (r *Repo) readData(ctx context.Context, idx *Index, stored map[string]int64, opts CheckOptions, rep *CheckReport) error {
	byPack := map[ID][]Blob{}
	if err := idx.ForEachBlob(func(p PackInfo, b Blob) { byPack[p.ID] = append(byPack[p.ID], b) }); err != nil {
		return err
	}
	rep.ReadData, rep.Subset = true, opts.Subset.String()
	var todo []PackInfo
	for _, p := range opts.Subset.choose(idx.Packs()) {
		rep.PacksChosen++
		if _, ok := stored[PackName(p.ID)]; !ok {
			continue // already reported
		}
		todo = append(todo, p)
	}
	results := make([]error, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var done atomic.Int64
	for i, p := range todo {
		g.Go(func() error {
			results[i] = r.readPack(gctx, p, byPack[p.ID])
			if opts.Progress != nil {
				opts.Progress(int(done.Add(1)), len(todo))
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, err := range results {
		rep.PacksRead++
		if err != nil {
			rep.PacksDamaged++
			rep.add(PackName(todo[i].ID), "%v", trimRemedy(err))
		}
	}
	return nil
}

func (r *Repo) readPack(ctx context.Context, p PackInfo, blobs []Blob) error {
	name := PackName(p.ID)
	ct, err := storage.ReadRange(ctx, r.be, name, 0, p.Size)
	if err != nil {
		return fmt.Errorf("cannot read: %w", err)
	}
	if !VerifyPackChecksum(p.ID, ct) {
		return fmt.Errorf("content does not match its name (SHA-256): altered or damaged")
	}
	if len(blobs) == 0 {
		return nil // every chunk of this pack is also in another; the checksum suffices
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Off < blobs[j].Off })
	mem := &memPack{name: name, data: ct}
	return r.readBlobsFrom(ctx, mem, p, blobs, func(Blob, []byte) error { return nil })
}

// trimRemedy drops the generic remedy from a CorruptError for the report,
// which gives its own.
func trimRemedy(err error) string {
	s := err.Error()
	if i := strings.Index(s, " (run `coffer check"); i > 0 {
		return s[:i]
	}
	return s
}

// checkWAL reports segments missing from the WAL archive between a
// physical base backup's start and the newest archived segment.
func (r *Repo) checkWAL(ctx context.Context, rep *CheckReport) error {
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return nil // reported by checkSnapshots
	}
	gaps, err := r.WALChain(ctx, snaps)
	if err != nil {
		return err
	}
	for _, g := range gaps {
		if g.Invalid != nil {
			rep.add("snapshots/"+g.Snapshot.String(), "%v", g.Invalid)
			continue
		}
		if g.Problem != nil {
			if g.Snapshot != (ID{}) {
				rep.add(g.Object, "base backup %s: %v", g.Snapshot.Short(), g.Problem)
			} else {
				rep.add(g.Object, "%v", g.Problem)
			}
			continue
		}
		rep.add("wal/"+g.Missing, "WAL segment %s is missing from the archive: base backup %s cannot be recovered past it (the archive holds up to %s); point-in-time recovery from it stops before this segment", g.Missing, g.Snapshot.Short(), g.Newest)
	}
	return nil
}
