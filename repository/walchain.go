package repository

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// WALGap is a problem of the WAL archive: a segment that recovery from a
// base backup needs and the archive does not hold, or a timeline it
// cannot follow, or a history file that is missing or fails its checks.
type WALGap struct {
	Snapshot ID     // the base backup (zero for a problem of the archive alone)
	Missing  string // the first missing segment's name
	Newest   string // the newest archived segment recovery would read
	Invalid  error  // instead: what the snapshot records of its WAL is not valid
	Object   string // instead: the history file (or its name) with Problem
	Problem  error
}

// RecoveryPath is the path recovery from base backup p follows to the
// timeline spec names: latest (or empty: as PostgreSQL's 'latest'),
// current (the backup's own) or a timeline's number. tls nil follows the
// backup's own timeline only.
func RecoveryPath(seg WALSegments, p *PhysicalInfo, tls *Timelines, spec string) (Path, error) {
	base := uint32(p.Timeline)
	start, err := ParseLSN(p.StartLSN)
	if err != nil {
		return nil, err
	}
	if tls == nil {
		return Path{{Timeline: base}}, nil
	}
	target := base
	switch spec {
	case "", "latest":
		target = tls.Latest(base)
	case "current":
	default:
		n, err := strconv.ParseUint(spec, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("timeline %q: give latest, current or a number", spec)
		}
		target = uint32(n)
	}
	return tls.Path(seg, base, start, target)
}

// archiveTimelines loads the archive's histories when this process can
// read them (an operator's identity), and reports timelines that have
// segments and no history file. Without an identity it returns nil
// Timelines: only the base backups' own timelines are followed.
func (r *Repo) archiveTimelines(ctx context.Context, files []WALObject, seg WALSegments) (*Timelines, []WALGap, uint32) {
	var gaps []WALGap
	newest := uint32(0)
	hist := map[uint32]bool{}
	for _, f := range files {
		if name, ok := strings.CutSuffix(f.File, ".history"); ok {
			if tl, err := strconv.ParseUint(name, 16, 32); err == nil {
				hist[uint32(tl)] = true
				newest = max(newest, uint32(tl))
			}
		}
	}
	reported := map[uint32]bool{}
	for _, f := range files {
		if tl, _, ok := seg.Parse(f.File); ok {
			newest = max(newest, tl)
			if tl > 1 && !hist[tl] && !reported[tl] {
				reported[tl] = true
				gaps = append(gaps, WALGap{Object: "wal/" + HistoryName(tl), Problem: fmt.Errorf("the archive holds segments of timeline %d but not its history file %s: recovery cannot follow timeline %d (it stops on the timeline before); archive the file again from the server's pg_wal (coffer wal-push pg_wal/%s)", tl, HistoryName(tl), tl, HistoryName(tl))})
			}
		}
	}
	if r.data == nil {
		return nil, gaps, newest
	}
	tls, err := r.LoadTimelines(ctx, files)
	if err != nil {
		var ce *CorruptError
		obj := "wal/"
		if errors.As(err, &ce) {
			obj = ce.Object
		}
		return nil, append(gaps, WALGap{Object: obj, Problem: err}), newest
	}
	return tls, gaps, newest
}

// WALChain checks that the archive holds, for every physical base backup,
// every segment recovery reads from its first one to the newest archived
// one, following the timelines' history files to the newest timeline
// (with an operator's identity; with the writer key, the backup's own
// timeline), and reports the timelines it cannot follow: a history file
// missing for a timeline that has segments, a base backup whose timeline
// is not an ancestor of the newest timeline at its start. Segments of a
// timeline after its switch point are not needed, and not reported.
func (r *Repo) WALChain(ctx context.Context, snaps []*Snapshot) ([]WALGap, error) {
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.File] = true
	}
	var gaps []WALGap
	var tls *Timelines
	var newest uint32
	loaded := false
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
		if !loaded {
			var archive []WALGap
			tls, archive, newest = r.archiveTimelines(ctx, files, seg)
			gaps, loaded = append(gaps, archive...), true
		}
		path, err := RecoveryPath(seg, p, tls, strconv.FormatUint(uint64(max(newest, uint32(p.Timeline))), 10))
		var te *TimelineError
		if errors.As(err, &te) {
			gaps = append(gaps, WALGap{Snapshot: s.ID(), Object: te.Object, Problem: fmt.Errorf("%s; recovery to the newest timeline (%d) cannot start from this base backup", te.Reason, newest)})
			path, _ = RecoveryPath(seg, p, tls, "latest")
		}
		if path == nil {
			path = Path{{Timeline: uint32(p.Timeline)}}
		}
		_, start, _ := seg.Parse(p.StartWAL)
		end, ok := seg.NewestOn(have, path)
		if !ok || end < start {
			end = start
		}
		if _, missing := seg.ChainPath(have, path, start, end); missing != "" {
			gaps = append(gaps, WALGap{Snapshot: s.ID(), Missing: missing, Newest: seg.Name(path.TimelineOf(end), end)})
		}
	}
	return gaps, nil
}
