package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A timeline history file (TTTTTTTT.history, written by a server when it
// is promoted and archived like a segment) lists the ancestors of
// timeline T, oldest first, one line each:
//
//	PARENT<TAB>SWITCHPOINT<TAB>REASON
//
// timeline PARENT ended at WAL location SWITCHPOINT, where the next one
// (the next line's, or T) branched off. Recovery that follows timelines
// reads the segments of each timeline up to the segment holding its
// switch point, and from that segment on the next timeline's.
//
// A possibly compromised database host wrote it: it is parsed strictly
// and bounded, and nothing but its numbers is used.

// MaxHistoryFile bounds a history file (a line per ancestor timeline).
const MaxHistoryFile = 1 << 20

// HistoryEntry is one ancestor: Timeline ended at End.
type HistoryEntry struct {
	Timeline uint32
	End      uint64
}

// History is a timeline's ancestors, oldest first.
type History []HistoryEntry

// ParseHistory parses the history file of timeline tl.
func ParseHistory(tl uint32, b []byte) (History, error) {
	if len(b) > MaxHistoryFile {
		return nil, fmt.Errorf("the history file of timeline %d is %d bytes, more than %d", tl, len(b), MaxHistoryFile)
	}
	var h History
	for i, line := range bytes.Split(b, []byte("\n")) {
		s := strings.TrimRight(string(line), "\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(strings.TrimSpace(s), "#") {
			continue
		}
		f := strings.SplitN(s, "\t", 3)
		bad := func(why string) (History, error) {
			return nil, fmt.Errorf("the history file of timeline %d, line %d: %s", tl, i+1, why)
		}
		if len(f) < 2 {
			return bad("not PARENT<TAB>SWITCHPOINT<TAB>REASON")
		}
		parent, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || parent == 0 || strconv.FormatUint(parent, 10) != f[0] {
			return bad("the parent is not a timeline's number")
		}
		end, err := ParseLSN(f[1])
		if err != nil {
			return bad("the switch point is not a WAL location")
		}
		if uint32(parent) >= tl {
			return bad("the parent is not an earlier timeline")
		}
		if n := len(h); n > 0 && (uint32(parent) <= h[n-1].Timeline || end < h[n-1].End) {
			return bad("the timelines are not in increasing order")
		}
		h = append(h, HistoryEntry{Timeline: uint32(parent), End: end})
	}
	if len(h) == 0 && tl > 1 {
		return nil, fmt.Errorf("the history file of timeline %d names no parent", tl)
	}
	return h, nil
}

// HistoryName is the history file's name of timeline tl.
func HistoryName(tl uint32) string { return fmt.Sprintf("%08X.history", tl) }

// Timelines are the archive's timeline histories.
type Timelines struct {
	Histories map[uint32]History
}

// LoadTimelines fetches, checks and parses every history file in files
// (as WALFiles lists them). A history file that fails its checks is an
// error naming its object. It needs an operator's identity.
func (r *Repo) LoadTimelines(ctx context.Context, files []WALObject) (*Timelines, error) {
	t := &Timelines{Histories: map[uint32]History{}}
	for _, f := range files {
		name, ok := strings.CutSuffix(f.File, ".history")
		if !ok {
			continue
		}
		tl, err := strconv.ParseUint(name, 16, 32)
		if err != nil || tl < 2 {
			return nil, &CorruptError{Object: f.Name(), Reason: "a history file of no timeline after the first"}
		}
		if _, done := t.Histories[uint32(tl)]; done {
			continue // another generation's copy
		}
		b, err := r.FetchWAL(ctx, f.File)
		if err != nil {
			return nil, err
		}
		h, err := ParseHistory(uint32(tl), b)
		if err != nil {
			return nil, &CorruptError{Object: f.Name(), Reason: err.Error()}
		}
		t.Histories[uint32(tl)] = h
	}
	return t, nil
}

// Latest is the timeline recovery_target_timeline = 'latest' follows from
// timeline base: PostgreSQL looks for the history files of base+1, base+2
// … and stops at the first missing one.
func (t *Timelines) Latest(base uint32) uint32 {
	for {
		if _, ok := t.Histories[base+1]; !ok {
			return base
		}
		base++
	}
}

// Span is a stretch of a recovery's WAL on one timeline: from segment
// number From on, up to the next span's.
type Span struct {
	Timeline uint32
	From     uint64
}

// Path is the timelines recovery from a base backup follows, in order.
type Path []Span

// TimelineOf is the timeline whose segment number no recovery reads.
func (p Path) TimelineOf(no uint64) uint32 {
	if len(p) == 0 {
		return 0
	}
	tl := p[0].Timeline
	for _, s := range p {
		if no >= s.From {
			tl = s.Timeline
		}
	}
	return tl
}

// Target is the path's last timeline.
func (p Path) Target() uint32 {
	if len(p) == 0 {
		return 0
	}
	return p[len(p)-1].Timeline
}

// Path is the way from a base backup on timeline base, starting at WAL
// location start, to timeline target: an error says why there is none
// (a history file missing, a target that did not branch from base, or
// branched before the backup started).
func (t *Timelines) Path(seg WALSegments, base uint32, start uint64, target uint32) (Path, error) {
	if target == base {
		return Path{{Timeline: base}}, nil
	}
	h, ok := t.Histories[target]
	if !ok {
		return nil, &TimelineError{Object: "wal/" + HistoryName(target) + ".g…", Reason: fmt.Sprintf("the history file of timeline %d is not in the archive: recovery cannot follow it", target)}
	}
	i := 0
	for i < len(h) && h[i].Timeline != base {
		i++
	}
	switch {
	case i == len(h):
		return nil, &TimelineError{Object: "wal/" + HistoryName(target), Reason: fmt.Sprintf("timeline %d does not descend from timeline %d, the base backup's: recover on timeline %d (--target-timeline current), or from a base backup of timeline %d", target, base, base, target)}
	case start >= h[i].End:
		return nil, &TimelineError{Object: "wal/" + HistoryName(target), Reason: fmt.Sprintf("timeline %d branched from timeline %d at %s, before the base backup started (%s): take a base backup on timeline %d", target, base, lsnString(h[i].End), lsnString(start), target)}
	}
	p := Path{{Timeline: base}}
	for j := i; j < len(h); j++ {
		next := target
		if j+1 < len(h) {
			next = h[j+1].Timeline
		}
		p = append(p, Span{Timeline: next, From: h[j].End / seg.size})
	}
	return p, nil
}

// TimelineError is a timeline a recovery cannot follow.
type TimelineError struct {
	Object string // the history file (or its name, when it is missing)
	Reason string
}

func (e *TimelineError) Error() string { return e.Object + ": " + e.Reason }

func lsnString(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// ChainPath checks that have holds every segment recovery along p reads
// from segment number from to segment number to; it returns how many
// there are and the first missing one.
func (s WALSegments) ChainPath(have map[string]bool, p Path, from, to uint64) (n int, missing string) {
	for no := from; no <= to; no++ {
		name := s.Name(p.TimelineOf(no), no)
		if !have[name] {
			return n, name
		}
		n++
	}
	return n, ""
}

// NewestOn is the number of the newest archived segment that recovery
// along p reads, or ok false.
func (s WALSegments) NewestOn(have map[string]bool, p Path) (no uint64, ok bool) {
	for name := range have {
		tl, n, valid := s.Parse(name)
		if valid && tl == p.TimelineOf(n) && (!ok || n > no) {
			no, ok = n, true
		}
	}
	return no, ok
}

// ErrNoTimelines is returned where timelines cannot be followed without
// an operator's identity (history files are encrypted like segments).
var ErrNoTimelines = errors.New("timeline histories need an operator's identity")
