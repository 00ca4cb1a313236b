package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

// Masking makes a restore a masked copy: the snapshot's database is
// written to a private directory, masked there, and only a fresh copy of
// the masked rows (VACUUM INTO, which carries no free page of the
// original) goes to the target.
type Masking = mask.Copy

// keptSuffix names a table's kept-columns digest, as the other engines do.
const keptSuffix = " (kept columns)"

// Masked is a masked copy of a snapshot's database, and what proves it.
type Masked struct {
	Path   string // the masked database, in a private directory
	dir    string
	tables []*maskTable
	kept   *engine.Digester
	seen   mask.Originals
	Notes  []string
}

// Close removes the masked copy's directory.
func (m *Masked) Close() error { return os.RemoveAll(m.dir) }

// Expected is what the masked copy's kept columns must digest to: the
// backup's.
func (m *Masked) Expected() []engine.TableDigest { return m.kept.Result() }

type maskTable struct {
	name    string
	key     string // as the rules name it
	cols    []string
	rules   []mask.Rule
	masked  []*mask.Column // nil for a kept column
	without bool           // WITHOUT ROWID
}

// MaskCopy reads a snapshot's database from r into a private directory
// under tmp (coffer-sqlite-PID-…, which Sweep removes after a kill) and
// makes its masked copy there. Nothing is written anywhere
// else: a rules file that does not name every column (default: fail), a
// virtual table, or a schema that holds an original value is refused.
func MaskCopy(ctx context.Context, r io.Reader, tmp string, m *Masking) (*Masked, error) {
	Sweep(tmp) // what a killed restore or backup left (best effort)
	dir, err := makeCopyDir(tmp)
	if err != nil {
		return nil, err
	}
	out := &Masked{dir: dir, kept: engine.NewDigester()}
	fail := func(err error) (*Masked, error) { os.RemoveAll(dir); return nil, err }
	orig := filepath.Join(dir, "orig.db")
	if err := writePrivate(orig, r); err != nil {
		return fail(err)
	}
	if err := out.mask(ctx, orig, m); err != nil {
		return fail(err)
	}
	out.Path = filepath.Join(dir, "masked.db")
	if err := createPrivate(out.Path); err != nil {
		return fail(err)
	}
	if err := vacuumMasked(ctx, orig, out.Path); err != nil {
		return fail(err)
	}
	RemoveDatabase(orig)
	// What would go to the target is searched for originals first.
	if _, err := MaskedDigests(ctx, out.Path, out); err != nil {
		return fail(fmt.Errorf("%w; nothing was written to the target", err))
	}
	return out, nil
}

