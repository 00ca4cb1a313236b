package repository

import "context"

// WALGap is a WAL segment that recovery from a base backup needs and the
// archive does not hold.
type WALGap struct {
	Snapshot ID     // the base backup
	Missing  string // the first missing segment's name
	Newest   string // the newest archived segment on the timeline
	Invalid  error  // instead: what the snapshot records of its WAL is not valid
}

// WALChain checks that the archive holds, for every physical base backup,
// every segment of its timeline from its first one to the newest archived
// one, and returns the first missing segment per base backup. (Recovery
// that follows a later timeline needs that timeline's history file and
// segments as well; only the backup's own timeline is checked here.)
func (r *Repo) WALChain(ctx context.Context, snaps []*Snapshot) ([]WALGap, error) {
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return nil, err
	}
	var gaps []WALGap
	for _, s := range snaps {
		p := s.Physical
		if p == nil {
			continue
		}
		seg, err := p.Check("snapshots/" + s.ID().String())
		if err != nil {
			gaps = append(gaps, WALGap{Snapshot: s.ID(), Invalid: err})
			continue
		}
		tl, start, _ := seg.Parse(p.StartWAL)
		have := map[string]bool{}
		newest := p.StartWAL
		for _, f := range files {
			if t, n, ok := seg.Parse(f.File); ok && t == tl && n >= start {
				have[f.File] = true
				newest = max(newest, f.File)
			}
		}
		if _, missing := seg.Chain(have, p.StartWAL, newest); missing != "" {
			gaps = append(gaps, WALGap{Snapshot: s.ID(), Missing: missing, Newest: newest})
		}
	}
	return gaps, nil
}
