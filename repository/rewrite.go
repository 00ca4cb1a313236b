package repository

import (
	"bytes"
	"context"
	"fmt"
	"sort"
)

// rewritePack reads pack e whole, verifies every blob that keep selects
// against its chunk id, and writes those blobs, compressed as they were,
// into a new pack encrypted to the current repository key, which it
// stores. It returns the new pack's index entry, or ok false when keep
// selects nothing. The old pack is left alone: it goes the way of every
// pack that no snapshot needs (prune's marker and sweep), after an index
// object lists the new one. Re-encryption after a key rotation rewrites
// the referenced blobs of packs of earlier generations with it; repacking
// (repack.go) gathers the live blobs of several packs into one with
// copyBlobs.
func (r *Repo) rewritePack(ctx context.Context, e PackEntry, keep func(Blob) bool, buf *bytes.Buffer) (PackEntry, bool, error) {
	var pw *PackWriter
	ok, err := r.copyBlobs(ctx, e, keep, func() (*PackWriter, error) {
		var err error
		pw, err = r.NewPackWriter(buf, int(e.Plain))
		return pw, err
	})
	if err != nil || !ok {
		return PackEntry{}, false, err
	}
	ne, nct, err := pw.Finish()
	if err != nil {
		return PackEntry{}, false, err
	}
	if err := r.SavePack(ctx, ne, nct); err != nil {
		return PackEntry{}, false, fmt.Errorf("rewrite %s: %w", PackName(e.ID), err)
	}
	return ne, true, nil
}

// copyBlobs reads pack e whole, checks it against its name, and adds every
// blob keep selects, compressed as it was, to the pack writer that dst
// returns (called once, and only when keep selects a blob), after checking
// the blob against its chunk id: a blob that storage planted or altered is
// never carried into a new pack, where its pack's name would vouch for it.
// It reports whether keep selected anything.
func (r *Repo) copyBlobs(ctx context.Context, e PackEntry, keep func(Blob) bool, dst func() (*PackWriter, error)) (bool, error) {
	var blobs []Blob
	for _, b := range e.Blobs {
		if keep(b) {
			blobs = append(blobs, b)
		}
	}
	if len(blobs) == 0 {
		return false, nil
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Off < blobs[j].Off })
	name := PackName(e.ID)
	ct, err := readBounded(ctx, r.be, name, e.Size)
	if err != nil {
		return false, err
	}
	if int64(len(ct)) != e.Size || !VerifyPackChecksum(e.ID, ct) {
		return false, &CorruptError{Object: name, Reason: "its content does not match its name (damaged): restore it from a copy, or forget the snapshots that need it"}
	}
	pw, err := dst()
	if err != nil {
		return false, err
	}
	p := PackInfo{ID: e.ID, Size: e.Size, Plain: e.Plain}
	err = r.readBlobsRaw(ctx, &memPack{name: name, data: ct}, p, blobs, func(b Blob, compressed, _ []byte) error {
		return pw.Add(b.ID, compressed, int(b.Raw))
	})
	return err == nil, err
}
