package repository

import (
	"context"
	"math/bits"
	"sort"

	"github.com/coffer-backup/coffer/storage"
)

// SourceStats describes one source's snapshots.
type SourceStats struct {
	Source    string `json:"source"`
	Snapshots int    `json:"snapshots"`
	Logical   int64  `json:"size_bytes"` // the sum of their stream sizes
	// Stored is the compressed size of the distinct chunks its snapshots
	// reference; Unique the part of it no other source references (what
	// forgetting every snapshot of the source would free, less the
	// packs' overhead).
	Stored int64 `json:"stored_bytes"`
	Unique int64 `json:"unique_bytes"`
}

// Stats describes the repository's use of storage.
type Stats struct {
	Sources    []SourceStats `json:"sources"`
	Snapshots  int           `json:"snapshots"`
	Logical    int64         `json:"size_bytes"`  // every snapshot's stream, added up
	Chunks     int           `json:"chunks"`      // distinct chunks indexed
	ChunkBytes int64         `json:"chunk_bytes"` // their plaintext size
	Packs      int           `json:"packs"`
	Stored     int64         `json:"stored_bytes"` // packs and the metadata of snapshots (data/, index/, snapshots/, chunklists/)
	PackBytes  int64         `json:"pack_bytes"`   // the packs alone
	DedupRatio float64       `json:"dedup_ratio"`  // logical / stored: both savings, and the metadata's cost
	// Dedup is logical / chunk bytes (what deduplication saves);
	// Compression is chunk bytes / pack bytes (what zstd saves, less
	// encryption's overhead). 0 when there is nothing to divide by.
	Dedup       float64 `json:"dedup_factor"`
	Compression float64 `json:"compression_factor"`
	LockedBytes int64   `json:"locked_bytes"` // packs under Object Lock retention now
	// Unreferenced is the compressed size of the chunks no snapshot
	// references inside packs that hold a referenced one too: what
	// repacking would free. UnreferencedPacks are the bytes of packs no
	// snapshot references at all, which prune deletes.
	Unreferenced      int64 `json:"unreferenced_live_pack_bytes"`
	UnreferencedPacks int64 `json:"unreferenced_pack_bytes"`
	// PerSource says whether the sources' Stored and Unique were counted
	// (at most 64 sources).
	PerSource bool `json:"per_source_bytes"`
}

// Stats adds up what the repository holds. With an Object Lock policy it
// reads every pack's retention (one request per pack).
func (r *Repo) Stats(ctx context.Context) (*Stats, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	st := &Stats{}
	bySource := map[string]*SourceStats{}
	for _, s := range snaps {
		ss := bySource[s.Source]
		if ss == nil {
			ss = &SourceStats{Source: s.Source}
			bySource[s.Source] = ss
		}
		ss.Snapshots++
		ss.Logical += s.Size
		st.Snapshots++
		st.Logical += s.Size
	}
	for _, ss := range bySource {
		st.Sources = append(st.Sources, *ss)
	}
	sort.Slice(st.Sources, func(i, j int) bool { return st.Sources[i].Source < st.Sources[j].Source })
	idx, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	if err := r.referencedBytes(ctx, st, snaps, idx); err != nil {
		return nil, err
	}
	packs := map[string]int64{}
	for _, dir := range []string{"data/", "index/", "snapshots/", "chunklists/"} {
		err := r.be.List(ctx, dir, func(fi storage.Info) error {
			st.Stored += fi.Size
			if dir == "data/" {
				packs[fi.Name] = fi.Size
				st.PackBytes += fi.Size
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	st.Packs = len(packs)
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	st.DedupRatio = ratio(st.Logical, st.Stored)
	st.Dedup = ratio(st.Logical, st.ChunkBytes)
	st.Compression = ratio(st.ChunkBytes, st.PackBytes)
	if st.LockedBytes, err = r.lockedBytes(ctx, packs); err != nil {
		return nil, err
	}
	return st, nil
}

func (r *Repo) lockedBytes(ctx context.Context, packs map[string]int64) (int64, error) {
	names := make([]string, 0, len(packs))
	for name := range packs {
		names = append(names, name)
	}
	retained, err := r.retainedPacks(ctx, names)
	if err != nil {
		return 0, err
	}
	var locked int64
	for name := range retained {
		locked += packs[name]
	}
	return locked, nil
}

// maxSourceBits is how many sources referencedBytes tells apart: each
// referenced chunk holds a bit mask of the sources referencing it.
const maxSourceBits = 64

// referencedBytes counts the distinct chunks and, by which sources
// reference them, the stored bytes of each source, those only it
// references, and the bytes no snapshot references (st.Sources must be
// sorted). It holds one entry per referenced chunk. With more than
// maxSourceBits sources the per-source bytes are left out
// (st.PerSource false).
func (r *Repo) referencedBytes(ctx context.Context, st *Stats, snaps []*Snapshot, idx *Index) error {
	st.PerSource = len(st.Sources) <= maxSourceBits
	srcNo := map[string]uint{}
	for i, ss := range st.Sources {
		srcNo[ss.Source] = uint(i % maxSourceBits)
	}
	refs := map[ID]uint64{} // bit i: source i references the chunk
	for _, s := range snaps {
		bit := uint64(1) << srcNo[s.Source]
		err := r.SnapshotChunks(ctx, s, func(c ID) error {
			refs[c] |= bit
			return nil
		})
		if err != nil {
			return err
		}
	}
	packs := map[ID]*packUse{}
	err := idx.ForEachBlob(func(p PackInfo, b Blob) {
		st.Chunks++
		st.ChunkBytes += int64(b.Raw)
		u := packs[p.ID]
		if u == nil {
			u = &packUse{size: p.Size}
			packs[p.ID] = u
		}
		mask, ok := refs[b.ID]
		u.add(b, ok)
		if !ok || !st.PerSource {
			return
		}
		for m := mask; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			st.Sources[i].Stored += int64(b.Len)
			if mask == 1<<uint(i) {
				st.Sources[i].Unique += int64(b.Len)
			}
		}
	})
	if err != nil {
		return err
	}
	for _, u := range packs {
		if u.ref > 0 {
			st.Unreferenced += u.unused()
		} else {
			st.UnreferencedPacks += u.size
		}
	}
	return nil
}
