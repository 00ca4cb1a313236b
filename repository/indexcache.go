package repository

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/storage"
)

// The local index cache (docs/format.md, "The local index cache") keeps
// the index objects' chunks as sorted runs in a directory of this machine,
// per repository and key generation, so that opening the index reads the
// runs' small tables and the index objects written since, not every
// object. It is local state that storage never sees: a wrong "chunk X is
// stored" would make a backup skip a chunk and write a snapshot that
// cannot be restored, so every block of it is authenticated with a key
// derived from the writer key's MAC key, and anything that fails a check
// is thrown away and rebuilt from the repository.

// SetIndexCache sets the directory under which LoadIndex keeps its cache
// (one subdirectory per repository id and key generation). "" (the
// default) keeps the index in memory. The directory must belong to this
// user and not be writable by anyone else; otherwise the cache is not
// used, and the warn function (SetWarn) is told.
func (r *Repo) SetIndexCache(dir string) { r.cacheRoot = dir }

// spillRecords is how many chunks the index builder sorts in memory
// before it writes them as a run: 6 MiB.
const spillRecords = 1 << 17

// cacheManifest is the cache's table of contents, authenticated by MAC.
type cacheManifest struct {
	Version    int             `json:"version"`
	Repository string          `json:"repository"`
	Generation int             `json:"generation"`
	Runs       []cacheRunEntry `json:"runs"`
	// Known are the index objects read so far, with what each supersedes.
	Known map[ID][]ID `json:"known"`
	MAC   string      `json:"mac"`
}

type cacheRunEntry struct {
	File    string `json:"file"`
	Nonce   string `json:"nonce"`
	Packs   int    `json:"packs"`
	Records int    `json:"records"`
	Objects []ID   `json:"objects"`
}

// indexCache is an open cache directory, locked by this process.
type indexCache struct {
	dir    string
	key    []byte
	unlock func()
}

func (c *indexCache) manifestPath() string { return filepath.Join(c.dir, "manifest") }

func (c *indexCache) mac(m *cacheManifest) string {
	mm := *m
	mm.MAC = ""
	b, _ := json.Marshal(&mm)
	h := hmac.New(sha256.New, c.key)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// cacheKey derives the cache's key from the writer key's MAC key.
func (r *Repo) cacheKey() []byte {
	h := hmac.New(sha256.New, r.wk.MACKey[:])
	h.Write([]byte("coffer index cache v1"))
	return h.Sum(nil)
}

// openCache locks and returns the cache directory of this repository and
// generation, or nil (after a warning) when it cannot be used safely.
func (r *Repo) openCache() *indexCache {
	if r.cacheRoot == "" {
		return nil
	}
	dir, err := privateCacheDir(r.cacheRoot, fmt.Sprintf("%s-g%d", r.cfg.ID, r.cfg.Gen()))
	if err != nil {
		r.warnf(fmt.Errorf("the index cache: %w; the index is kept in memory this time", err))
		return nil
	}
	unlock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		r.warnf(fmt.Errorf("the index cache %s: %w; the index is kept in memory this time", dir, err))
		return nil
	}
	r.removeOldCaches()
	return &indexCache{dir: dir, key: r.cacheKey(), unlock: unlock}
}

// removeOldCaches deletes the cache directories of this repository's
// earlier key generations, which no process of the current generation
// reads again. One still locked (a backup that opened the repository
// before the rotation) is left for a later run.
func (r *Repo) removeOldCaches() {
	for g := 1; g < r.cfg.Gen(); g++ {
		dir := filepath.Join(r.cacheRoot, fmt.Sprintf("%s-g%d", r.cfg.ID, g))
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		unlock, err := tryLockFile(filepath.Join(dir, "lock"))
		if err != nil {
			continue
		}
		err = os.RemoveAll(dir)
		unlock()
		if err != nil {
			r.warnf(fmt.Errorf("the index cache of key generation %d, %s: %w", g, dir, err))
		}
	}
}

func (r *Repo) warnf(err error) {
	if r.warn != nil {
		r.warn(err)
	}
}

