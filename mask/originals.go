package mask

import (
	"hash/maphash"
	"slices"
	"strings"
	"unicode"
)

// Originals is the set of a masked load's original values of masked
// columns (those Checked keeps), by keyed hash, to prove that none of them
// is in what is loaded. It is held in memory only, and the hash is keyed
// per process, so a snapshot cannot aim collisions at it (and the hashes
// are uniform, which the index relies on). Add (or Merge) until Seal;
// Has, HasBytes, HasHash and HasIn after. Not safe for concurrent use.
//
// Sealed, it costs 8 bytes a value, sorted, an index of where each range
// of hashes starts (4 bytes per 4 values), so that a look-up (one per
// field of a verified copy) reads a few neighbouring hashes instead of
// binary-searching them all, and a filter of 8 to 16 bits per value,
// which answers most look-ups of a value that is no original from memory
// 8 times smaller.
type Originals struct {
	h      []uint64
	start  []uint32 // start[b]: the first of h whose top bits are b or more
	shift  uint     // 64 - the number of top bits start is indexed by
	filter []uint64 // bit h&fmask is set for each hash h of the set
	fmask  uint64
}

var originalsSeed = maphash.MakeSeed()

// MinChecked is the shortest original looked for: shorter values (a
// two-letter code) are found everywhere by chance.
const MinChecked = 5

// Add remembers v.
func (o *Originals) Add(v string) {
	if len(v) >= MinChecked {
		o.h = append(o.h, maphash.String(originalsSeed, v))
	}
}

// Merge adds the values of p (collected on another goroutine).
func (o *Originals) Merge(p *Originals) { o.h = append(o.h, p.h...) }

// Len is the number of hashes held (after Seal: of distinct values).
func (o *Originals) Len() int { return len(o.h) }

// Seal ends the adding and builds the index.
func (o *Originals) Seal() {
	slices.Sort(o.h)
	o.h = slices.Clip(slices.Compact(o.h))
	bits := uint(0)
	for bits < 32 && 4<<bits < len(o.h) {
		bits++
	}
	o.shift = 64 - bits
	o.start = make([]uint32, 1<<bits+1)
	b := 0
	for i, h := range o.h {
		for ; b <= int(h>>o.shift); b++ {
			o.start[b] = uint32(i)
		}
	}
	for ; b < len(o.start); b++ {
		o.start[b] = uint32(len(o.h))
	}
	words := 1
	for words*64 < 8*len(o.h) {
		words *= 2
	}
	o.filter, o.fmask = make([]uint64, words), uint64(words*64-1)
	for _, h := range o.h {
		o.filter[(h&o.fmask)/64] |= 1 << (h % 64)
	}
}

// Hash is the set's hash of v, for a caller that keeps the hashes of
// values to look up once the set is sealed (HasHash). Values shorter than
// MinChecked hash to 0, which HasHash never finds.
func (o *Originals) Hash(v string) uint64 {
	if len(v) < MinChecked {
		return 0
	}
	return maphash.String(originalsSeed, v)
}

// HasHash reports whether h, from Hash, is an original value's.
func (o *Originals) HasHash(h uint64) bool {
	if h == 0 || len(o.h) == 0 || o.filter[(h&o.fmask)/64]&(1<<(h%64)) == 0 {
		return false
	}
	b := h >> o.shift
	for _, x := range o.h[o.start[b]:o.start[b+1]] {
		if x == h {
			return true
		}
	}
	return false
}

// Has reports whether v is an original value.
func (o *Originals) Has(v string) bool { return o.HasHash(o.Hash(v)) }

// HasBytes is Has for a value held as bytes, without copying it.
func (o *Originals) HasBytes(v []byte) bool {
	return len(v) >= MinChecked && o.HasHash(maphash.Bytes(originalsSeed, v))
}

// HasIn reports whether text holds an original value: whole, or as one of
// its words (split at spaces and SQL punctuation and quotes, an e-mail or
// a phone number staying whole).
func (o *Originals) HasIn(text string) bool {
	if o.Has(strings.TrimSpace(text)) {
		return true
	}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:()[]{}'\"`=<>|", r)
	}) {
		if o.Has(w) {
			return true
		}
	}
	return false
}

// Checked reports whether the originals of a column under r are looked
// for in a masked copy after the load: not names, addresses, dates or
// phone numbers, which a pseudonym or another customer's value may equal
// by chance (a fake phone has the shape of a real one, so among a million
// customers some pseudonyms are other customers' real numbers).
func Checked(r Rule) bool {
	switch r.Action {
	case Keep, ShiftDate:
		return false
	case Fake:
		switch r.Kind {
		case Name, FirstName, LastName, Address, DateOfBirth, Phone:
			return false
		}
	}
	return true
}

// TableKey is the name under which the rules name a table of database db:
// "db.table" when the file uses that, else the bare table name (MariaDB
// and SQLite, whose rules files name tables without a schema).
func (r *Rules) TableKey(db, table string) string {
	if db != "" {
		if _, ok := r.Tables[db+"."+table]; ok {
			return db + "." + table
		}
	}
	return table
}
