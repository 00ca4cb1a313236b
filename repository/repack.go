package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
)

// DefaultMaxUnused is the default PruneOptions.MaxUnused: a live pack of
// which more than this share no snapshot references is repacked.
const DefaultMaxUnused = 0.10

// RepackReport says what repacking found and did.
type RepackReport struct {
	// Packs are the live packs more than MaxUnused of which no snapshot
	// references, UnusedBytes the bytes of theirs no snapshot references:
	// what a repack frees (the whole of them, less what it writes anew).
	Packs       int   `json:"packs"`
	UnusedBytes int64 `json:"unused_bytes"`
	// Rewritten are those whose live blobs were copied into the Written
	// new packs of WrittenBytes; they are candidates of the prune marker
	// from then on, like packs no snapshot references.
	Rewritten    int   `json:"rewritten_packs"`
	Written      int   `json:"new_packs"`
	WrittenBytes int64 `json:"written_bytes"`
	// NeedsIdentity says that repacking was asked for but prune has only
	// the writer key, which cannot decrypt packs.
	NeedsIdentity bool `json:"needs_identity,omitempty"`
	// Locked are packs Object Lock retains now: rewriting them would add
	// bytes that could not be freed, so they are left.
	Locked []string `json:"locked,omitempty"`
	// Damaged are packs that failed verification: they are left as they
	// are for check --read-data to report.
	Damaged []string `json:"damaged,omitempty"`
}

// repackPlan is the live packs to rewrite and, for each live chunk that
// only they hold, the one of them it is copied from.
type repackPlan struct {
	packs []PackEntry
	from  map[ID]ID // chunk → the pack it is copied from
}

// planRepack chooses, among the packs that stay (needed), those more than
// maxUnused of whose blob bytes no snapshot references, and counts them in
// rep (dropLocked then leaves out those Object Lock retains).
func planRepack(entries []PackEntry, refs, needed map[ID]bool, maxUnused float64, rep *RepackReport) *repackPlan {
	use := packUsage(entries, refs)
	plan := &repackPlan{from: map[ID]ID{}}
	chosen := map[ID]bool{}
	for _, e := range entries {
		u := use[e.ID]
		if needed[e.ID] && !chosen[e.ID] && u.unused() > 0 && u.unusedShare() > maxUnused {
			chosen[e.ID] = true
			plan.packs = append(plan.packs, e)
			rep.Packs++
			rep.UnusedBytes += u.unused()
		}
	}
	// A live chunk that a pack which stays holds too is not copied: that
	// is what lets a repack interrupted after its new index resume
	// without writing its chunks a second time.
	staying := map[ID]bool{}
	for _, e := range entries {
		if needed[e.ID] && !chosen[e.ID] {
			for _, b := range e.Blobs {
				staying[b.ID] = true
			}
		}
	}
	for _, e := range plan.packs {
		for _, b := range e.Blobs {
			if _, dup := plan.from[b.ID]; refs[b.ID] && !staying[b.ID] && !dup {
				plan.from[b.ID] = e.ID
			}
		}
	}
	return plan
}

// dropLocked removes from the plan the packs Object Lock retains now.
func (r *Repo) dropLocked(ctx context.Context, plan *repackPlan, rep *RepackReport) error {
	names := make([]string, len(plan.packs))
	for i, e := range plan.packs {
		names[i] = PackName(e.ID)
	}
	retained, err := r.retainedPacks(ctx, names)
	if err != nil || len(retained) == 0 {
		return err
	}
	keep := plan.packs[:0]
	for _, e := range plan.packs {
		if retained[PackName(e.ID)] {
			rep.Locked = append(rep.Locked, PackName(e.ID))
			continue
		}
		keep = append(keep, e)
	}
	plan.packs = keep
	sort.Strings(rep.Locked)
	return nil
}

