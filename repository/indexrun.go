package repository

import (
	"bufio"
	"bytes"
	"container/heap"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// A run is a sorted list of index records in fixed-width form, so that
// the index of a repository of millions of chunks costs a backup a few
// bytes of memory per 85 chunks rather than a map entry per chunk (see
// docs/format.md, "The local index cache"). A run is a sequence of
// 4096-byte blocks, each 4080 bytes of payload and a 16-byte MAC over the
// run's nonce, the block's number and the payload, checked whenever the
// block is read: the pack table first, then the records sorted by chunk
// id, then the sparse table (the first 8 bytes of each record block's
// first id) that finds a record's block in memory.
const (
	blockSize       = 4096
	blockMACSize    = 16
	blockPayload    = blockSize - blockMACSize
	recordSize      = 48
	recordsPerBlock = blockPayload / recordSize // 85
	packRecSize     = 56
	packsPerBlock   = blockPayload / packRecSize // 72
	keysPerBlock    = blockPayload / 8           // 510
)

// record is one chunk's place: pack is a number in the run's pack table
// (or, for runs without one, in the index's).
type record struct {
	id                ID
	pack, off, n, raw uint32
}

func (r *record) put(b []byte) {
	copy(b, r.id[:])
	binary.BigEndian.PutUint32(b[32:], r.pack)
	binary.BigEndian.PutUint32(b[36:], r.off)
	binary.BigEndian.PutUint32(b[40:], r.n)
	binary.BigEndian.PutUint32(b[44:], r.raw)
}

func getRecord(b []byte) record {
	var r record
	copy(r.id[:], b)
	r.pack = binary.BigEndian.Uint32(b[32:])
	r.off = binary.BigEndian.Uint32(b[36:])
	r.n = binary.BigEndian.Uint32(b[40:])
	r.raw = binary.BigEndian.Uint32(b[44:])
	return r
}

func compareRecords(a, b record) int {
	if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
		return c
	}
	return int(a.pack) - int(b.pack)
}

func prefix(id ID) uint64 { return binary.BigEndian.Uint64(id[:8]) }

// packRec is one pack of a run's pack table.
type packRec struct {
	id          ID
	size, plain int64
	gen         uint32
}

// CacheError reports a local index cache that failed its checks: it is
// never trusted, and is rebuilt from the repository.
type CacheError struct {
	Path   string
	Reason string
}

func (e *CacheError) Error() string {
	return fmt.Sprintf("index cache %s: %s (it is rebuilt from the repository's index objects)", e.Path, e.Reason)
}

// runStore makes and authenticates runs: in a directory (the cache), or in
// memory when there is none.
type runStore struct {
	dir string // "" keeps runs in memory
	// ephemeral runs are unlinked as soon as they are written (a private
	// temporary directory's, when there is no cache)
	ephemeral bool
	macs      sync.Pool
}

