package sqlite

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/engine"
)

// SampleFile reads a snapshot's database from r into a private directory
// under tmp (removed when done) and returns every table's columns with
// their declared types and up to limit values each, spread over the
// table's rows (a fixed seed: the same file gives the same sample).
func SampleFile(ctx context.Context, r io.Reader, tmp string, limit int) ([]engine.ColumnSample, error) {
	Sweep(tmp) // what a killed restore or backup left (best effort)
	dir, err := makeCopyDir(tmp)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sample.db")
	if err := writePrivate(path, r); err != nil {
		return nil, err
	}
	db, tables, err := openTables(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rnd := rand.New(rand.NewPCG(14, 14))
	var out []engine.ColumnSample
	for _, t := range tables {
		rows, err := db.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?) ORDER BY cid", t)
		if err != nil {
			return nil, err
		}
		var s []engine.ColumnSample
		err = eachRow(rows, func(v []any) error {
			s = append(s, engine.ColumnSample{Table: t, Column: fmt.Sprint(v[0]), Type: fmt.Sprint(v[1])})
			return nil
		})
		if err != nil {
			return nil, err
		}
		data, err := db.QueryContext(ctx, "SELECT * FROM "+quoteIdent(t))
		if err != nil {
			return nil, err
		}
		var n int64
		err = eachRow(data, func(vals []any) error {
			n++
			for i, v := range vals {
				switch v := v.(type) {
				case nil:
				case []byte:
					s[i].Sample(string(v), limit, rnd)
				default:
					s[i].Sample(fmt.Sprint(v), limit, rnd)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sqlite database, table %s: %w", t, err)
		}
		for i := range s {
			s[i].Rows = n
		}
		out = append(out, s...)
	}
	return out, nil
}
