package postgres

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

// hasField reports whether a non-NULL COPY text field is, decoded, an
// original value.
func hasField(o *mask.Originals, f []byte) bool {
	if bytes.IndexByte(f, '\\') >= 0 {
		return o.Has(decodeField(f))
	}
	return o.HasBytes(f)
}

// checkSchema refuses an archive whose kept schema (the definitions the
// masked load sends: tables, types, defaults, constraints, indexes…)
// holds an original value of a masked column, as a string, a name or a
// word of one: a backup host could otherwise hide the data there.
func checkSchema(a *archive, o *mask.Originals) error {
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
			if o.HasIn(s) {
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
	seen  *mask.Originals
	found map[string]int // table.column → fields holding an original
}

// keptSuffix names a table's kept-columns digest.
const keptSuffix = " (kept columns)"

func newMaskCheck(r *mask.Rules, seen *mask.Originals) *maskCheck {
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
			if i < len(cols) && string(f) != copyNull && hasField(m.seen, f) {
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
