package repository

import "context"

// pruneWAL deletes the WAL segments that no physical base backup needs:
// those before the oldest base backup's first segment. Without a physical
// base backup it deletes nothing (the archive may be meant for one still
// to come). A base backup running now starts after every kept one, so it
// needs none of what goes. History files stay: they are small, and
// recovery across timelines reads them.
func (r *Repo) pruneWAL(ctx context.Context, opts PruneOptions, rep *PruneReport) error {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return err // prune stops on a damaged snapshot anyway (referenced)
	}
	var oldest *walSegment
	var segSize int64
	for _, s := range snaps {
		if s.Physical == nil {
			continue
		}
		seg, ok := parseSegment(s.Physical.StartWAL, s.Physical.WALSegmentSize)
		if !ok {
			return &CorruptError{Object: "snapshots/" + s.ID().String(), Reason: "its base backup names no valid first WAL segment"}
		}
		if oldest == nil || seg.num < oldest.num {
			oldest, segSize = &seg, s.Physical.WALSegmentSize
		}
	}
	if oldest == nil {
		return nil
	}
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return err
	}
	for _, f := range files {
		if len(f.File) < 24 || f.File[8:] == "" {
			continue
		}
		seg, ok := parseSegment(f.File[:24], segSize)
		if !ok || f.File[8:] == ".history" || seg.num >= oldest.num {
			continue
		}
		rep.WALCandidates++
		if opts.DryRun {
			continue
		}
		if r.deleteOrNote(ctx, f.Name(), rep) {
			rep.WALDeleted++
		}
	}
	return nil
}