// repack rewrites the plan's packs: their live chunks into new packs of
// about the configured pack size, each verified on the way (copyBlobs),
// and indexed (an index object every 64 new packs and one at the end)
// before it returns. It returns the packs whose live chunks are now held
// by indexed packs, which the caller makes candidates of its marker, and
// the new packs, which it must not. A damaged pack is left as it is and
// named in rep.
func (r *Repo) repack(ctx context.Context, plan *repackPlan, rep *RepackReport) (done map[ID]bool, written []ID, err error) {
	w := &repackWriter{r: r, target: int64(r.cfg.PackSize), buf: new(bytes.Buffer)}
	var copied []PackEntry
	damaged := map[ID]bool{}
	for _, e := range plan.packs {
		if err = ctx.Err(); err != nil {
			break
		}
		_, err = r.copyBlobs(ctx, e, func(b Blob) bool { return plan.from[b.ID] == e.ID }, w.writer)
		var ce *CorruptError
		if errors.As(err, &ce) {
			rep.Damaged = append(rep.Damaged, PackName(e.ID))
			damaged[e.ID], err = true, nil
			continue
		}
		if err != nil {
			break
		}
		copied = append(copied, e)
		if err = w.cut(ctx, false); err != nil {
			break
		}
	}
	// What was written is indexed even when a pack failed, so that the
	// next run resumes rather than writes it again.
	if ferr := w.cut(ctx, true); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, w.written, fmt.Errorf("prune --repack: %w (run prune --repack again to continue)", err)
	}
	done = map[ID]bool{}
	for _, e := range copied {
		if !holdsChunkOf(e, plan.from, damaged) {
			done[e.ID] = true
		}
	}
	rep.Rewritten = len(done)
	rep.Written, rep.WrittenBytes = w.packs, w.bytes
	return done, w.written, nil
}

// holdsChunkOf reports whether pack e holds a chunk that was to be copied
// from one of the packs in from: a rewritten pack that shares a live chunk
// with a damaged one stays, since the copy was not made.
func holdsChunkOf(e PackEntry, from map[ID]ID, packs map[ID]bool) bool {
	for _, b := range e.Blobs {
		if src, ok := from[b.ID]; ok && src != e.ID && packs[src] {
			return true
		}
	}
	return false
}

// repackWriter fills new packs with copied blobs and indexes them.
type repackWriter struct {
	r         *Repo
	target    int64
	buf       *bytes.Buffer
	pw        *PackWriter
	unindexed []PackEntry
	written   []ID
	packs     int
	bytes     int64
}

// writer returns the pack being filled, starting one if none is.
func (w *repackWriter) writer() (*PackWriter, error) {
	if w.pw != nil {
		return w.pw, nil
	}
	var err error
	w.pw, err = w.r.NewPackWriter(w.buf, int(w.target))
	return w.pw, err
}

// cut stores the pack being filled once it reaches the target size (or,
// with final, whatever it holds), and indexes the stored packs once there
// are 64 of them (with final, however many).
func (w *repackWriter) cut(ctx context.Context, final bool) error {
	if w.pw != nil && w.pw.Count() > 0 && (final || w.pw.Plain() >= w.target) {
		e, ct, err := w.pw.Finish()
		if err != nil {
			return err
		}
		w.pw = nil
		if err := w.r.SavePack(ctx, e, ct); err != nil {
			return err
		}
		w.unindexed = append(w.unindexed, e)
		w.written = append(w.written, e.ID)
		w.packs++
		w.bytes += e.Size
	}
	if len(w.unindexed) == 0 || (!final && len(w.unindexed) < 64) {
		return nil
	}
	if _, err := w.r.SaveIndex(ctx, &IndexFile{Packs: w.unindexed}); err != nil {
		return err
	}
	w.unindexed = nil
	return nil
}

// repackLive counts in rep what repacking the live packs would free and,
// with opts.Repack, an operator's identity and no dry run, repacks them:
// the packs rewritten are no longer needed.
func (r *Repo) repackLive(ctx context.Context, opts PruneOptions, entries []PackEntry, refs, needed map[ID]bool, rep *PruneReport) error {
	maxUnused := opts.MaxUnused
	if maxUnused <= 0 {
		maxUnused = DefaultMaxUnused
	}
	rep.Repack = &RepackReport{}
	plan := planRepack(entries, refs, needed, maxUnused, rep.Repack)
	if !opts.Repack || len(plan.packs) == 0 {
		return nil
	}
	if r.data == nil {
		rep.Repack.NeedsIdentity = true
		return nil
	}
	if err := r.dropLocked(ctx, plan, rep.Repack); err != nil {
		return fmt.Errorf("prune --repack: read the packs' retention: %w", err)
	}
	if opts.DryRun {
		return nil
	}
	done, written, err := r.repack(ctx, plan, rep.Repack)
	for id := range done {
		delete(needed, id)
	}
	for _, id := range written {
		needed[id] = true
	}
	return err
}