// load reads the manifest; a missing one is an empty cache.
func (c *indexCache) load(r *Repo) (*cacheManifest, error) {
	m := &cacheManifest{Known: map[ID][]ID{}}
	b, err := os.ReadFile(c.manifestPath())
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, &CacheError{Path: c.manifestPath(), Reason: err.Error()}
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, &CacheError{Path: c.manifestPath(), Reason: "malformed"}
	}
	if !hmac.Equal([]byte(m.MAC), []byte(c.mac(m))) {
		return nil, &CacheError{Path: c.manifestPath(), Reason: "not authenticated by this repository's writer key (altered, or made with other keys)"}
	}
	if m.Version != 1 || m.Repository != r.cfg.ID || m.Generation != r.cfg.Gen() {
		return nil, &CacheError{Path: c.manifestPath(), Reason: "made for another repository or key generation"}
	}
	if m.Known == nil {
		m.Known = map[ID][]ID{}
	}
	return m, nil
}

// save writes the manifest atomically and removes the files it no longer names.
func (c *indexCache) save(m *cacheManifest) error {
	m.MAC = c.mac(m)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, "manifest-*")
	if err != nil {
		return err
	}
	// Not synced, like the runs: whatever a crash leaves fails its MAC.
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.manifestPath())
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("index cache: write %s: %w", c.manifestPath(), err)
	}
	c.removeUnnamed(m)
	return nil
}

// removeUnnamed deletes the run files the manifest does not name.
func (c *indexCache) removeUnnamed(m *cacheManifest) {
	named := map[string]bool{"manifest": true, "lock": true}
	for _, e := range m.Runs {
		named[e.File] = true
	}
	ents, _ := os.ReadDir(c.dir)
	for _, e := range ents {
		if !named[e.Name()] {
			os.Remove(filepath.Join(c.dir, e.Name()))
		}
	}
}

// wipe forgets everything the cache holds.
func (c *indexCache) wipe() {
	os.Remove(c.manifestPath())
	c.removeUnnamed(&cacheManifest{})
}

// LoadIndex reads every index object, honouring supersedes. An index
// object that vanishes while it is read was superseded by a prune that
// wrote its replacement first: the listing is then taken again. With a
// cache directory (SetIndexCache) only the objects not yet in the cache
// are read.
func (r *Repo) LoadIndex(ctx context.Context) (*Index, error) {
	for attempt := 0; ; attempt++ {
		ix, err := r.loadIndexOnce(ctx)
		if err == nil || !isNotFound(err) || attempt == 4 {
			return ix, err
		}
	}
}

