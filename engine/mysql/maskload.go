package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/coffer-backup/coffer/engine"
)

// maskAll reads the whole snapshot stream before anything is written to
// the server: each database's dump is masked into an unlinked spool file
// (which holds masked rows only), the rows read are proved to be those the
// backup digested, the rules must cover every column (default: fail), and
// no carried definition may hold an original value. The spools, rewound,
// are what the load executes.
func (t *Target) maskAll(ctx context.Context, r io.Reader, rep engine.Report) ([]*os.File, error) {
	t.mv = &maskVerify{want: engine.NewDigester(), kept: engine.NewDigester(), dbs: map[string]*maskDB{}}
	var spools []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range spools {
			f.Close()
		}
		return nil, err
	}
	cover := map[string][]string{}
	err := engine.Split(r, rep.Parts, func(p engine.Part, pr io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		label := strings.TrimSuffix(p.Name, ".sql")
		f, err := os.CreateTemp("", "coffer-mask-*")
		if err != nil {
			return fmt.Errorf("masked load: spool: %w", err)
		}
		os.Remove(f.Name()) // unlinked: nothing is left if the process dies
		spools = append(spools, f)
		d, err := maskDump(t.opts.Mask, label, pr, f, t.mv)
		if err != nil {
			return err
		}
		if err := d.checkRows(rep.Tables); err != nil {
			return err
		}
		d.cover(cover)
		t.mv.dbs[label] = d
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if err := t.opts.Mask.Rules.Cover(cover); err != nil {
		return fail(err)
	}
	t.mv.seen.Seal()
	for _, d := range t.mv.dbs {
		if err := d.checkSchema(&t.mv.seen); err != nil {
			return fail(err)
		}
		if err := d.checkKept(&t.mv.seen); err != nil {
			return fail(err)
		}
		t.notes = append(t.notes, d.notes()...)
	}
	for _, f := range spools {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fail(err)
		}
	}
	return spools, nil
}

// insertCheck is what a masked load does before it executes each of its
// statements: before the first row of a table, the server's columns of
// the table must be those coffer read in the dump's CREATE TABLE, in the
// same order (so each value is masked under its own column's rule).
func (t *Target) insertCheck(label, into string) func(ctx context.Context, conn *sql.Conn, stmt []byte) error {
	if t.mv == nil {
		return nil
	}
	d := t.mv.dbs[label]
	return func(ctx context.Context, conn *sql.Conn, stmt []byte) error {
		rest, ok := cutPrefixFold(stmt, "INSERT INTO ")
		if !ok {
			return nil
		}
		name, _, ok := ident(rest)
		tb := d.tables[name]
		if !ok || tb == nil {
			return fmt.Errorf("masked load: an INSERT coffer did not write")
		}
		if !tb.checked {
			cols, err := serverColumns(ctx, conn, into, name)
			if err != nil {
				return err
			}
			if !slices.Equal(cols, tb.cols) {
				return fmt.Errorf("the server made table %s with the columns %s, not %s as coffer read its CREATE TABLE: the dump is not one mariadb-dump wrote; no row was loaded", quoteIdent(name),
					strings.Join(cols, ", "), strings.Join(tb.cols, ", "))
			}
			tb.checked = true
		}
		return nil
	}
}

func serverColumns(ctx context.Context, conn *sql.Conn, db, table string) ([]string, error) {
	return engine.QueryStrings(ctx, conn, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", db, table)
}

// MaskExpected implements restore's masked target: what the masked
// tables must digest to (the masked rows coffer wrote), and the backup's
// kept columns. Nil for a load that was not masked.
func (t *Target) MaskExpected() []engine.TableDigest {
	if t.mv == nil {
		return nil
	}
	return append(t.mv.want.Result(), t.mv.kept.Result()...)
}

// maskedDigests digests the loaded databases as Digests does, and their
// kept columns, and fails if any string of any table equals an original
// value of a masked column.
func (t *Target) maskedDigests(ctx context.Context) ([]engine.TableDigest, error) {
	dg, kept := engine.NewDigester(), engine.NewDigester()
	found := map[string]int{}
	for _, x := range t.loaded {
		d := t.mv.dbs[x.from]
		if d == nil {
			return nil, fmt.Errorf("a masked verification of database %q needs its masked load", x.from)
		}
		c, err := t.digestConn(ctx, x.into)
		if err != nil {
			return nil, err
		}
		var vals []value
		var proj []byte
		dump := engine.PartSource{Name: x.into, Open: func(ctx context.Context) (io.ReadCloser, error) {
			s, err := c.startDump(ctx, t.t, x.into, x.from, dg, nil, "--skip-routines", "--skip-events", "--skip-triggers")
			if err != nil {
				return nil, err
			}
			s.(*dumpStream).p.onRow = func(table string, row []byte) {
				vals = decodeRow(row, vals[:0])
				proj = proj[:0]
				tb := d.tables[table]
				for i, v := range vals {
					if tb != nil && i < len(tb.maskers) && tb.maskers[i] == nil {
						proj = appendCanon(proj, v.tag, v.v)
					}
					if (v.tag == 'S' || v.tag == 'X') && t.mv.seen.Has(string(v.v)) {
						col := "?"
						if tb != nil && i < len(tb.cols) {
							col = tb.cols[i]
						}
						found[table+"."+col]++
					}
				}
				kept.Add(x.from+"."+table+keptSuffix, proj)
			}
			return s, nil
		}}
		if err := dump.Drain(ctx); err != nil {
			return nil, fmt.Errorf("digest database %q at %s: %w", x.into, t.c.addr(), err)
		}
		for _, tb := range d.tables {
			kept.Table(x.from + "." + tb.name + keptSuffix)
		}
	}
	if len(found) > 0 {
		var l []string
		for c, n := range found {
			l = append(l, fmt.Sprintf("%s (%d values)", c, n))
		}
		sort.Strings(l)
		return nil, errors.New("the masked copy holds original values of masked columns in " + strings.Join(l, ", ") + ": it is removed; check the rules (a kept column holding what a masked one held?)")
	}
	return append(dg.Result(), kept.Result()...), nil
}