func writePrivate(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func vacuumMasked(ctx context.Context, src, dst string) error {
	db, err := open(src, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("masked copy: %w", err)
	}
	return nil
}

type schemaEntry struct{ typ, name, table, sql string }

// mask masks the database at path in place.
func (o *Masked) mask(ctx context.Context, path string, m *Masking) error {
	db, err := open(path, false)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx) // the pragmas hold for one connection
	if err != nil {
		return err
	}
	defer c.Close()
	// The file is a private copy, removed on failure: no journal, no sync,
	// and a page cache that holds the rewrite.
	for _, p := range []string{"PRAGMA foreign_keys = OFF", "PRAGMA ignore_check_constraints = ON", "PRAGMA recursive_triggers = OFF",
		"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144", "PRAGMA temp_store = MEMORY"} {
		if _, err := c.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("masked copy: %w", err)
		}
	}
	entries, err := schema(ctx, c)
	if err != nil {
		return fmt.Errorf("masked copy: the snapshot's database: %w", err)
	}
	var kept []schemaEntry
	dropped := map[string]int{}
	cover := map[string][]string{}
	for _, e := range entries {
		switch {
		case e.typ == "view" || e.typ == "trigger":
			// Left out, triggers first of all: one could copy an original
			// into another table as the rows are masked.
			if _, err := c.ExecContext(ctx, "DROP "+strings.ToUpper(e.typ)+" "+quoteIdent(e.name)); err != nil {
				return fmt.Errorf("masked copy: drop %s %s: %w", e.typ, e.name, err)
			}
			dropped[e.typ]++
		case e.typ == "table" && strings.HasPrefix(e.name, "sqlite_stat"):
			// Index statistics hold sample values of indexed columns.
			if _, err := c.ExecContext(ctx, "DELETE FROM "+quoteIdent(e.name)); err != nil {
				return fmt.Errorf("masked copy: %w", err)
			}
		case e.typ == "table" && e.name == "sqlite_sequence", e.typ == "index":
			kept = append(kept, e)
		case e.typ == "table" && strings.HasPrefix(e.name, "sqlite_"):
			return fmt.Errorf("masked copy: the snapshot's database holds the internal table %q, which a masked copy does not carry; nothing was written to the target", e.name)
		case e.typ == "table":
			if hasPrefixFold(strings.TrimSpace(e.sql), "CREATE VIRTUAL TABLE") {
				return fmt.Errorf("masked copy: table %q is a virtual table, which a masked copy does not carry (its storage is the module's); nothing was written to the target", e.name)
			}
			t, err := tableOf(ctx, c, m, e.name)
			if err != nil {
				return fmt.Errorf("masked copy: table %q: %w", e.name, err)
			}
			o.tables = append(o.tables, t)
			cover[t.key] = t.cols
			kept = append(kept, e)
		default:
			return fmt.Errorf("masked copy: the snapshot's schema holds a %q entry %q, which SQLite does not make; nothing was written to the target", e.typ, e.name)
		}
	}
	if err := m.Rules.Cover(cover); err != nil {
		return err
	}
	for _, t := range o.tables {
		if err := o.maskTable(ctx, c, t); err != nil {
			return fmt.Errorf("masked copy: table %q: %w", t.name, err)
		}
	}
	o.seen.Seal()
	for _, e := range kept {
		for _, s := range []string{e.name, e.table, e.sql} {
			if o.seen.HasIn(s) {
				return fmt.Errorf("masked copy: the snapshot's %s %q holds an original value of a masked column in its definition: a masked copy must not carry it; nothing was written to the target", e.typ, e.name)
			}
		}
	}
	o.Notes = droppedNote(dropped)
	return nil
}

