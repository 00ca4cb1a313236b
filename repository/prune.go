package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// PruneMarker is the content of a `prune/ID` object.
type PruneMarker struct {
	versioned
	Created    time.Time `json:"created"`
	Host       string    `json:"host"`
	Candidates []ID      `json:"candidates"` // packs no snapshot needed when marked
	// Lists are the chunk lists no snapshot referenced when marked.
	Lists []ID `json:"lists,omitempty"`
}

// PruneOptions tune Prune.
type PruneOptions struct {
	DryRun bool   // report what would go; write and delete nothing
	Host   string // recorded in the marker
	// Now is the clock, used only for the times the marker records
	// (default time.Now): whether a lock is stale is judged by storage
	// time, so a prune whose clock is wrong cannot misjudge a live backup.
	Now func() time.Time
	// LockStale is the storage-time age past which a lock is stale
	// (default LockStale); it must be the backups' LockTiming.Stale.
	LockStale time.Duration
	// TempGrace is how old a temporary file that a killed writer left in
	// a local repository (.tmp-*) must be before it is removed (default
	// DefaultTempGrace), judged by the storage's own clock.
	TempGrace time.Duration
	// Repack rewrites the live chunks of packs more than MaxUnused of
	// whose bytes no snapshot references into new packs, and makes the
	// old ones candidates of the marker (repack.go). It needs an
	// operator's identity; without one, prune only reports what a repack
	// would free. MaxUnused is a share in (0, 1); 0 means
	// DefaultMaxUnused.
	Repack    bool
	MaxUnused float64
}

// DefaultTempGrace is the default PruneOptions.TempGrace: far longer than
// any one object takes to write.
const DefaultTempGrace = time.Hour

// tempSweeper is a backend whose writers leave temporary files behind
// when killed mid-write (storage/local).
type tempSweeper interface {
	SweepTemp(ctx context.Context, grace time.Duration, dryRun bool) (files int, bytes int64, err error)
}

// PruneReport says what Prune found and did.
type PruneReport struct {
	Marker         string   `json:"marker,omitempty"`
	Candidates     int      `json:"candidate_packs"`
	CandidateBytes int64    `json:"candidate_bytes"`
	Deleted        int      `json:"deleted_packs"`
	DeletedBytes   int64    `json:"deleted_bytes"`
	Kept           int      `json:"kept_packs"` // candidates a snapshot referenced by sweep time
	CandidateLists int      `json:"candidate_lists"`
	DeletedLists   int      `json:"deleted_lists"`
	KeptLists      int      `json:"kept_lists"` // candidate lists a snapshot referenced by sweep time
	Locked         []string `json:"locked,omitempty"`
	WaitingFor     []string `json:"waiting_for,omitempty"` // backups that block the sweep
	StaleLocks     int      `json:"stale_locks_removed"`
	DeadLocks      []string `json:"dead_locks_removed,omitempty"` // locks of processes that died on this host
	TempFiles      int      `json:"temp_files_removed"`           // temporary files of killed writers (local repositories)
	TempBytes      int64    `json:"temp_removed_bytes"`
	// Foreign are objects under data/, index/ or snapshots/ whose names
	// are not coffer's (a .DS_Store, a stray copy): prune leaves them.
	Foreign []string `json:"foreign_objects,omitempty"`
	// WALCandidates are the WAL files no physical base backup needs;
	// WALDeleted those deleted.
	WALCandidates  int  `json:"wal_candidates"`
	WALDeleted     int  `json:"wal_deleted"`
	IndexRewritten bool `json:"index_rewritten"`
	Swept          bool `json:"swept"`
	// Repack says how much repacking would free, or freed (with
	// PruneOptions.Repack); absent when a pending marker was swept.
	Repack *RepackReport `json:"repack,omitempty"`
}