func newRunStore(dir string, key []byte) *runStore {
	return &runStore{dir: dir, macs: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// memoryStore returns a store that keeps runs in memory, with a random key.
func memoryStore() *runStore {
	var k [32]byte
	rand.Read(k[:])
	return newRunStore("", k[:])
}

// tempStore returns a store of runs in unlinked files (0600) of the
// system's temporary directory, with a random key: an index built anew
// each time, without holding its chunks in memory.
func tempStore() *runStore {
	s := memoryStore()
	s.dir, s.ephemeral = os.TempDir(), true
	return s
}

func (s *runStore) mac(nonce *[16]byte, n uint64, payload []byte, out []byte) {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(nonce[:])
	var nb [8]byte
	binary.BigEndian.PutUint64(nb[:], n)
	m.Write(nb[:])
	m.Write(payload)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	s.macs.Put(m)
	copy(out, sum[:blockMACSize])
}

// idxRun is an open, immutable run.
type idxRun struct {
	store   *runStore
	r       io.ReaderAt
	path    string // the file, "" in memory or once unlinked
	nonce   [16]byte
	packs   int
	records int
	first   []uint64 // sparse table: the prefix of each record block's first id
	packMap []uint32 // run pack number → index pack number; nil: the same
	objects []ID     // the index objects it holds (cache runs)
	buf     sync.Pool
}

func (ru *idxRun) packBlocks() int64 { return int64((ru.packs + packsPerBlock - 1) / packsPerBlock) }
func (ru *idxRun) recordBlocks() int64 {
	return int64((ru.records + recordsPerBlock - 1) / recordsPerBlock)
}
func (ru *idxRun) sparseBlocks() int64 { return (ru.recordBlocks() + keysPerBlock - 1) / keysPerBlock }
func (ru *idxRun) blocks() int64       { return ru.packBlocks() + ru.recordBlocks() + ru.sparseBlocks() }

func (ru *idxRun) name() string {
	if ru.path == "" {
		return "(in memory)"
	}
	return ru.path
}

// readBlock reads and authenticates block n into buf and returns its payload.
func (ru *idxRun) readBlock(n int64, buf []byte) ([]byte, error) {
	buf = buf[:blockSize]
	if _, err := ru.r.ReadAt(buf, n*blockSize); err != nil {
		return nil, &CacheError{Path: ru.name(), Reason: fmt.Sprintf("block %d cannot be read: %v", n, err)}
	}
	var want [blockMACSize]byte
	ru.store.mac(&ru.nonce, uint64(n), buf[:blockPayload], want[:])
	if !hmac.Equal(want[:], buf[blockPayload:]) {
		return nil, &CacheError{Path: ru.name(), Reason: fmt.Sprintf("block %d is not authenticated (altered or damaged)", n)}
	}
	return buf[:blockPayload], nil
}

func (ru *idxRun) getBuf() *[]byte {
	if b, ok := ru.buf.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, blockSize)
	return &b
}

// load reads the sparse table and the pack table (calling pack for each).
func (ru *idxRun) load(pack func(packRec)) error {
	bp := ru.getBuf()
	defer ru.buf.Put(bp)
	for b := range ru.packBlocks() {
		p, err := ru.readBlock(b, *bp)
		if err != nil {
			return err
		}
		for i := 0; i < packsPerBlock && int(b)*packsPerBlock+i < ru.packs; i++ {
			x := p[i*packRecSize:]
			var pr packRec
			copy(pr.id[:], x)
			pr.size = int64(binary.BigEndian.Uint64(x[32:]))
			pr.plain = int64(binary.BigEndian.Uint64(x[40:]))
			pr.gen = binary.BigEndian.Uint32(x[48:])
			pack(pr)
		}
	}
	nrb := int(ru.recordBlocks())
	ru.first = make([]uint64, 0, nrb)
	base := ru.packBlocks() + ru.recordBlocks()
	for b := range ru.sparseBlocks() {
		p, err := ru.readBlock(base+b, *bp)
		if err != nil {
			return err
		}
		for i := 0; i < keysPerBlock && len(ru.first) < nrb; i++ {
			ru.first = append(ru.first, binary.BigEndian.Uint64(p[i*8:]))
		}
	}
	if !slices.IsSorted(ru.first) {
		return &CacheError{Path: ru.name(), Reason: "its sparse table is not sorted"}
	}
	return nil
}

// find calls fn with each record of id, until fn returns true.
func (ru *idxRun) find(id ID, fn func(record) bool) error {
	if ru.records == 0 {
		return nil
	}
	tp := prefix(id)
	start := max(sort.Search(len(ru.first), func(i int) bool { return ru.first[i] >= tp })-1, 0)
	bp := ru.getBuf()
	defer ru.buf.Put(bp)
	base := ru.packBlocks()
	for b := start; b < len(ru.first) && (b == start || ru.first[b] <= tp); b++ {
		p, err := ru.readBlock(base+int64(b), *bp)
		if err != nil {
			return err
		}
		n := min(recordsPerBlock, ru.records-b*recordsPerBlock)
		j := sort.Search(n, func(j int) bool { return bytes.Compare(p[j*recordSize:j*recordSize+32], id[:]) >= 0 })
		for ; j < n; j++ {
			r := getRecord(p[j*recordSize:])
			if r.id != id {
				return nil
			}
			if fn(r) {
				return nil
			}
		}
	}
	return nil
}

// iter returns the run's records in order.
func (ru *idxRun) iter() *runIter { return &runIter{ru: ru, buf: make([]byte, blockSize)} }

type runIter struct {
	ru    *idxRun
	buf   []byte
	block []byte
	i     int // the next record
	cur   record
	err   error
}

// next advances to the next record; false at the end or on an error.
func (it *runIter) next() bool {
	if it.err != nil || it.i >= it.ru.records {
		return false
	}
	j := it.i % recordsPerBlock
	if j == 0 {
		p, err := it.ru.readBlock(it.ru.packBlocks()+int64(it.i/recordsPerBlock), it.buf)
		if err != nil {
			it.err = err
			return false
		}
		it.block = p
	}
	it.cur = getRecord(it.block[j*recordSize:])
	it.i++
	return true
}

// runWriter writes a run's blocks in order: packs, records, sparse table.
type runWriter struct {
	store   *runStore
	f       *os.File
	mem     *bytes.Buffer
	w       *bufio.Writer
	nonce   [16]byte
	blockNo uint64
	block   []byte
	fill    int
	packs   int
	records int
	first   []uint64
	last    record
	err     error
}

// newRun starts a run holding packs. A run in a directory is a file there,
// 0600; temp runs are unlinked at once (only this process reads them).
func (s *runStore) newRun(packs []packRec) (*runWriter, error) {
	w := &runWriter{store: s, block: make([]byte, blockSize), packs: len(packs)}
	rand.Read(w.nonce[:])
	if s.dir == "" {
		w.mem = new(bytes.Buffer)
		w.w = bufio.NewWriterSize(w.mem, 64<<10)
	} else {
		f, err := os.CreateTemp(s.dir, "coffer-index-run-*")
		if err != nil {
			return nil, fmt.Errorf("index cache: %w", err)
		}
		if s.ephemeral {
			os.Remove(f.Name()) // nothing left behind, whenever the process ends
		}
		w.f = f
		w.w = bufio.NewWriterSize(f, 256<<10)
	}
	for i, p := range packs {
		x := w.block[(i%packsPerBlock)*packRecSize:]
		copy(x, p.id[:])
		binary.BigEndian.PutUint64(x[32:], uint64(p.size))
		binary.BigEndian.PutUint64(x[40:], uint64(p.plain))
		binary.BigEndian.PutUint32(x[48:], p.gen)
		clear(x[52:packRecSize])
		w.fill = i%packsPerBlock + 1
		if w.fill == packsPerBlock {
			w.flushBlock()
		}
	}
	if w.fill > 0 {
		w.flushBlock()
	}
	return w, w.err
}

func (w *runWriter) flushBlock() {
	if w.err != nil {
		return
	}
	w.store.mac(&w.nonce, w.blockNo, w.block[:blockPayload], w.block[blockPayload:])
	_, w.err = w.w.Write(w.block)
	clear(w.block)
	w.blockNo++
	w.fill = 0
}

// add appends r, which must not sort before the previous record.
func (w *runWriter) add(r record) {
	if w.records > 0 && bytes.Compare(r.id[:], w.last.id[:]) < 0 && w.err == nil {
		w.err = errors.New("index cache: records out of order")
	}
	j := w.records % recordsPerBlock
	if j == 0 {
		w.first = append(w.first, prefix(r.id))
	}
	r.put(w.block[j*recordSize:])
	w.fill = j + 1
	w.records++
	w.last = r
	if w.fill == recordsPerBlock {
		w.flushBlock()
	}
}

// finish writes the sparse table and opens the run for reading.
func (w *runWriter) finish(temp bool) (*idxRun, error) {
	temp = temp || w.store.ephemeral
	if w.fill > 0 {
		w.flushBlock()
	}
	for i, k := range w.first {
		binary.BigEndian.PutUint64(w.block[(i%keysPerBlock)*8:], k)
		w.fill = i%keysPerBlock + 1
		if w.fill == keysPerBlock {
			w.flushBlock()
		}
	}
	if w.fill > 0 {
		w.flushBlock()
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	ru := &idxRun{store: w.store, nonce: w.nonce, packs: w.packs, records: w.records, first: w.first}
	if w.mem != nil {
		ru.r = bytes.NewReader(w.mem.Bytes())
		return ru, w.err
	}
	// No fsync: a run torn by a crash fails its blocks' MACs and is
	// rebuilt, and a sync of a large run costs seconds.
	if w.err != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		return nil, fmt.Errorf("index cache: write %s: %w", w.f.Name(), w.err)
	}
	if temp {
		os.Remove(w.f.Name())
	} else {
		ru.path = w.f.Name()
	}
	ru.r = w.f
	runtime.AddCleanup(ru, func(f *os.File) { f.Close() }, w.f)
	return ru, nil
}

// abort discards an unfinished run.
func (w *runWriter) abort() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
	}
}

