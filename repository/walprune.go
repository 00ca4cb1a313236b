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
	var seg WALSegments
	var first uint64 // the first segment of the oldest base backup
	found := false
	for _, s := range snaps {
		if s.Physical == nil {
			continue
		}
		sg, err := s.Physical.Check("snapshots/" + s.ID().String())
		if err != nil {
			return err // deleting by a hostile or damaged start could lose WAL
		}
		_, n, _ := sg.Parse(s.Physical.StartWAL)
		if !found || n < first {
			seg, first, found = sg, n, true
		}
	}
	if !found {
		return nil
	}
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return err
	}
	for _, f := range files {
		if len(f.File) < 24 || f.File[8:] == ".history" {
			continue // history files stay
		}
		if _, n, ok := seg.Parse(f.File[:24]); !ok || n >= first {
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
