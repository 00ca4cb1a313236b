// Package engine holds what the database engines share: per-table digests
// that prove a restore reproduced the data, and their comparison.
//
// A table's digest is its row count and the sum, modulo 2^256, of the
// SHA-256 of each row's canonical encoding. A sum does not depend on row
// order (a restore may reorder rows) but, unlike XOR, counts a duplicated
// row twice. Each engine defines the canonical encoding of its rows and
// computes digests of a dump and of a live database with the same code.
package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"sort"
)

// TableDigest is one table's row count and order-independent digest.
type TableDigest struct {
	Table  string `json:"table"` // schema-qualified where the engine has schemas
	Rows   int64  `json:"rows"`
	Digest string `json:"digest"` // 64 hex
}

// Digester accumulates rows into per-table digests. It is not safe for
// concurrent use.
type Digester struct {
	tables map[string]*Rows
}

// Rows accumulates the rows of one table: an engine that reads a table's
// rows one after the other adds them here, without looking the table up
// for each row.
type Rows struct {
	rows int64
	sum  [4]uint64 // little-endian limbs of a 256-bit integer
}

// NewDigester returns an empty Digester.
func NewDigester() *Digester { return &Digester{tables: map[string]*Rows{}} }

// Table makes sure table appears in the result, even with no rows, and
// returns its accumulator.
func (d *Digester) Table(table string) *Rows {
	a := d.tables[table]
	if a == nil {
		a = &Rows{}
		d.tables[table] = a
	}
	return a
}

// Add counts one row of table, given in the engine's canonical encoding.
func (d *Digester) Add(table string, row []byte) { d.Table(table).Add(row) }

// Add counts one row, given in the engine's canonical encoding. It does
// not allocate.
func (a *Rows) Add(row []byte) {
	h := sha256.Sum256(row)
	// limb i is bytes [24-8i, 32-8i) of the big-endian hash
	var c uint64
	a.sum[0], c = bits.Add64(a.sum[0], binary.BigEndian.Uint64(h[24:]), 0)
	a.sum[1], c = bits.Add64(a.sum[1], binary.BigEndian.Uint64(h[16:]), c)
	a.sum[2], c = bits.Add64(a.sum[2], binary.BigEndian.Uint64(h[8:]), c)
	a.sum[3], _ = bits.Add64(a.sum[3], binary.BigEndian.Uint64(h[0:]), c)
	a.rows++
}

// Result returns the digests, sorted by table name.
func (d *Digester) Result() []TableDigest {
	out := make([]TableDigest, 0, len(d.tables))
	for name, a := range d.tables {
		var b [32]byte
		for i := range 4 {
			for j := range 8 {
				b[31-8*i-j] = byte(a.sum[i] >> (8 * j))
			}
		}
		out = append(out, TableDigest{Table: name, Rows: a.rows, Digest: hex.EncodeToString(b[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// TableResult compares one table.
type TableResult struct {
	Table    string `json:"table"`
	WantRows int64  `json:"want_rows"`
	GotRows  int64  `json:"got_rows"`
	Match    bool   `json:"match"`
	Reason   string `json:"reason,omitempty"`
}

// Compare matches the digests recorded at backup time (want) against those
// of a restored database (got), table by table.
func Compare(want, got []TableDigest) []TableResult {
	g := map[string]TableDigest{}
	for _, t := range got {
		g[t.Table] = t
	}
	var out []TableResult
	for _, w := range want {
		r := TableResult{Table: w.Table, WantRows: w.Rows}
		t, ok := g[w.Table]
		delete(g, w.Table)
		switch {
		case !ok:
			r.Reason = "missing from the restored database"
		case t.Rows != w.Rows:
			r.GotRows, r.Reason = t.Rows, fmt.Sprintf("%d rows, want %d", t.Rows, w.Rows)
		case t.Digest != w.Digest:
			r.GotRows, r.Reason = t.Rows, "same row count, different contents"
		default:
			r.GotRows, r.Match = t.Rows, true
		}
		out = append(out, r)
	}
	for _, t := range g {
		out = append(out, TableResult{Table: t.Table, GotRows: t.Rows, Reason: "not in the backup"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// AllMatch reports whether every table matched.
func AllMatch(rs []TableResult) bool {
	for _, r := range rs {
		if !r.Match {
			return false
		}
	}
	return true
}

// Report is what a snapshot keeps, encrypted to the repository key, about
// the rows of a database dump.
type Report struct {
	Tables []TableDigest `json:"tables"`
	// Parts, when the stream holds several dumps, says where each is.
	Parts []Part `json:"parts,omitempty"`
}
