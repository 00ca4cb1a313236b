package repository

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

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

// memSpill is how many chunks Add keeps in memory before it writes them,
// sorted, as a run (to the cache directory when there is one).
const memSpill = 1 << 16

// Index maps chunk ids to their place in packs. It is safe for concurrent
// use. The chunks of the index objects are in sorted runs (in the cache
// directory, see Repo.SetIndexCache; else in unlinked temporary files, or
// in memory at 48 bytes a chunk for NewIndex), so memory holds the packs
// and a sparse table, not the chunks.
// Lookups read runs and so can fail; a run that fails its
// authentication is never believed.
type Index struct {
	mu      sync.RWMutex
	store   *runStore
	packs   []PackInfo
	packNo  map[ID]uint32
	dropped []bool
	added   map[uint32]bool // packs that Add brought, not the index objects
	runs    []*idxRun       // from index objects
	session []*idxRun       // what Add spilled, newest last
	mem     map[ID]location
	files   []ID
	onBad   func(error) // told of a cache run that failed its checks
}

// NewIndex returns an empty index, kept in memory.
func NewIndex() *Index { return newIndexIn(memoryStore()) }

func newIndexIn(s *runStore) *Index {
	return &Index{store: s, packNo: map[ID]uint32{}, mem: map[ID]location{}}
}

// addPack returns the number of pack p, adding it. Callers hold mu.
func (ix *Index) addPack(p packRec) uint32 {
	no, ok := ix.packNo[p.id]
	if !ok {
		no = uint32(len(ix.packs))
		ix.packs = append(ix.packs, PackInfo{ID: p.id, Size: p.size, Plain: p.plain})
		ix.dropped = append(ix.dropped, false)
		ix.packNo[p.id] = no
	}
	return no
}

// attach adds a run that has its own pack table.
func (ix *Index) attach(ru *idxRun) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ru.packMap = make([]uint32, 0, ru.packs)
	if err := ru.load(func(p packRec) { ru.packMap = append(ru.packMap, ix.addPack(p)) }); err != nil {
		return err
	}
	ix.runs = append(ix.runs, ru)
	return nil
}

// Add records the packs of an index file.
func (ix *Index) Add(packs []PackEntry) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, p := range packs {
		_, known := ix.packNo[p.ID]
		no := ix.addPack(packRec{id: p.ID, size: p.Size, plain: p.Plain, gen: uint32(p.Gen)})
		if !known {
			if ix.added == nil {
				ix.added = map[uint32]bool{}
			}
			ix.added[no] = true
		}
		for _, b := range p.Blobs {
			if _, dup := ix.mem[b.ID]; !dup {
				ix.mem[b.ID] = location{pack: no, off: b.Off, len: b.Len, raw: b.Raw}
			}
		}
	}
	if len(ix.mem) < memSpill {
		return nil
	}
	recs := make([]record, 0, len(ix.mem))
	for id, l := range ix.mem {
		recs = append(recs, record{id: id, pack: l.pack, off: l.off, n: l.len, raw: l.raw})
	}
	ru, err := ix.store.sortedRun(recs, true)
	if err != nil {
		return err
	}
	ix.mem = map[ID]location{}
	ix.session = append(ix.session, ru)
	// Merge runs of like size, so that a long backup keeps a few runs
	// (lookups read each) at the cost of writing each record O(log n) times.
	for n := len(ix.session); n >= 2 && ix.session[n-1].records*2 >= ix.session[n-2].records; n = len(ix.session) {
		m, err := ix.store.merge(ix.session[n-2:], nil, nil, true)
		if err != nil {
			return err
		}
		ix.session[n-2].close()
		ix.session[n-1].close()
		ix.session = append(ix.session[:n-2], m)
	}
	return nil
}

// Has reports whether a chunk is stored.
func (ix *Index) Has(id ID) (bool, error) {
	_, _, ok, err := ix.Lookup(id)
	return ok, err
}

// Lookup returns where a chunk is stored. An error means the index could
// not be read (a damaged cache, which is then rebuilt at the next load).
func (ix *Index) Lookup(id ID) (PackInfo, Blob, bool, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if l, ok := ix.mem[id]; ok && !ix.dropped[l.pack] {
		return ix.packs[l.pack], Blob{ID: id, Off: l.off, Len: l.len, Raw: l.raw}, true, nil
	}
	for i := len(ix.session) - 1; i >= 0; i-- {
		if p, b, ok, err := ix.find(ix.session[i], id); ok || err != nil {
			return p, b, ok, err
		}
	}
	for _, ru := range ix.runs {
		if p, b, ok, err := ix.find(ru, id); ok || err != nil {
			return p, b, ok, err
		}
	}
	return PackInfo{}, Blob{}, false, nil
}

