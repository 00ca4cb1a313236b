package mysql

import (
	"io"
	"math/rand/v2"

	"github.com/coffer-backup/coffer/engine"
)

// SampleDump reads one database's dump and returns every table's columns
// with their declared types and up to limit values each, spread over the
// table's rows (a fixed seed: the same dump gives the same sample). It
// reads the dump as a masked load does: tables from CREATE TABLE, rows
// from INSERT with the dump parser.
func SampleDump(r io.Reader, label string, limit int) ([]engine.ColumnSample, error) {
	rnd := rand.New(rand.NewPCG(14, 14))
	tables := map[string][]engine.ColumnSample{}
	var order []string
	dg := engine.NewDigester()
	var vals []value
	sp := newSplitter(label, func(stmt []byte, _ int) error {
		w, _ := headWord(stmt, skipHead(stmt, 0))
		switch {
		case asciiEqualFold(w, "CREATE"):
			ct, err := parseCreateTable(stmt)
			if err != nil || tables[ct.name] != nil {
				return nil // not a table: a view, a routine…
			}
			s := make([]engine.ColumnSample, len(ct.cols))
			for i, c := range ct.cols {
				s[i] = engine.ColumnSample{Table: ct.name, Column: c, Type: ct.types[c]}
			}
			tables[ct.name] = s
			order = append(order, ct.name)
		case asciiEqualFold(w, "INSERT"):
			rp := newParser(label, dg)
			rp.onRow = func(table string, row []byte) {
				s := tables[table]
				vals = decodeRow(row, vals[:0])
				for i, v := range vals {
					if i < len(s) && v.tag != 'N' {
						s[i].Sample(string(v.v), limit, rnd)
					}
				}
			}
			rp.Write(stmt)
			rp.Write([]byte{';'})
			return rp.err
		}
		return nil
	})
	if _, err := io.Copy(sp, r); err != nil {
		return nil, err
	}
	if err := sp.Close(); err != nil {
		return nil, err
	}
	rows := map[string]int64{}
	for _, t := range dg.Result() {
		rows[t.Table] = t.Rows
	}
	var out []engine.ColumnSample
	for _, name := range order {
		for _, s := range tables[name] {
			s.Rows = rows[label+"."+name]
			out = append(out, s)
		}
	}
	return out, nil
}
