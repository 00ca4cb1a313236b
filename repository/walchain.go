package repository

import (
	"context"
	"fmt"
	"strconv"
)

// WAL segment names are TTTTTTTTXXXXXXXXYYYYYYYY: the timeline, then the
// segment number split in two, "log" and "seg", with 2^32 / segment size
// segments per log.

// walSegment is a segment's timeline and number.
type walSegment struct {
	tl  uint32
	num uint64
}

func parseSegment(name string, segSize int64) (walSegment, bool) {
	if len(name) != 24 || segSize <= 0 || segSize > MaxWALFile {
		return walSegment{}, false
	}
	tl, err1 := strconv.ParseUint(name[:8], 16, 32)
	log, err2 := strconv.ParseUint(name[8:16], 16, 32)
	seg, err3 := strconv.ParseUint(name[16:], 16, 32)
	perLog := uint64(0x100000000 / segSize)
	if err1 != nil || err2 != nil || err3 != nil || seg >= perLog {
		return walSegment{}, false
	}
	return walSegment{tl: uint32(tl), num: log*perLog + seg}, true
}

func (s walSegment) name(segSize int64) string {
	perLog := uint64(0x100000000 / segSize)
	return fmt.Sprintf("%08X%08X%08X", s.tl, s.num/perLog, s.num%perLog)
}

// WALGap is a WAL segment that recovery from a base backup needs and the
// archive does not hold.
type WALGap struct {
	Snapshot ID     // the base backup
	Missing  string // the first missing segment's name
	Newest   string // the newest archived segment on the timeline
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
		start, ok := parseSegment(p.StartWAL, p.WALSegmentSize)
		if !ok {
			gaps = append(gaps, WALGap{Snapshot: s.ID(), Missing: p.StartWAL})
			continue
		}
		have := map[uint64]bool{}
		newest := start.num
		for _, f := range files {
			seg, ok := parseSegment(f.File, p.WALSegmentSize)
			if ok && seg.tl == start.tl && seg.num >= start.num {
				have[seg.num] = true
				newest = max(newest, seg.num)
			}
		}
		for n := start.num; n <= newest; n++ {
			if !have[n] {
				gaps = append(gaps, WALGap{Snapshot: s.ID(), Missing: walSegment{start.tl, n}.name(p.WALSegmentSize),
					Newest: walSegment{start.tl, newest}.name(p.WALSegmentSize)})
				break
			}
		}
	}
	return gaps, nil
}
