package postgres

import (
	"io"
	"math/rand/v2"
	"strings"

	"github.com/coffer-backup/coffer/engine"
)

// SampleArchive reads one database's archive and returns every table's
// columns with their declared types and up to limit values each, chosen
// uniformly over the table's rows (reservoir sampling, fixed seed, so the
// same archive gives the same sample).
func SampleArchive(r io.Reader, label string, limit int) ([]engine.ColumnSample, error) {
	a := newArchive(r, label, engine.NewDigester())
	if err := a.readHeader(); err != nil {
		return nil, err
	}
	if err := a.readTOC(); err != nil {
		return nil, err
	}
	types := map[string]map[string]string{}
	for _, id := range a.order {
		if e := a.entries[id]; e.desc == "TABLE" {
			types[e.namespace+"."+e.tag] = columnTypes(e.defn)
		}
	}
	var out []engine.ColumnSample
	rnd := rand.New(rand.NewPCG(14, 14))
	err := a.eachBlock(func(typ byte, _ int64, e *tocEntry) error {
		if typ != blockData || e.desc != "TABLE DATA" {
			if typ == blockBlobs {
				return a.skipBlobs()
			}
			return a.chunks(e.desc, nil)
		}
		cols, err := parseCopy(e)
		if err != nil {
			return err
		}
		name := e.namespace + "." + e.tag
		s := make([]engine.ColumnSample, len(cols))
		for i, c := range cols {
			s[i] = engine.ColumnSample{Table: name, Column: c, Type: types[name][c]}
		}
		var rows int64
		err = a.eachRow(e, func(row []byte) error {
			rows++
			i := 0
			for f := range strings.SplitSeq(string(row), "\t") {
				if i >= len(s) {
					break
				}
				if f != copyNull {
					s[i].Sample(decodeField([]byte(f)), limit, rnd)
				}
				i++
			}
			return nil
		})
		for i := range s {
			s[i].Rows = rows
		}
		out = append(out, s...)
		return err
	})
	return out, err
}

// columnTypes reads the column types of pg_dump's CREATE TABLE statement.
func columnTypes(defn string) map[string]string {
	out := map[string]string{}
	toks, err := tokenize(defn)
	if err != nil {
		return out
	}
	depth, start := 0, -1
	for i, t := range toks {
		switch {
		case t.kind == tSym && t.text == "(":
			depth++
			if depth == 1 {
				start = i + 1
			}
		case t.kind == tSym && (t.text == ")" || t.text == ","):
			if depth == 1 && start >= 0 {
				columnType(toks[start:i], out)
				start = i + 1
			}
			if t.text == ")" {
				depth--
			}
		}
	}
	return out
}

func columnType(toks []token, out map[string]string) {
	if len(toks) < 2 || toks[0].kind == tWord && toks[0].text == "constraint" {
		return
	}
	var typ []string
	for _, t := range toks[1:] {
		if t.kind == tWord && (t.text == "not" || t.text == "null" || t.text == "default" || t.text == "constraint" || t.text == "collate" || t.text == "generated") {
			break
		}
		typ = append(typ, t.text)
	}
	out[toks[0].text] = strings.Join(typ, " ")
}
