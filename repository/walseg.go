package repository

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WAL segment names are TTTTTTTTXXXXXXXXYYYYYYYY: the timeline, then the
// segment number split in two, the low part counting the segments of one
// 4 GiB stretch of WAL (256 of 16 MiB, PostgreSQL's default size).

// WALSegments is the WAL arithmetic of one segment size.
type WALSegments struct{ size uint64 }

func NewWALSegments(size int64) (WALSegments, error) {
	if size < 1<<20 || size > 1<<30 || size&(size-1) != 0 {
		return WALSegments{}, fmt.Errorf("the base backup records a WAL segment size of %d bytes, not a power of two from 1 MiB to 1 GiB", size)
	}
	return WALSegments{size: uint64(size)}, nil
}

func (s WALSegments) perID() uint64 { return (1 << 32) / s.size }

// Parse returns a segment name's timeline and number.
func (s WALSegments) Parse(name string) (tl uint32, no uint64, ok bool) {
	if len(name) != 24 || strings.ToUpper(name) != name {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(name[:8], 16, 32)
	hi, err2 := strconv.ParseUint(name[8:16], 16, 32)
	lo, err3 := strconv.ParseUint(name[16:], 16, 32)
	if err1 != nil || err2 != nil || err3 != nil || lo >= s.perID() {
		return 0, 0, false
	}
	return uint32(t), hi*s.perID() + lo, true
}

// Name is the name of segment number no on timeline tl.
func (s WALSegments) Name(tl uint32, no uint64) string {
	return fmt.Sprintf("%08X%08X%08X", tl, no/s.perID(), no%s.perID())
}

// Next is the name of the segment after name on its timeline.
func (s WALSegments) Next(name string) (string, bool) {
	tl, no, ok := s.Parse(name)
	if !ok {
		return "", false
	}
	return s.Name(tl, no+1), true
}

// OfLSN is the segment holding the byte before lsn (the end of the last
// record replayed) on timeline tl.
func (s WALSegments) OfLSN(tl uint32, lsn uint64) string { return s.Name(tl, s.SegmentOf(lsn)) }

// SegmentOf is the number of the segment holding the byte before lsn.
func (s WALSegments) SegmentOf(lsn uint64) uint64 {
	if lsn > 0 {
		lsn--
	}
	return lsn / s.size
}

// ParseLSN parses a WAL location such as 0/3000060.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL location", s)
	}
	return h<<32 | l, nil
}

// Chain checks that have holds every segment from first to last (names on
// one timeline, first ≤ last); it returns how many there are and the first
// missing one.
func (s WALSegments) Chain(have map[string]bool, first, last string) (n int, missing string) {
	tl, a, ok1 := s.Parse(first)
	_, b, ok2 := s.Parse(last)
	if !ok1 || !ok2 {
		return 0, first
	}
	for no := a; no <= b; no++ {
		name := s.Name(tl, no)
		if !have[name] {
			return n, name
		}
		n++
	}
	return n, ""
}

// Check validates what a physical base backup's snapshot says of its WAL:
// a backup host wrote it, so nothing of it is used (as a file name, in a
// message, in arithmetic) before this. It returns the segment arithmetic
// of the backup's segment size.
func (p *PhysicalInfo) Check(snapshot string) (WALSegments, error) {
	bad := func(what string) (WALSegments, error) {
		return WALSegments{}, &CorruptError{Object: snapshot, Reason: "its base backup records " + what}
	}
	seg, err := NewWALSegments(p.WALSegmentSize)
	if err != nil {
		return bad(fmt.Sprintf("a WAL segment size of %d bytes", p.WALSegmentSize))
	}
	tl, _, ok := seg.Parse(p.StartWAL)
	if !ok || int64(tl) != int64(p.Timeline) {
		return bad("a first WAL segment that is not a segment name of its timeline")
	}
	for _, lsn := range []string{p.StartLSN, p.StopLSN} {
		if _, err := ParseLSN(lsn); err != nil {
			return bad("a WAL location that is not one")
		}
	}
	if _, err := strconv.ParseUint(p.SystemIdentifier, 10, 64); err != nil {
		return bad("a system identifier that is not a number")
	}
	if p.Superuser != "" && !ValidRoleName(p.Superuser) {
		return bad("a superuser name that is not a plain role name (letters, digits, _ . $ -, at most 63 bytes)")
	}
	if v := p.ServerVersionNum; v != 0 && (v < 90600 || v >= 1000000) {
		return bad(fmt.Sprintf("a server_version_num of %d, not a PostgreSQL version", v))
	}
	if err := p.checkTablespaces(func(what string) error { _, err := bad(what); return err }); err != nil {
		return WALSegments{}, err
	}
	return seg, nil
}

var roleName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.$-]{0,62}$`)

// ValidRoleName reports whether name is a role (or system user) name that
// coffer writes into a server's configuration or a command line: plain
// characters only, never one that starts like an option. A name is data,
// and always quoted where it is used; this bounds what quoting must hold.
func ValidRoleName(name string) bool { return roleName.MatchString(name) }

// NewestPhysical returns the newest physical base backup of source (any
// source when empty) taken before before (any time when zero), or nil.
func NewestPhysical(snaps []*Snapshot, source string, before time.Time) *Snapshot {
	var best *Snapshot
	for _, s := range snaps {
		if s.Physical == nil || source != "" && s.Source != source || !before.IsZero() && !s.Time.Before(before) {
			continue
		}
		if best == nil || s.Time.After(best.Time) {
			best = s
		}
	}
	return best
}