// Prune removes packs that no snapshot needs, with the two-phase protocol
// of docs/format.md, safe while backups run elsewhere. It needs only the
// writer key.
func (r *Repo) Prune(ctx context.Context, opts PruneOptions) (*PruneReport, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockStale <= 0 {
		opts.LockStale = LockStale
	}
	rep := &PruneReport{}
	// The storage's time, taken before any lock is listed: a lock written
	// or refreshed later is dated later, so it can only look younger.
	var now time.Time
	if !opts.DryRun {
		var err error
		if now, err = r.StorageNow(ctx); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	locks, err := r.liveLocks(ctx, opts, now, rep)
	if err != nil {
		return nil, err
	}
	if ts, ok := storage.Find[tempSweeper](r.be); ok {
		grace := opts.TempGrace
		if grace <= 0 {
			grace = DefaultTempGrace
		}
		if rep.TempFiles, rep.TempBytes, err = ts.SweepTemp(ctx, grace, opts.DryRun); err != nil {
			return nil, fmt.Errorf("prune: remove the temporary files of killed writers in %s: %w", r.be.Location(), err)
		}
	}
	markerID, marker, err := r.pendingMarker(ctx)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{"index", "snapshots"} {
		if err := r.listIDs(ctx, dir, func(name string) { rep.Foreign = append(rep.Foreign, name) }, nil); err != nil {
			return nil, err
		}
	}
	if err := r.pruneWAL(ctx, opts, rep); err != nil {
		return nil, fmt.Errorf("prune the WAL archive: %w", err)
	}
	if marker == nil {
		cands, sizes, lists, err := r.pruneCandidates(ctx, opts, rep)
		if err != nil {
			return nil, err
		}
		rep.Candidates, rep.CandidateLists = len(cands), len(lists)
		for _, s := range sizes {
			rep.CandidateBytes += s
		}
		if opts.DryRun || len(cands)+len(lists) == 0 {
			return rep, nil
		}
		marker = &PruneMarker{versioned: versioned{FormatVersion}, Created: opts.Now().UTC(), Host: opts.Host, Candidates: cands, Lists: lists}
		if markerID, err = r.saveMeta(ctx, "prune", "prune", marker, false); err != nil {
			return nil, err
		}
		// Locks written before the marker existed may not honour it.
		if locks, err = r.liveLocks(ctx, opts, now, nil); err != nil {
			return nil, err
		}
	} else {
		rep.Candidates, rep.CandidateLists = len(marker.Candidates), len(marker.Lists)
	}
	rep.Marker = markerID.String()
	for _, l := range locks {
		if !containsID(l.Honours, markerID) {
			rep.WaitingFor = append(rep.WaitingFor, l.Describe())
		}
	}
	if len(rep.WaitingFor) > 0 || opts.DryRun {
		return rep, nil
	}
	if err := r.sweep(ctx, markerID, marker, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

func containsID(ids []ID, id ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// liveLocks returns the locks of running backups and, unless dry, removes
// stale ones (counting them in rep when given). now is the storage's time
// (zero in a dry run: then only locks of dead processes count as stale).
func (r *Repo) liveLocks(ctx context.Context, opts PruneOptions, now time.Time, rep *PruneReport) ([]*LockInfo, error) {
	all, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	var live []*LockInfo
	for _, e := range all {
		dead := e.Info.deadHere()
		if !dead && (now.IsZero() || !e.Stale(now, opts.LockStale)) {
			live = append(live, e.Info)
			continue
		}
		if opts.DryRun {
			continue
		}
		if err := r.be.Delete(ctx, "locks/"+e.ID.String()); err != nil || rep == nil {
			continue
		}
		if dead {
			rep.DeadLocks = append(rep.DeadLocks, e.Info.Describe())
		} else {
			rep.StaleLocks++
		}
	}
	return live, nil
}

// pendingMarker returns the oldest marker left by an earlier prune.
func (r *Repo) pendingMarker(ctx context.Context) (ID, *PruneMarker, error) {
	ids, err := r.ListIDs(ctx, "prune")
	if err != nil {
		return ID{}, nil, err
	}
	var bestID ID
	var best *PruneMarker
	for _, id := range ids {
		var m PruneMarker
		if err := r.loadMeta(ctx, "prune", "prune", id, &m); err != nil {
			if isNotFound(err) {
				continue
			}
			return ID{}, nil, err
		}
		if err := m.check("prune/" + id.String()); err != nil {
			return ID{}, nil, err
		}
		if best == nil || m.Created.Before(best.Created) {
			bestID, best = id, &m
		}
	}
	return bestID, best, nil
}

// references are what the snapshots need: chunks, and chunk lists.
type references struct {
	chunks, lists map[ID]bool
}

// referenced returns every chunk and chunk list a snapshot needs. A
// snapshot that cannot be read, or one of its lists, stops prune: deleting
// what it might need would lose data.
func (r *Repo) referenced(ctx context.Context) (*references, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune needs every snapshot: %w\nforget or repair the damaged snapshot first", err)
	}
	refs := &references{chunks: map[ID]bool{}, lists: map[ID]bool{}}
	read := chunkListCounts{}
	for _, s := range snaps {
		err := r.walkSnapshot(ctx, s, read, func(l ID) { refs.lists[l] = true }, func(_, c ID) { refs.chunks[c] = true })
		if err != nil {
			return nil, fmt.Errorf("prune needs every snapshot's chunks: %w\nforget or repair the damaged snapshot first", err)
		}
	}
	return refs, nil
}

// unreferencedLists returns the stored chunk lists that refs does not
// name, sorted, and notes names under chunklists/ that are not coffer's.
func (r *Repo) unreferencedLists(ctx context.Context, refs *references, rep *PruneReport) ([]ID, error) {
	var out []ID
	err := r.listIDs(ctx, chunkListDir, func(name string) { rep.Foreign = append(rep.Foreign, name) }, func(id ID) {
		if !refs.lists[id] {
			out = append(out, id)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, err
}

// pruneCandidates returns the packs none of whose chunks a snapshot
// references: indexed packs, and packs in no index (left by killed
// backups, or by one still running: the marker protocol waits for those);
// and the packs of earlier key generations whose referenced chunks a pack
// of the current one holds (re-encrypted copies); and the chunk lists no
// snapshot references.
// With opts.Repack, the packs repack rewrote are candidates too.
func (r *Repo) pruneCandidates(ctx context.Context, opts PruneOptions, rep *PruneReport) ([]ID, map[ID]int64, []ID, error) {
	all, err := r.referenced(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	lists, err := r.unreferencedLists(ctx, all, rep)
	if err != nil {
		return nil, nil, nil, err
	}
	refs := all.chunks
	_, entries, err := r.indexEntries(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	stored, err := r.storedPacks(ctx, func(name string) { rep.Foreign = append(rep.Foreign, name) })
	if err != nil {
		return nil, nil, nil, err
	}
	entries = onlyStored(entries, stored)
	needed := map[ID]bool{}
	current := currentChunks(entries, r.cfg.Gen())
	for _, e := range entries {
		if packReferenced(e, refs) && !supersededByCurrent(e, r.cfg.Gen(), refs, current) {
			needed[e.ID] = true
		}
	}
	if err := r.repackLive(ctx, opts, entries, refs, needed, rep); err != nil {
		return nil, nil, nil, err
	}
	sizes := map[ID]int64{}
	for id, size := range stored {
		if !needed[id] {
			sizes[id] = size
		}
	}
	cands := make([]ID, 0, len(sizes))
	for id := range sizes {
		cands = append(cands, id)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].String() < cands[j].String() })
	return cands, sizes, lists, nil
}

// storedPacks lists data/: the size of every pack stored, by id; foreign
// is told of the names that are not a pack's.
func (r *Repo) storedPacks(ctx context.Context, foreign func(string)) (map[ID]int64, error) {
	out := map[ID]int64{}
	err := r.be.List(ctx, "data/", func(fi storage.Info) error {
		if id, ok := parsePackName(fi.Name); ok {
			out[id] = fi.Size
		} else if foreign != nil {
			foreign(fi.Name)
		}
		return nil
	})
	return out, err
}

// onlyStored returns the entries of the packs stored. An index entry of a
// pack that is not (a replayed index object, a pack deleted by hand) holds
// no copy of anything: counting its chunks as stored elsewhere would let
// prune delete the copy that is.
func onlyStored(entries []PackEntry, stored map[ID]int64) []PackEntry {
	out := entries[:0:0]
	for _, e := range entries {
		if _, ok := stored[e.ID]; ok {
			out = append(out, e)
		}
	}
	return out
}

// parsePackName returns the id of a pack named as PackName names it.
func parsePackName(name string) (ID, bool) {
	id, err := ParseID(name[strings.LastIndex(name, "/")+1:])
	if err != nil || PackName(id) != name {
		return ID{}, false
	}
	return id, true
}

// sweep deletes the marker's candidates that are still unreferenced.
func (r *Repo) sweep(ctx context.Context, markerID ID, m *PruneMarker, rep *PruneReport) error {
	if err := r.confirmKeys(ctx); err != nil {
		return err
	}
	all, err := r.referenced(ctx)
	if err != nil {
		return err
	}
	refs := all.chunks
	files, entries, err := r.indexEntries(ctx)
	if err != nil {
		return err
	}
	doomed := map[ID]bool{}
	for _, c := range m.Candidates {
		doomed[c] = true
	}
	stored, err := r.storedPacks(ctx, nil)
	if err != nil {
		return err
	}
	// A referenced chunk keeps its doomed pack unless a stored pack that
	// stays holds a copy (a backup honouring the marker stored it again,
	// or a repack copied it).
	elsewhere := map[ID]bool{}
	for _, e := range onlyStored(entries, stored) {
		if !doomed[e.ID] {
			for _, b := range e.Blobs {
				elsewhere[b.ID] = true
			}
		}
	}
	var keep []PackEntry
	for _, e := range entries {
		if doomed[e.ID] && needs(e, refs, elsewhere) {
			delete(doomed, e.ID)
			rep.Kept++
		}
		if !doomed[e.ID] {
			keep = append(keep, e)
		}
	}
	superseded, err := r.saveConsolidated(ctx, files, keep)
	if err != nil {
		return err
	}
	rep.IndexRewritten = true
	for _, f := range superseded {
		r.deleteOrNote(ctx, "index/"+f.String(), rep)
	}
	for _, id := range m.Candidates {
		if !doomed[id] {
			continue
		}
		name := PackName(id)
		info, err := r.be.Stat(ctx, name)
		if isNotFound(err) {
			continue
		}
		if r.deleteOrNote(ctx, name, rep) {
			rep.Deleted++
			rep.DeletedBytes += info.Size
		}
	}
	for _, id := range m.Lists {
		switch {
		case all.lists[id]:
			rep.KeptLists++ // a backup that did not honour the marker reused it
		case r.deleteOrNote(ctx, chunkListDir+"/"+id.String(), rep):
			rep.DeletedLists++
		}
	}
	if err := r.be.Delete(ctx, "prune/"+markerID.String()); err != nil {
		return fmt.Errorf("delete prune marker: %w", err)
	}
	rep.Swept = true
	return nil
}

func packReferenced(e PackEntry, refs map[ID]bool) bool {
	for _, b := range e.Blobs {
		if refs[b.ID] {
			return true
		}
	}
	return false
}

// needs reports whether pack e holds a referenced chunk found nowhere else.
func needs(e PackEntry, refs, elsewhere map[ID]bool) bool {
	for _, b := range e.Blobs {
		if refs[b.ID] && !elsewhere[b.ID] {
			return true
		}
	}
	return false
}

// deleteOrNote deletes an object; one under retention is noted, not fatal.
func (r *Repo) deleteOrNote(ctx context.Context, name string, rep *PruneReport) bool {
	err := r.be.Delete(ctx, name)
	if errors.Is(err, storage.ErrLocked) {
		rep.Locked = append(rep.Locked, name)
		return false
	}
	return err == nil
}

// indexEntries reads every index object that is not superseded and
// returns their ids and the packs they list (each pack once).
func (r *Repo) indexEntries(ctx context.Context) ([]ID, []PackEntry, error) {
	ids, err := r.ListIDs(ctx, "index")
	if err != nil {
		return nil, nil, err
	}
	var all []*IndexFile
	superseded := map[ID]bool{}
	for _, id := range ids {
		f, err := r.LoadIndexFile(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("prune needs every index object: %w", err)
		}
		all = append(all, f)
		for _, s := range f.Supersedes {
			superseded[s] = true
		}
	}
	seen := map[ID]bool{}
	var entries []PackEntry
	for i, f := range all {
		if superseded[ids[i]] {
			continue
		}
		for _, p := range f.Packs {
			if !seen[p.ID] {
				seen[p.ID] = true
				entries = append(entries, p)
			}
		}
	}
	return ids, entries, nil
}

// maxIndexBlobs bounds the blobs of an index object that prune writes
// (backups write one every 64 packs), so that no reader must hold a
// huge one: about 10 MB of JSON, 5 MB stored.
var maxIndexBlobs = 100_000

// saveConsolidated stores packs as index objects of at most maxIndexBlobs
// blobs that replace files, and returns the objects of files they
// supersede. Only the last one written names them in supersedes: killed
// before it, the repository holds the old objects and some new ones
// listing the same packs again (a chunk may be listed twice); after it,
// the new objects alone. Either way every pack that stays is indexed. A
// part may be an object of files itself (the same packs, as a backup or
// an interrupted prune wrote them: the same plaintext has the same name):
// that one is neither superseded nor deleted.
func (r *Repo) saveConsolidated(ctx context.Context, files []ID, packs []PackEntry) ([]ID, error) {
	parts := splitPacks(packs, maxIndexBlobs)
	written := map[ID]bool{}
	var superseded []ID
	for i, part := range parts {
		f := &IndexFile{Packs: part}
		if i == len(parts)-1 {
			for _, id := range files {
				if !written[id] {
					superseded = append(superseded, id)
				}
			}
			f.Supersedes = superseded
		}
		id, err := r.SaveIndex(ctx, f)
		if err != nil {
			return nil, err
		}
		written[id] = true
	}
	return superseded, nil
}

// splitPacks cuts packs into groups of at most max blobs (a pack with more
// is a group of its own); there is always at least one group.
func splitPacks(packs []PackEntry, max int) [][]PackEntry {
	var parts [][]PackEntry
	var cur []PackEntry
	n := 0
	for _, p := range packs {
		if len(cur) > 0 && n+len(p.Blobs) > max {
			parts, cur, n = append(parts, cur), nil, 0
		}
		cur = append(cur, p)
		n += len(p.Blobs)
	}
	return append(parts, cur)
}
