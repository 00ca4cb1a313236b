package mask

import (
	"hash/maphash"
	"strings"
)

// memo remembers the pseudonyms of recent values of one purpose, so that
// a value that repeats (a first name, a city, a date) is derived once: a
// fixed number of slots, each holding the last value whose hash chose it,
// so that its memory stays the same whatever the size of the database.
// Only values and pseudonyms up to memoMax bytes are kept. It serves the
// columns that are not unique: their pseudonym of a value depends on the
// purpose and the value alone (a unique column's also depends on the
// values before it).
type memo struct {
	seed  maphash.Seed
	slots [memoSlots]memoSlot
}

// memoSlot is one remembered value: its hash first, so that a value that
// is not remembered is told apart without reading the strings.
type memoSlot struct {
	h       uint64
	in, out string
}

const (
	memoSlots = 4096
	memoMax   = 64
)

func newMemo() *memo { return &memo{seed: maphash.MakeSeed()} }

// get returns v's pseudonym if it is remembered, and v's hash for put.
func (m *memo) get(v string) (string, uint64, bool) {
	h := maphash.String(m.seed, v)
	s := &m.slots[h%memoSlots]
	if s.h != h || s.out == "" || s.in != v {
		return "", h, false
	}
	return s.out, h, true
}

// put remembers out as the pseudonym of v, whose hash is h.
func (m *memo) put(v string, h uint64, out string) {
	if len(v) <= memoMax && len(out) <= memoMax && out != "" {
		m.slots[h%memoSlots] = memoSlot{h: h, in: strings.Clone(v), out: out}
	}
}
