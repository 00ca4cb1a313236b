package repository

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/storage"
)

// Blob locates one chunk inside a pack's plaintext.
type Blob struct {
	ID  ID     `json:"id"`
	Off uint32 `json:"off"` // offset in the pack plaintext
	Len uint32 `json:"len"` // compressed length
	Raw uint32 `json:"raw"` // chunk length
}

// PackEntry is one pack in an index object.
type PackEntry struct {
	ID    ID     `json:"id"`
	Size  int64  `json:"size"`  // ciphertext bytes
	Plain int64  `json:"plain"` // plaintext bytes
	Blobs []Blob `json:"blobs"`
	// Gen is the generation of the repository key the pack is encrypted
	// to; 0 (absent) is generation 1.
	Gen int `json:"gen,omitempty"`
}

// Generation returns the generation of the key the pack is encrypted to.
func (e PackEntry) Generation() int { return max(e.Gen, 1) }

// IndexFile is the content of an `index/ID` object.
type IndexFile struct {
	Version    int         `json:"version"`
	Supersedes []ID        `json:"supersedes,omitempty"`
	Packs      []PackEntry `json:"packs"`
}

// PackInfo describes a stored pack.
type PackInfo struct {
	ID    ID
	Size  int64
	Plain int64
}

type location struct {
	pack          uint32
	off, len, raw uint32
}

// Index maps chunk ids to their place in packs. It is safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	packs  []PackInfo
	packNo map[ID]uint32
	chunks map[ID]location
	files  []ID
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{packNo: map[ID]uint32{}, chunks: map[ID]location{}}
}

// Add records the packs of an index file.
func (ix *Index) Add(packs []PackEntry) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, p := range packs {
		no, ok := ix.packNo[p.ID]
		if !ok {
			no = uint32(len(ix.packs))
			ix.packs = append(ix.packs, PackInfo{ID: p.ID, Size: p.Size, Plain: p.Plain})
			ix.packNo[p.ID] = no
		}
		for _, b := range p.Blobs {
			if _, dup := ix.chunks[b.ID]; !dup {
				ix.chunks[b.ID] = location{pack: no, off: b.Off, len: b.Len, raw: b.Raw}
			}
		}
	}
}

// Has reports whether a chunk is stored.
func (ix *Index) Has(id ID) bool {
	ix.mu.RLock()
	_, ok := ix.chunks[id]
	ix.mu.RUnlock()
	return ok
}

// Lookup returns where a chunk is stored.
func (ix *Index) Lookup(id ID) (PackInfo, Blob, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	loc, ok := ix.chunks[id]
	if !ok {
		return PackInfo{}, Blob{}, false
	}
	return ix.packs[loc.pack], Blob{ID: id, Off: loc.off, Len: loc.len, Raw: loc.raw}, true
}

// Packs returns every indexed pack.
func (ix *Index) Packs() []PackInfo {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return append([]PackInfo(nil), ix.packs...)
}

// Files returns the ids of the index objects loaded.
func (ix *Index) Files() []ID {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return append([]ID(nil), ix.files...)
}

// Len returns the number of distinct chunks.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.chunks)
}

// ForEachBlob calls fn for every indexed chunk.
func (ix *Index) ForEachBlob(fn func(PackInfo, Blob)) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for id, loc := range ix.chunks {
		fn(ix.packs[loc.pack], Blob{ID: id, Off: loc.off, Len: loc.len, Raw: loc.raw})
	}
}

// SaveIndex stores an index object listing packs.
func (r *Repo) SaveIndex(ctx context.Context, f *IndexFile) (ID, error) {
	f.Version = FormatVersion
	return r.saveMeta(ctx, "index", "index", f, true)
}

// LoadIndexFile reads and authenticates one index object.
func (r *Repo) LoadIndexFile(ctx context.Context, id ID) (*IndexFile, error) {
	name := "index/" + id.String()
	var f IndexFile
	if err := r.loadMeta(ctx, "index", "index", id, &f); err != nil {
		return nil, err
	}
	if f.Version != FormatVersion {
		return nil, &UnsupportedVersionError{Object: name, Version: f.Version}
	}
	return &f, nil
}

// ListIDs returns the ids of the objects under dir ("index", "snapshots").
func (r *Repo) ListIDs(ctx context.Context, dir string) ([]ID, error) {
	var ids []ID
	err := r.listIDs(ctx, dir, nil, func(id ID) { ids = append(ids, id) })
	return ids, err
}

// listIDs calls id for each object under dir named by an id, and foreign
// (when set) with the name of every other object, which is not coffer's.
func (r *Repo) listIDs(ctx context.Context, dir string, foreign func(string), id func(ID)) error {
	err := r.be.List(ctx, dir+"/", func(fi storage.Info) error {
		x, err := ParseID(strings.TrimPrefix(fi.Name, dir+"/"))
		switch {
		case err == nil && id != nil:
			id(x)
		case err != nil && foreign != nil:
			foreign(fi.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s/ in %s: %w", dir, r.be.Location(), err)
	}
	return nil
}

// LoadIndex reads every index object, honouring supersedes. An index
// object that vanishes while it is read was superseded by a prune that
// wrote its replacement first: the listing is then taken again.
func (r *Repo) LoadIndex(ctx context.Context) (*Index, error) {
	for attempt := 0; ; attempt++ {
		ix, err := r.loadIndexOnce(ctx)
		if err == nil || !isNotFound(err) || attempt == 4 {
			return ix, err
		}
	}
}

func (r *Repo) loadIndexOnce(ctx context.Context) (*Index, error) {
	ids, err := r.ListIDs(ctx, "index")
	if err != nil {
		return nil, err
	}
	files := make([]*IndexFile, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, id := range ids {
		g.Go(func() error {
			f, err := r.LoadIndexFile(gctx, id)
			files[i] = f
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	superseded := map[ID]bool{}
	for _, f := range files {
		for _, s := range f.Supersedes {
			superseded[s] = true
		}
	}
	ix := NewIndex()
	for i, f := range files {
		if superseded[ids[i]] {
			continue
		}
		ix.Add(f.Packs)
		ix.files = append(ix.files, ids[i])
	}
	return ix, nil
}

// dropPacks forgets the chunks stored in the given packs.
func (ix *Index) dropPacks(packs map[ID]bool) {
	if len(packs) == 0 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for id, loc := range ix.chunks {
		if packs[ix.packs[loc.pack].ID] {
			delete(ix.chunks, id)
		}
	}
}
