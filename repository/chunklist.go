package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// A snapshot's stream is the concatenation of its chunks; since snapshot
// version 2 the ordered chunk ids are stored in chunk list objects
// (`chunklists/ID`, docs/format.md "Chunk lists"), which the snapshot names
// in order, rather than in the snapshot itself. Lists are cut where the ids
// themselves say, so the unchanged stretches of a nightly dump give the
// same lists night after night, stored once.

// chunkListMagic starts the header line of every chunk list. A list stored
// again because a prune marker named it gets a generation after it
// (" 1", " 2", …), hence another name (ChunkListWriter).
const chunkListMagic = "coffer chunk list v1"

// MaxListIDs is the most chunk ids a list may hold: readers refuse a
// larger one, so that reading a snapshot costs a bounded amount of memory
// whatever its writer stored (coffer writes at most ListCut.Max ids).
const MaxListIDs = 1 << 16

// chunkListKind and chunkListDir name chunk list objects.
const (
	chunkListKind = "chunklist"
	chunkListDir  = "chunklists"
)

// ListCut says where a writer ends a chunk list: after an id whose first
// two bytes, read big-endian, are below 65536>>AvgBits, once the list
// holds at least Min ids, and always at Max ids. The choice is the
// writer's; readers accept any cut.
type ListCut struct {
	Min, AvgBits, Max int
}

// DefaultListCut gives lists of about 1,300 ids (40 KiB, 80 MiB of stream
// at 64 KiB chunks): see docs/format.md for why.
var DefaultListCut = ListCut{Min: 256, AvgBits: 10, Max: 8192}

func (c ListCut) withDefaults() ListCut {
	if c.Min <= 0 || c.Max <= 0 || c.AvgBits <= 0 {
		return DefaultListCut
	}
	c.Max = min(c.Max, MaxListIDs)
	c.Min = min(c.Min, c.Max)
	c.AvgBits = min(c.AvgBits, 16)
	return c
}

// ends reports whether a list of n ids whose last is id ends here.
func (c ListCut) ends(n int, id ID) bool {
	if n >= c.Max {
		return true
	}
	return n >= c.Min && int(id[0])<<8|int(id[1]) < 65536>>c.AvgBits
}

// chunkListHeader returns the header line of a list of generation gen.
func chunkListHeader(gen int) string {
	if gen == 0 {
		return chunkListMagic + "\n"
	}
	return chunkListMagic + " " + strconv.Itoa(gen) + "\n"
}

// parseChunkList checks a chunk list's plaintext and returns its ids, the
// bytes after the header line.
func parseChunkList(object string, plain []byte) ([]byte, error) {
	line, ids, ok := bytes.Cut(plain, []byte{'\n'})
	if !ok || !validListHeader(string(line)) {
		return nil, &CorruptError{Object: object, Reason: "not a chunk list (unknown header line)"}
	}
	if n := len(ids); n == 0 || n%len(ID{}) != 0 || n/len(ID{}) > MaxListIDs {
		return nil, &CorruptError{Object: object, Reason: fmt.Sprintf("its %d bytes of chunk ids are not 1 to %d ids of 32 bytes", n, MaxListIDs)}
	}
	return ids, nil
}

func validListHeader(line string) bool {
	if line == chunkListMagic {
		return true
	}
	gen, ok := strings.CutPrefix(line, chunkListMagic+" ")
	n, err := strconv.Atoi(gen)
	return ok && err == nil && n > 0 && strconv.Itoa(n) == gen
}

// readChunkList reads and authenticates list id and returns its ids.
func (r *Repo) readChunkList(ctx context.Context, id ID) ([]byte, error) {
	plain, err := r.readMeta(ctx, chunkListKind, chunkListDir, id)
	if err != nil {
		return nil, err
	}
	return parseChunkList(chunkListDir+"/"+id.String(), plain)
}

// ErrStop, returned by the function given to SnapshotChunks, ends the
// iteration early; SnapshotChunks then returns nil.
var ErrStop = errors.New("stop")

