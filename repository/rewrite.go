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
// rewrites the live blobs of mostly unreferenced packs.
func (r *Repo) rewritePack(ctx context.Context, e PackEntry, keep func(Blob) bool, buf *bytes.Buffer) (PackEntry, bool, error) {
	var blobs []Blob
	for _, b := range e.Blobs {
		if keep(b) {
			blobs = append(blobs, b)
		}
	}
	if len(blobs) == 0 {
		return PackEntry{}, false, nil
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Off < blobs[j].Off })
	name := PackName(e.ID)
	ct, err := readBounded(ctx, r.be, name, e.Size)
	if err != nil {
		return PackEntry{}, false, err
	}
	if int64(len(ct)) != e.Size || !VerifyPackChecksum(e.ID, ct) {
		return PackEntry{}, false, &CorruptError{Object: name, Reason: "its content does not match its name (damaged): restore it from a copy, or forget the snapshots that need it"}
	}
	pw, err := r.NewPackWriter(buf, int(e.Plain))
	if err != nil {
		return PackEntry{}, false, err
	}
	p := PackInfo{ID: e.ID, Size: e.Size, Plain: e.Plain}
	err = r.readBlobsRaw(ctx, &memPack{name: name, data: ct}, p, blobs, func(b Blob, compressed, _ []byte) error {
		return pw.Add(b.ID, compressed, int(b.Raw))
	})
	if err != nil {
		return PackEntry{}, false, err
	}
	ne, nct, err := pw.Finish()
	if err != nil {
		return PackEntry{}, false, err
	}
	if err := r.SavePack(ctx, ne, nct); err != nil {
		return PackEntry{}, false, fmt.Errorf("rewrite %s: %w", name, err)
	}
	return ne, true, nil
}