// find looks id up in one run, skipping dropped packs. Callers hold mu.
func (ix *Index) find(ru *idxRun, id ID) (PackInfo, Blob, bool, error) {
	var p PackInfo
	var b Blob
	found := false
	var bad error
	err := ru.find(id, func(r record) bool {
		g, ok := ix.global(ru, r.pack)
		if !ok {
			bad = &CacheError{Path: ru.name(), Reason: "a record names a pack it does not have"}
			return true
		}
		if ix.dropped[g] {
			return false
		}
		p, b, found = ix.packs[g], Blob{ID: id, Off: r.off, Len: r.n, Raw: r.raw}, true
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		ix.bad(err)
		return PackInfo{}, Blob{}, false, err
	}
	return p, b, found, nil
}

func (ix *Index) bad(err error) {
	if ix.onBad != nil {
		ix.onBad(err)
	}
}

// global maps a run's pack number to the index's.
func (ix *Index) global(ru *idxRun, no uint32) (uint32, bool) {
	if ru.packMap != nil {
		if int(no) >= len(ru.packMap) {
			return 0, false
		}
		no = ru.packMap[no]
	}
	return no, int(no) < len(ix.packs)
}

// addedPack reports whether pack id came to the index through Add (a
// backup's own new packs) rather than from the index objects loaded.
func (ix *Index) addedPack(id ID) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	no, ok := ix.packNo[id]
	return ok && ix.added[no]
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
func (ix *Index) Len() (int, error) {
	n := 0
	err := ix.ForEachBlob(func(PackInfo, Blob) { n++ })
	return n, err
}

// ForEachBlob calls fn for every indexed chunk, once, in the order of
// their ids.
func (ix *Index) ForEachBlob(fn func(PackInfo, Blob)) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	mem := make([]record, 0, len(ix.mem))
	for id, l := range ix.mem {
		mem = append(mem, record{id: id, pack: l.pack, off: l.off, n: l.len, raw: l.raw})
	}
	slices.SortFunc(mem, compareRecords)
	runs := append(slices.Clone(ix.session), ix.runs...)
	its := make([]*runIter, len(runs))
	live := make([]bool, len(runs))
	for i, ru := range runs {
		its[i] = ru.iter()
		live[i] = its[i].next()
	}
	mi := 0
	var last ID
	done, started := false, false // last was reported; last is set
	for {
		// The smallest id among the sources; the first copy of it in a
		// pack that is not dropped is the one reported.
		var cur record
		src := -2
		if mi < len(mem) {
			cur, src = mem[mi], -1
		}
		for i, it := range its {
			if live[i] && (src == -2 || bytes.Compare(it.cur.id[:], cur.id[:]) < 0) {
				cur, src = it.cur, i
			}
		}
		if src == -2 {
			break
		}
		g := cur.pack
		if src == -1 {
			mi++
		} else {
			var ok bool
			if g, ok = ix.global(runs[src], cur.pack); !ok {
				return &CacheError{Path: runs[src].name(), Reason: "a record names a pack it does not have"}
			}
			live[src] = its[src].next()
		}
		if cur.id != last || !started {
			last, done, started = cur.id, false, true
		}
		if !done && !ix.dropped[g] {
			fn(ix.packs[g], Blob{ID: cur.id, Off: cur.off, Len: cur.n, Raw: cur.raw})
			done = true
		}
	}
	for _, it := range its {
		if it.err != nil {
			ix.bad(it.err)
			return it.err
		}
	}
	return nil
}

// Close releases the index's files. The index must not be used after.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, ru := range append(ix.session, ix.runs...) {
		ru.close()
	}
	ix.session, ix.runs, ix.mem = nil, nil, map[ID]location{}
	return nil
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

// dropPacks forgets the chunks stored in the given packs: lookups skip
// them (and find another copy when one is indexed).
func (ix *Index) dropPacks(packs map[ID]bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for id := range packs {
		if no, ok := ix.packNo[id]; ok {
			ix.dropped[no] = true
		}
	}
}