// SnapshotChunks calls fn with the ids of snapshot s's chunks, in stream
// order, reading its chunk lists one after the other (the next while fn
// consumes one): memory does not grow with the stream. A list that is
// missing, damaged or not authenticated, or lists whose ids do not add up
// to the snapshot's chunks_total, are an error naming the snapshot; fn may
// have been called with some ids already. fn returning ErrStop ends the
// iteration with nil.
func (r *Repo) SnapshotChunks(ctx context.Context, s *Snapshot, fn func(ID) error) error {
	err := r.snapshotChunks(ctx, s, fn)
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

func (r *Repo) snapshotChunks(ctx context.Context, s *Snapshot, fn func(ID) error) error {
	name := "snapshots/" + s.id.String()
	count := 0
	each := func(ids []byte) error {
		if count += len(ids) / len(ID{}); count > s.ChunksTotal {
			return &CorruptError{Object: name, Reason: fmt.Sprintf("its chunk lists hold more than its %d chunks", s.ChunksTotal)}
		}
		for ; len(ids) > 0; ids = ids[len(ID{}):] {
			if err := fn(ID(ids[:len(ID{})])); err != nil {
				return err
			}
		}
		return nil
	}
	if s.Version < 2 {
		for _, c := range s.Chunks {
			if err := each(c[:]); err != nil {
				return err
			}
		}
	} else if err := r.readLists(ctx, s, each); err != nil {
		return err
	}
	if count != s.ChunksTotal {
		return &CorruptError{Object: name, Reason: fmt.Sprintf("its chunk lists hold %d chunks, the snapshot says %d", count, s.ChunksTotal)}
	}
	return nil
}

// readLists reads s's lists in order, the next one while each consumes
// the one before.
func (r *Repo) readLists(ctx context.Context, s *Snapshot, each func([]byte) error) error {
	g, gctx := errgroup.WithContext(ctx)
	lists := make(chan []byte, 1)
	g.Go(func() error {
		defer close(lists)
		for _, l := range s.Lists {
			ids, err := r.readChunkList(gctx, l)
			if err != nil {
				return snapshotListError(s, l, err)
			}
			select {
			case lists <- ids:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		for ids := range lists {
			if err := each(ids); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// snapshotListError says that snapshot s cannot be read because of its
// list l.
func snapshotListError(s *Snapshot, l ID, err error) error {
	what := "cannot be read"
	if isNotFound(err) {
		what = "is missing (deleted by hand, or by a prune that did not know the snapshot)"
	}
	return fmt.Errorf("snapshot %s: its chunk list %s/%s %s; run `coffer check`: %w", s.id.Short(), chunkListDir, l, what, err)
}

// chunkListCounts holds the number of ids of each chunk list read, so that
// a walk over many snapshots (prune, check) reads each shared list once.
type chunkListCounts map[ID]int

// walkSnapshot calls list for each list of s and chunk with each id of a
// list not read before in this walk and the list (every id of a version 1
// snapshot, with the zero list), and checks the total against
// chunks_total.
func (r *Repo) walkSnapshot(ctx context.Context, s *Snapshot, read chunkListCounts, list func(ID), chunk func(list, c ID)) error {
	if s.Version < 2 {
		return r.SnapshotChunks(ctx, s, func(c ID) error { chunk(ID{}, c); return nil })
	}
	total := 0
	for _, l := range s.Lists {
		list(l)
		n, ok := read[l]
		if !ok {
			ids, err := r.readChunkList(ctx, l)
			if err != nil {
				return snapshotListError(s, l, err)
			}
			n = len(ids) / len(ID{})
			for ; len(ids) > 0; ids = ids[len(ID{}):] {
				chunk(l, ID(ids[:len(ID{})]))
			}
			read[l] = n
		}
		total += n
	}
	if total != s.ChunksTotal {
		return &CorruptError{Object: "snapshots/" + s.id.String(), Reason: fmt.Sprintf("its chunk lists hold %d chunks, the snapshot says %d", total, s.ChunksTotal)}
	}
	return nil
}

// Honoured is what a backup knows, when it starts, of the prune markers it
// honours and the chunk lists stored: the packs and lists the markers name
// as candidates, which it must not depend on (docs/format.md "Locks and
// prune markers"), and the lists stored, which it need not store again.
type Honoured struct {
	packs  map[ID]bool
	avoid  map[ID]bool // lists
	stored []ID        // lists, sorted
}

// LoadHonoured reads the prune markers a backup honours, then lists
// `chunklists/`; the backup loads the index after it. The markers are read
// first: a marker gone by then was swept, so neither the listing nor the
// index shows what the sweep deleted.
func (r *Repo) LoadHonoured(ctx context.Context, markers []ID) (*Honoured, error) {
	h := &Honoured{packs: map[ID]bool{}, avoid: map[ID]bool{}}
	for _, id := range markers {
		var m PruneMarker
		if err := r.loadMeta(ctx, "prune", "prune", id, &m); err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		for _, c := range m.Candidates {
			h.packs[c] = true
		}
		for _, l := range m.Lists {
			h.avoid[l] = true
		}
	}
	err := r.listIDs(ctx, chunkListDir, nil, func(id ID) {
		if !h.avoid[id] {
			h.stored = append(h.stored, id)
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(h.stored, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	return h, nil
}

// ExcludePacks removes from idx, loaded after h, the chunks of the packs
// that the honoured markers name as candidates, so the backup stores such
// chunks again instead of depending on packs about to go.
func (h *Honoured) ExcludePacks(idx *Index) { idx.dropPacks(h.packs) }

func (h *Honoured) has(id ID) bool {
	if h == nil {
		return false
	}
	_, ok := slices.BinarySearchFunc(h.stored, id, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	return ok
}

func (h *Honoured) avoids(id ID) bool { return h != nil && h.avoid[id] }

// ChunkListWriter cuts a stream's chunk ids into chunk lists as they
// come, holding one list at a time, and says which lists to store
// (SaveChunkList); it does no I/O itself, so that a backup stores lists
// beside its pipeline rather than in it.
type ChunkListWriter struct {
	r       *Repo
	known   *Honoured
	cut     ListCut
	buf     []byte // the current list: header line, then ids
	n       int    // ids in buf
	total   int
	lists   []ID
	reused  []ID        // lists named that were stored before
	written map[ID]bool // lists already named once (a stream may repeat one)
}

// PendingList is a chunk list to store.
type PendingList struct {
	id    ID
	plain []byte
}

// NewChunkListWriter returns a writer of chunk lists cut by cut (the zero
// ListCut is DefaultListCut). Lists known to be stored are not stored
// again; those the honoured markers name are stored under another
// generation.
func (r *Repo) NewChunkListWriter(known *Honoured, cut ListCut) *ChunkListWriter {
	w := &ChunkListWriter{r: r, known: known, cut: cut.withDefaults(), written: map[ID]bool{}}
	w.buf = append(make([]byte, 0, len(chunkListMagic)+1+w.cut.Max*len(ID{})), chunkListHeader(0)...)
	return w
}

// Add appends the stream's next chunk id. When the id ends a list that
// must be stored, it returns the list, which the caller stores with
// SaveChunkList before the snapshot.
func (w *ChunkListWriter) Add(id ID) *PendingList {
	w.buf = append(w.buf, id[:]...)
	w.n++
	w.total++
	if w.cut.ends(w.n, id) {
		return w.end()
	}
	return nil
}

// Finish ends the last list and returns it when it must be stored (or
// nil).
func (w *ChunkListWriter) Finish() *PendingList { return w.end() }

// Lists returns the lists ended so far, in order, and the number of ids
// in them.
func (w *ChunkListWriter) Lists() ([]ID, int) { return w.lists, w.total }

// Reused returns the lists named that were stored before this writer
// began: the ones whose retention a backup extends (ExtendRetentionOf).
func (w *ChunkListWriter) Reused() []ID { return w.reused }

// end ends the current list and returns it if it must be stored.
func (w *ChunkListWriter) end() *PendingList {
	if w.n == 0 {
		return nil
	}
	plain := w.buf
	ids := plain[len(chunkListHeader(0)):]
	id := macID(w.r.wk.MACKey[:], chunkListKind, plain)
	// A list that an honoured prune marker names may be deleted before
	// this backup's snapshot exists: store the same ids under the next
	// generation's header instead, as packs' chunks are stored again.
	for gen := 1; w.known.avoids(id); gen++ {
		plain = append([]byte(chunkListHeader(gen)), ids...)
		id = macID(w.r.wk.MACKey[:], chunkListKind, plain)
	}
	var pending *PendingList
	switch {
	case w.written[id]:
	case w.known.has(id):
		w.reused = append(w.reused, id)
	default:
		pending = &PendingList{id: id, plain: slices.Clone(plain)}
	}
	w.written[id] = true
	w.lists = append(w.lists, id)
	w.buf = w.buf[:len(chunkListHeader(0))]
	w.n = 0
	return pending
}

// SaveChunkList stores a list that a ChunkListWriter returned, never over
// another object, and returns the bytes it uploaded.
func (r *Repo) SaveChunkList(ctx context.Context, l *PendingList) (int64, error) {
	sealed, ct, err := r.wk.sealMeta(chunkListKind, l.plain)
	if err != nil {
		return 0, err
	}
	if err := r.putSealed(ctx, chunkListKind, chunkListDir+"/"+sealed.String(), sealed, ct, r.putOptions()); err != nil {
		return 0, fmt.Errorf("save chunk list: %w", err)
	}
	return int64(len(ct)), nil
}