// openRun opens a run file of the cache whose manifest entry says nonce,
// packs and records, checking its size.
func (s *runStore) openRun(path string, nonce [16]byte, packs, records int) (*idxRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &CacheError{Path: path, Reason: err.Error()}
	}
	ru := &idxRun{store: s, r: f, path: path, nonce: nonce, packs: packs, records: records}
	runtime.AddCleanup(ru, func(f *os.File) { f.Close() }, f)
	fi, err := f.Stat()
	if err != nil || fi.Size() != ru.blocks()*blockSize {
		return nil, &CacheError{Path: path, Reason: "its size is not the one the manifest records (truncated or replaced)"}
	}
	return ru, nil
}

// sortedRun writes recs (sorted here) as a run without a pack table.
func (s *runStore) sortedRun(recs []record, temp bool) (*idxRun, error) {
	slices.SortFunc(recs, compareRecords)
	w, err := s.newRun(nil)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		w.add(r)
	}
	return w.finish(temp)
}

// merge writes the records of runs as one run with pack table packs. pack,
// when set, maps a run's (index, pack number) to the number written; a
// record it refuses is left out. Records with the same chunk and pack are
// written once.
func (s *runStore) merge(runs []*idxRun, packs []packRec, pack func(run int, no uint32) (uint32, bool), temp bool) (*idxRun, error) {
	w, err := s.newRun(packs)
	if err != nil {
		return nil, err
	}
	h := &mergeHeap{its: make([]*runIter, len(runs)), cur: make([]record, len(runs))}
	advance := func(i int) bool {
		for h.its[i].next() {
			r := h.its[i].cur
			if pack != nil {
				var ok bool
				if r.pack, ok = pack(i, r.pack); !ok {
					continue
				}
			}
			h.cur[i] = r
			return true
		}
		return false
	}
	for i, ru := range runs {
		h.its[i] = ru.iter()
		if advance(i) {
			h.live = append(h.live, i)
		}
	}
	heap.Init(h)
	var prev record
	have := false
	for h.Len() > 0 {
		i := h.live[0]
		r := h.cur[i]
		if !have || r.id != prev.id || r.pack != prev.pack {
			w.add(r)
			prev, have = r, true
		}
		if advance(i) {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	for _, it := range h.its {
		if it.err != nil {
			w.abort()
			return nil, it.err
		}
	}
	return w.finish(temp)
}

// close closes the run's file, if any.
func (ru *idxRun) close() {
	if c, ok := ru.r.(io.Closer); ok {
		c.Close()
	}
}