func (r *Repo) loadIndexOnce(ctx context.Context) (*Index, error) {
	listed := map[ID]int64{}
	var order []ID
	if err := r.be.List(ctx, "index/", func(fi storage.Info) error {
		if id, err := ParseID(strings.TrimPrefix(fi.Name, "index/")); err == nil {
			listed[id] = fi.Size
			order = append(order, id)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list index/ in %s: %w", r.be.Location(), err)
	}
	c := r.openCache()
	if c == nil {
		return r.buildIndex(ctx, tempStore(), nil, &cacheManifest{Known: map[ID][]ID{}}, listed, order)
	}
	defer c.unlock()
	st := newRunStore(c.dir, c.key)
	m, err := c.load(r)
	if err == nil {
		var ix *Index
		if ix, err = r.buildIndex(ctx, st, c, m, listed, order); err == nil {
			return ix, nil
		}
	}
	var ce *CacheError
	if !errors.As(err, &ce) {
		return nil, err
	}
	r.warnf(err)
	c.wipe()
	return r.buildIndex(ctx, st, c, &cacheManifest{Known: map[ID][]ID{}}, listed, order)
}

// buildIndex brings the runs of m up to date with the listed index
// objects and opens them as an Index. With c, the runs are the cache's
// and m is saved there.
func (r *Repo) buildIndex(ctx context.Context, st *runStore, c *indexCache, m *cacheManifest, listed map[ID]int64, order []ID) (*Index, error) {
	b := &indexBuilder{r: r, store: st, packNo: map[ID]uint32{}, objPacks: map[ID][]uint32{}}
	defer b.discard()
	var unknown []ID
	for _, id := range order {
		if _, ok := m.Known[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	if err := b.readAll(ctx, unknown, listed, m); err != nil {
		return nil, err
	}
	for id := range m.Known {
		if _, ok := listed[id]; !ok {
			delete(m.Known, id)
		}
	}
	superseded := map[ID]bool{}
	for _, sup := range m.Known {
		for _, s := range sup {
			superseded[s] = true
		}
	}
	var live []ID
	for _, id := range order {
		if !superseded[id] {
			live = append(live, id)
		}
	}
	// Keep the runs whose objects all still count; read again the live
	// objects that no run kept holds.
	isLive := map[ID]bool{}
	for _, id := range live {
		isLive[id] = true
	}
	covered := map[ID]bool{}
	var runs []*idxRun
	var entries []cacheRunEntry
	for _, e := range m.Runs {
		if !slices.ContainsFunc(e.Objects, func(id ID) bool { return !isLive[id] }) {
			ru, err := openCacheRun(st, c, e)
			if err != nil {
				return nil, err
			}
			runs, entries = append(runs, ru), append(entries, e)
			for _, id := range e.Objects {
				covered[id] = true
			}
		}
	}
	var need, again []ID
	for _, id := range live {
		if covered[id] {
			continue
		}
		need = append(need, id)
		if _, read := b.objPacks[id]; !read {
			again = append(again, id)
		}
	}
	if err := b.readAll(ctx, again, listed, m); err != nil {
		return nil, err
	}
	if len(need) > 0 {
		ru, err := b.finish(need)
		if err != nil {
			return nil, err
		}
		ru.objects = need
		runs, entries = append(runs, ru), append(entries, runEntry(ru))
	}
	// Merge runs of like size: a few runs to look in, each record
	// rewritten O(log n) times over the cache's life.
	for n := len(runs); n >= 2 && (runs[n-1].records*4 >= runs[n-2].records || n > 8); n = len(runs) {
		mr, err := mergeCacheRuns(st, runs[n-2], runs[n-1])
		if err != nil {
			return nil, err
		}
		runs, entries = append(runs[:n-2], mr), append(entries[:n-2], runEntry(mr))
	}
	if c != nil {
		m.Version, m.Repository, m.Generation, m.Runs = 1, r.cfg.ID, r.cfg.Gen(), entries
		if err := c.save(m); err != nil {
			return nil, err
		}
	}
	ix := newIndexIn(st)
	if c != nil {
		var once sync.Once
		ix.onBad = func(err error) {
			once.Do(func() {
				os.Remove(c.manifestPath()) // rebuilt at the next load
				r.warnf(err)
			})
		}
	}
	for _, ru := range runs {
		if err := ix.attach(ru); err != nil {
			return nil, err
		}
	}
	ix.files = live
	return ix, nil
}

func runEntry(ru *idxRun) cacheRunEntry {
	return cacheRunEntry{File: filepath.Base(ru.path), Nonce: hex.EncodeToString(ru.nonce[:]), Packs: ru.packs, Records: ru.records, Objects: ru.objects}
}

func openCacheRun(st *runStore, c *indexCache, e cacheRunEntry) (*idxRun, error) {
	path := filepath.Join(c.dir, filepath.Base(e.File))
	var nonce [16]byte
	if n, err := hex.Decode(nonce[:], []byte(e.Nonce)); err != nil || n != 16 || e.Packs < 0 || e.Records < 0 {
		return nil, &CacheError{Path: path, Reason: "malformed manifest entry"}
	}
	ru, err := st.openRun(path, nonce, e.Packs, e.Records)
	if err != nil {
		return nil, err
	}
	ru.objects = e.Objects
	return ru, nil
}

// mergeCacheRuns merges two runs that have pack tables.
func mergeCacheRuns(st *runStore, a, b *idxRun) (*idxRun, error) {
	var packs []packRec
	no := map[ID]uint32{}
	maps := [2][]uint32{}
	for i, ru := range []*idxRun{a, b} {
		if err := ru.load(func(p packRec) {
			n, ok := no[p.id]
			if !ok {
				n = uint32(len(packs))
				no[p.id] = n
				packs = append(packs, p)
			}
			maps[i] = append(maps[i], n)
		}); err != nil {
			return nil, err
		}
	}
	bad := false
	mr, err := st.merge([]*idxRun{a, b}, packs, func(i int, p uint32) (uint32, bool) {
		if int(p) >= len(maps[i]) {
			bad = true
			return 0, false
		}
		return maps[i][p], true
	}, false)
	if err == nil && bad {
		err = &CacheError{Path: a.name(), Reason: "a record names a pack it does not have"}
	}
	if err != nil {
		return nil, err
	}
	mr.objects = append(slices.Clone(a.objects), b.objects...)
	return mr, nil
}

// indexBuilder reads index objects into sorted spill runs, then merges the
// records of the packs that live objects list into one run.
type indexBuilder struct {
	r        *Repo
	store    *runStore
	mu       sync.Mutex
	packs    []packRec
	packNo   map[ID]uint32
	objPacks map[ID][]uint32 // the packs each object read lists
	recs     []record
	spills   []*idxRun
}

// readAll reads objects (four at a time), noting what each supersedes in m.
func (b *indexBuilder) readAll(ctx context.Context, ids []ID, listed map[ID]int64, m *cacheManifest) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, id := range ids {
		g.Go(func() error {
			sup, err := b.read(gctx, id, listed[id])
			if err != nil {
				return err
			}
			b.mu.Lock()
			m.Known[id] = sup
			b.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// read reads one object. Its records join the builder only once the
// object is authenticated; until then they stay in its own buffer (and
// runs, for an object larger than spillRecords).
func (b *indexBuilder) read(ctx context.Context, id ID, size int64) ([]ID, error) {
	var recs []record
	var runs []*idxRun
	var packs []ID
	var infos []packRec
	begin := func() { recs, runs, packs, infos = recs[:0], nil, nil, nil }
	sup, err := b.r.streamIndexFile(ctx, id, size, begin, func(e PackEntry) error {
		packs = append(packs, e.ID)
		infos = append(infos, packRec{id: e.ID, size: e.Size, plain: e.Plain, gen: uint32(e.Gen)})
		for _, bl := range e.Blobs {
			// pack is the object's own pack number until it joins.
			recs = append(recs, record{id: bl.ID, pack: uint32(len(packs) - 1), off: bl.Off, n: bl.Len, raw: bl.Raw})
			if len(recs) >= spillRecords {
				ru, err := b.store.sortedRun(recs, true)
				if err != nil {
					return err
				}
				runs, recs = append(runs, ru), recs[:0]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	local := make([]uint32, len(infos))
	for i, p := range infos {
		n, ok := b.packNo[p.id]
		if !ok {
			n = uint32(len(b.packs))
			b.packNo[p.id] = n
			b.packs = append(b.packs, p)
		}
		local[i] = n
	}
	b.objPacks[id] = local
	for _, ru := range runs {
		mr, err := b.store.merge([]*idxRun{ru}, nil, func(_ int, p uint32) (uint32, bool) { return local[p], true }, true)
		if err != nil {
			return nil, err
		}
		b.spills = append(b.spills, mr)
	}
	for _, rec := range recs {
		rec.pack = local[rec.pack]
		b.recs = append(b.recs, rec)
		if len(b.recs) >= spillRecords {
			if err := b.spill(); err != nil {
				return nil, err
			}
		}
	}
	return sup, nil
}

func (b *indexBuilder) spill() error {
	if len(b.recs) == 0 {
		return nil
	}
	ru, err := b.store.sortedRun(b.recs, true)
	if err != nil {
		return err
	}
	b.spills, b.recs = append(b.spills, ru), b.recs[:0]
	return nil
}

// finish merges the records of the packs that objects list into one run.
func (b *indexBuilder) finish(objects []ID) (*idxRun, error) {
	if err := b.spill(); err != nil {
		return nil, err
	}
	newNo := make([]int64, len(b.packs))
	for i := range newNo {
		newNo[i] = -1
	}
	var packs []packRec
	for _, id := range objects {
		for _, p := range b.objPacks[id] {
			if newNo[p] < 0 {
				newNo[p] = int64(len(packs))
				packs = append(packs, b.packs[p])
			}
		}
	}
	return b.store.merge(b.spills, packs, func(_ int, p uint32) (uint32, bool) {
		if int(p) >= len(newNo) || newNo[p] < 0 {
			return 0, false
		}
		return uint32(newNo[p]), true
	}, b.store.dir == "")
}

func (b *indexBuilder) discard() {
	for _, ru := range b.spills {
		ru.close()
	}
}

// mergeHeap orders the runs' current records for a k-way merge.
type mergeHeap struct {
	its  []*runIter
	cur  []record
	live []int
}

func (h *mergeHeap) Len() int { return len(h.live) }
func (h *mergeHeap) Less(i, j int) bool {
	return compareRecords(h.cur[h.live[i]], h.cur[h.live[j]]) < 0
}
func (h *mergeHeap) Swap(i, j int) { h.live[i], h.live[j] = h.live[j], h.live[i] }
func (h *mergeHeap) Push(x any)    { h.live = append(h.live, x.(int)) }
func (h *mergeHeap) Pop() any {
	x := h.live[len(h.live)-1]
	h.live = h.live[:len(h.live)-1]
	return x
}
