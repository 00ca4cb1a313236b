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
// per process, so a snapshot cannot aim collisions at it. Add until Seal;
// Has and HasIn after. Not safe for concurrent use.
type Originals struct {
	h []uint64
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

// Seal ends the adding.
func (o *Originals) Seal() {
	slices.Sort(o.h)
	o.h = slices.Compact(o.h)
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
	if h == 0 {
		return false
	}
	_, ok := slices.BinarySearch(o.h, h)
	return ok
}

// Has reports whether v is an original value.
func (o *Originals) Has(v string) bool {
	if len(v) < MinChecked {
		return false
	}
	_, ok := slices.BinarySearch(o.h, maphash.String(originalsSeed, v))
	return ok
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
