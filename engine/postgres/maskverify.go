package postgres

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

// originals is the set of a masked load's original values of masked
// columns (those checkedKind keeps), by hash, to prove that none of them
// is in what is loaded. It is held in memory only: 8 bytes a value, sorted
// once sealed, an index of where each range of hashes starts (4 bytes per
// 4 values), so that a look-up (one per field of the verified copy) reads
// a few neighbouring hashes instead of binary-searching them all, and a
// filter of 8 to 16 bits per value, which answers most look-ups of a value
// that is not an original from memory 8 times smaller.
type originals struct {
	h      []uint64
	start  []uint32 // start[b]: the first of h whose top bits are b or more
	shift  uint     // 64 - the number of top bits start is indexed by
	filter []uint64 // bit h&fmask is set for each hash h of the set
	fmask  uint64
	sealed bool
}

// origSeed keys origHash: the set lives in one process, so a seed of the
// process's own serves, and makes collisions unpredictable to a snapshot
// (and so the hashes uniform, which the index relies on for its speed).
var origSeed = maphash.MakeSeed()

func origHash(v string) uint64 { return maphash.String(origSeed, v) }

// minChecked is the shortest original looked for: shorter values (a
// two-letter code) are found everywhere by chance.
const minChecked = 5

func (o *originals) add(v string) {
	if len(v) >= minChecked {
		o.h = append(o.h, origHash(v))
	}
}

func (o *originals) seal() {
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
	o.sealed = true
}

func (o *originals) has(v string) bool {
	return len(v) >= minChecked && o.hasHash(origHash(v))
}

// hasField reports whether a non-NULL COPY text field is, decoded, an
// original value.
func (o *originals) hasField(f []byte) bool {
	if bytes.IndexByte(f, '\\') >= 0 {
		return o.has(decodeField(f))
	}
	return len(f) >= minChecked && o.hasHash(maphash.Bytes(origSeed, f))
}

func (o *originals) hasHash(h uint64) bool {
	if len(o.h) == 0 || o.filter[(h&o.fmask)/64]&(1<<(h%64)) == 0 {
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

// hasIn reports whether text holds an original value: whole, or as one of
// its words (split at spaces and SQL punctuation, an e-mail or a phone
// number staying whole).
func (o *originals) hasIn(text string) bool {
	if o.has(strings.TrimSpace(text)) {
		return true
	}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:()[]{}'\"=<>|", r)
	}) {
		if o.has(w) {
			return true
		}
	}
	return false
}

// checkSchema refuses an archive whose kept schema (the definitions the
// masked load sends: tables, types, defaults, constraints, indexes…)
// holds an original value of a masked column, as a string, a name or a
// word of one: a backup host could otherwise hide the data there.
func checkSchema(a *archive, o *originals) error {
	for _, id := range a.order {
		e := a.entries[id]
		if e.desc == "TABLE DATA" {
			continue
		}
		texts := []string{e.tag, e.namespace, e.owner}
		if toks, err := tokenize(e.defn); err == nil {
			for _, t := range toks {
				texts = append(texts, t.text)
			}
		} else {
			texts = append(texts, e.defn)
		}
		for _, s := range texts {
			if o.hasIn(s) {
				return fmt.Errorf("masked load of database %q: the snapshot's %s %s holds an original value of a masked column: a masked copy must not carry it, and pg_dump never writes one there; nothing was written to the target",
					a.label, display(e.desc), display(e.namespace+"."+e.tag))
			}
		}
	}
	return nil
}

// maskCheck verifies a masked database as its dump passes (archive.proj):
// it digests the kept columns of every table the rules know, so that they
// can be compared with the same columns of the backup, and counts the
// fields that equal an original value of a masked column.
type maskCheck struct {
	rules *mask.Rules
	kept  *engine.Digester
	seen  *originals
	found map[string]int // table.column → fields holding an original
}

// keptSuffix names a table's kept-columns digest.
const keptSuffix = " (kept columns)"

func newMaskCheck(r *mask.Rules, seen *originals) *maskCheck {
	return &maskCheck{rules: r, kept: engine.NewDigester(), seen: seen, found: map[string]int{}}
}

// keptColumns says which of a table's columns the rules keep.
func keptColumns(r *mask.Rules, e *tocEntry, cols []string) []bool {
	key := rulesTable(r, e.namespace, e.tag)
	k := make([]bool, len(cols))
	for i, c := range cols {
		rule, _ := r.Lookup(key, c)
		k[i] = !rule.Masks()
	}
	return k
}

// table returns what to do with each row of a table of the masked
// database.
func (m *maskCheck) table(label string, e *tocEntry) func([]byte) {
	cols, err := parseCopy(e)
	if err != nil {
		return nil
	}
	keep := keptColumns(m.rules, e, cols)
	name := e.namespace + "." + e.tag
	rows := m.kept.Table(label + "." + name + keptSuffix)
	var proj []byte
	return func(row []byte) {
		proj = keptRow(proj[:0], row, keep)
		rows.Add(proj)
		i := 0
		for f := range bytes.SplitSeq(row, []byte{'\t'}) {
			if i < len(cols) && string(f) != copyNull && m.seen.hasField(f) {
				m.found[name+"."+cols[i]]++
			}
			i++
		}
	}
}

// leaks lists the columns of the masked database holding original values.
func (m *maskCheck) leaks() []string {
	var out []string
	for c, n := range m.found {
		out = append(out, fmt.Sprintf("%s (%d values)", c, n))
	}
	sort.Strings(out)
	return out
}

// keptRow is the projection of an original row on its kept columns, as
// maskCheck.table makes it from the masked database's rows.
func keptRow(dst []byte, row []byte, keep []bool) []byte {
	i := 0
	first := true
	for f := range bytes.SplitSeq(row, []byte{'\t'}) {
		if i < len(keep) && keep[i] {
			if !first {
				dst = append(dst, '\t')
			}
			dst = append(dst, f...)
			first = false
		}
		i++
	}
	return dst
}