func droppedNote(dropped map[string]int) []string {
	if len(dropped) == 0 {
		return nil
	}
	var kinds []string
	for k, n := range dropped {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	return []string{"the masked copy leaves out what a masked copy does not carry (it carries tables, their rows and indexes): " + strings.Join(kinds, ", ")}
}

func hasPrefixFold(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }

func schema(ctx context.Context, c *sql.Conn) ([]schemaEntry, error) {
	rows, err := c.QueryContext(ctx, "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_schema ORDER BY rowid")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schemaEntry
	for rows.Next() {
		var e schemaEntry
		if err := rows.Scan(&e.typ, &e.name, &e.table, &e.sql); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// tableOf reads a table's columns, their rules, and which are unique. A
// generated column is refused.
func tableOf(ctx context.Context, c *sql.Conn, m *Masking, name string) (*maskTable, error) {
	t := &maskTable{name: name, key: m.Rules.TableKey("", name)}
	rows, err := c.QueryContext(ctx, "SELECT name, hidden FROM pragma_table_xinfo(?) ORDER BY cid", name)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var col string
		var hidden int
		if err := rows.Scan(&col, &hidden); err != nil {
			rows.Close()
			return nil, err
		}
		if hidden != 0 {
			rows.Close()
			return nil, fmt.Errorf("column %q is generated: SQLite computes its values from its expression, not from the rows, so a masked copy cannot mask them; restore this snapshot unmasked, or drop the column from the source; nothing was written to the target", col)
		}
		t.cols = append(t.cols, col)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var wr int
	if err := c.QueryRowContext(ctx, "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", name).Scan(&wr); err != nil {
		return nil, err
	}
	t.without = wr == 1
	unique, err := uniqueColumns(ctx, c, name)
	if err != nil {
		return nil, err
	}
	t.rules, t.masked = make([]mask.Rule, len(t.cols)), make([]*mask.Column, len(t.cols))
	for i, col := range t.cols {
		r, _ := m.Rules.Lookup(t.key, col)
		r.Unique = r.Unique || unique[col]
		t.rules[i] = r
		if r.Masks() {
			if t.without {
				return nil, fmt.Errorf("a WITHOUT ROWID table, whose rows a masked copy cannot rewrite in this version; nothing was written to the target")
			}
			t.masked[i] = m.Masker.Column(t.key+"."+col, r)
		}
	}
	return t, nil
}

// uniqueColumns are the columns a unique index of one column makes unique.
func uniqueColumns(ctx context.Context, c *sql.Conn, table string) (map[string]bool, error) {
	idx, err := engine.QueryStrings(ctx, c, `SELECT i.name FROM pragma_index_list(?) AS i WHERE i."unique" = 1`, table)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range idx {
		cols, err := engine.QueryStrings(ctx, c, "SELECT COALESCE(name, '') FROM pragma_index_info(?)", n)
		if err != nil {
			return nil, err
		}
		if len(cols) == 1 && cols[0] != "" {
			out[cols[0]] = true
		}
	}
	return out, nil
}

// batch is how many rows are read at a time.
const batch = 1000

// maskTable rewrites the masked columns of a table, row by row, and
// digests the kept columns. A unique masked column first gets a
// placeholder in every row, then its pseudonyms, so that a pseudonym never
// meets an original not yet masked.
func (o *Masked) maskTable(ctx context.Context, c *sql.Conn, t *maskTable) error {
	o.kept.Table(t.name + keptSuffix)
	var set, uset []string
	for i, col := range t.cols {
		if t.masked[i] != nil {
			set = append(set, quoteIdent(col)+" = ?")
			if t.rules[i].Unique {
				uset = append(uset, quoteIdent(col)+" = ?")
			}
		}
	}
	sel := "SELECT rowid"
	for _, col := range t.cols {
		sel += ", " + quoteIdent(col)
	}
	sel += " FROM " + quoteIdent(t.name) + " WHERE ?1 IS NULL OR rowid > ?1 ORDER BY rowid LIMIT " + strconv.Itoa(batch)
	upd := "UPDATE " + quoteIdent(t.name) + " SET " + strings.Join(set, ", ") + " WHERE rowid = ?"
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	finals := map[int64][]any{}
	var last any // the rowid read last: none yet (a rowid may be any int64)
	for {
		n, err := o.maskBatch(ctx, tx, t, sel, upd, len(set) > 0, &last, finals)
		if err != nil {
			return err
		}
		if n < batch {
			break
		}
	}
	if len(uset) > 0 {
		st, err := tx.PrepareContext(ctx, "UPDATE "+quoteIdent(t.name)+" SET "+strings.Join(uset, ", ")+" WHERE rowid = ?")
		if err != nil {
			return err
		}
		defer st.Close()
		for id, fin := range finals {
			if _, err := st.ExecContext(ctx, append(fin, id)...); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// maskBatch reads the next rows after *last (all from the first when nil), digests their kept columns
// and, when the table has masked columns, rewrites them; it returns how
// many rows it read.
func (o *Masked) maskBatch(ctx context.Context, tx *sql.Tx, t *maskTable, sel, upd string, masks bool, last *any, finals map[int64][]any) (int, error) {
	kept := o.kept.Table(t.name + keptSuffix)
	rs, err := tx.QueryContext(ctx, sel, *last)
	if err != nil {
		return 0, err
	}
	var pending [][]any
	var buf []byte
	n := 0
	err = eachRow(rs, func(vals []any) error {
		n++
		id, ok := vals[0].(int64)
		if !ok {
			return fmt.Errorf("a rowid that is not an integer")
		}
		*last = id
		buf = buf[:0]
		for i, v := range vals[1:] {
			if t.masked[i] == nil {
				buf = appendValue(buf, v)
			}
		}
		kept.Add(buf)
		if !masks {
			return nil
		}
		args, fin, err := o.maskRow(t, vals[1:], id)
		if err != nil {
			return err
		}
		if fin != nil {
			finals[id] = fin
		}
		pending = append(pending, append(args, id))
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(pending) == 0 {
		return n, nil
	}
	st, err := tx.PrepareContext(ctx, upd)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	for _, a := range pending {
		if _, err := st.ExecContext(ctx, a...); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// maskRow masks a row's masked columns: the values to set (a placeholder
// for a unique column), and a unique column's pseudonyms, set later.
func (o *Masked) maskRow(t *maskTable, vals []any, id int64) (args, finals []any, err error) {
	for i, v := range vals {
		c := t.masked[i]
		if c == nil {
			continue
		}
		out, err := o.maskValue(t, i, v)
		if err != nil {
			return nil, nil, err
		}
		if t.rules[i].Unique && out != nil {
			finals = append(finals, out)
			out = "\x01coffer-masking-" + strconv.FormatInt(id, 10)
		}
		args = append(args, out)
	}
	return args, finals, nil
}

// maskValue masks one value: NULL stays NULL; text, blobs and numbers are
// masked as their text.
func (o *Masked) maskValue(t *maskTable, i int, v any) (any, error) {
	var s string
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		s = fmt.Sprint(v)
	}
	if mask.Checked(t.rules[i]) {
		o.seen.Add(s)
	}
	out, null, err := t.masked[i].Mask(s)
	if err != nil || null {
		return nil, err
	}
	if _, ok := v.([]byte); ok {
		return []byte(out), nil
	}
	return out, nil
}

// MaskedDigests digests the kept columns of the masked copy at path as
// MaskCopy digested the backup's, and fails if any text or blob of any
// table equals an original value of a masked column.
func MaskedDigests(ctx context.Context, path string, m *Masked) ([]engine.TableDigest, error) {
	db, tables, err := openTables(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	byName := map[string]*maskTable{}
	for _, t := range m.tables {
		byName[t.name] = t
	}
	d := engine.NewDigester()
	found := map[string]int{}
	for _, name := range tables {
		t := byName[name]
		if t == nil {
			return nil, fmt.Errorf("sqlite database %s: table %q is not in the masked load", path, name)
		}
		if err := digestKept(ctx, db, t, d, &m.seen, found); err != nil {
			return nil, fmt.Errorf("sqlite database %s, table %s: %w", path, name, err)
		}
	}
	if len(found) > 0 {
		var l []string
		for c, n := range found {
			l = append(l, fmt.Sprintf("%s (%d values)", c, n))
		}
		sort.Strings(l)
		return nil, fmt.Errorf("the masked copy holds original values of masked columns in %s: it is removed; check the rules (a kept column holding what a masked one held?)", strings.Join(l, ", "))
	}
	return d.Result(), nil
}

func digestKept(ctx context.Context, db *sql.DB, t *maskTable, d *engine.Digester, seen *mask.Originals, found map[string]int) error {
	rows := d.Table(t.name + keptSuffix)
	q := "SELECT "
	for i, col := range t.cols {
		if i > 0 {
			q += ", "
		}
		q += quoteIdent(col)
	}
	rs, err := db.QueryContext(ctx, q+" FROM "+quoteIdent(t.name))
	if err != nil {
		return err
	}
	var buf []byte
	return eachRow(rs, func(vals []any) error {
		buf = buf[:0]
		for i, v := range vals {
			if t.masked[i] == nil {
				buf = appendValue(buf, v)
			}
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case []byte:
				s = string(v)
			}
			if seen.Has(s) {
				found[t.name+"."+t.cols[i]]++
			}
		}
		rows.Add(buf)
		return nil
	})
}
