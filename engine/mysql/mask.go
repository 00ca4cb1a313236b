package mysql

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

// Masking makes a load a masked one (TargetOptions.Mask): each database's
// dump is read whole and rewritten, masked, into a private spool before
// anything is written to the server, so that a rules file that does not
// cover the schema, or a dump the masked load cannot follow, is refused
// first; no original value of a masked column is written to the spool.
type Masking = mask.Copy

// maskTable is a table of a masked load.
type maskTable struct {
	*createTable
	key     string         // as the rules name it
	maskers []*mask.Column // by column; nil for a kept column
	collect []bool         // remember the column's originals
	checked bool           // its columns on the server were compared
	kept    []uint64       // the hashes of its kept strings (mask.Originals.Hash)
}

// maskDB is a masked load of one database's dump.
type maskDB struct {
	m       *Masking
	label   string
	tables  map[string]*maskTable
	schema  [][]byte       // the carried statements but rows, for checkSchema
	dropped map[string]int // left out, by kind
	full    *engine.Digester
	v       *maskVerify
	out     *bufio.Writer
	sql     []byte
	want    []byte
	kept    []byte
}

// maskVerify is what a masked load proves afterwards: the digests of the
// masked rows it wrote, of the backup's kept columns, and the originals.
type maskVerify struct {
	want, kept *engine.Digester
	seen       mask.Originals
	dbs        map[string]*maskDB // by label
}

// keptSuffix names a table's kept-columns digest, as PostgreSQL's do.
const keptSuffix = " (kept columns)"

// maskDump reads the dump of database label and writes the statements a
// masked load executes to w: session settings, DROP TABLE, CREATE TABLE,
// LOCK/UNLOCK and DISABLE/ENABLE KEYS as the dump has them, and each
// INSERT rebuilt from its parsed rows, masked. Views, triggers, routines
// and events are left out (their text can carry data past the rules);
// any other statement is refused.
func maskDump(m *Masking, label string, r io.Reader, w io.Writer, v *maskVerify) (*maskDB, error) {
	d := &maskDB{m: m, label: label, tables: map[string]*maskTable{}, dropped: map[string]int{}, full: engine.NewDigester(), v: v, out: bufio.NewWriterSize(w, 256<<10)}
	var sp *parser
	sp = newSplitter(label, func(stmt []byte, line int) error {
		if err := d.statement(stmt, string(sp.delim)); err != nil {
			reason := err.Error()
			if de, ok := err.(*DumpError); ok { // the row parser's, within the statement
				reason = de.Reason
			}
			return &DumpError{Database: label, Line: line, Reason: reason + "; a masked load refuses what it cannot follow, and nothing was written to the target"}
		}
		return nil
	})
	if _, err := io.Copy(sp, r); err != nil {
		return nil, err
	}
	if err := sp.Close(); err != nil {
		return nil, err
	}
	d.out.WriteString(trailer + "\n")
	return d, d.out.Flush()
}

func (d *maskDB) carry(stmt []byte) {
	d.out.Write(stmt)
	d.out.WriteString("\n;\n") // a newline first: stmt may end in a -- comment
}

// statement handles one statement of the dump; delim is the delimiter it
// ended with.
func (d *maskDB) statement(stmt []byte, delim string) error {
	i := skipHead(stmt, 0)
	w, j := headWord(stmt, i)
	word := strings.ToUpper(string(w))
	w2, _ := headWord(stmt, skipHead(stmt, j))
	second := strings.ToUpper(string(w2))
	if delim != ";" && word != "CREATE" && word != "DROP" {
		return fmt.Errorf("a %s statement under DELIMITER %q, where mariadb-dump writes only routines and triggers, which a masked load leaves out", word, delim)
	}
	switch {
	case word == "SET" && second != "STATEMENT", word == "LOCK", word == "UNLOCK":
		d.schema = append(d.schema, stmt)
		d.carry(stmt)
	case word == "DROP" && second == "TABLE" && delim == ";":
		d.schema = append(d.schema, stmt)
		d.carry(stmt)
	case word == "DROP": // of a view, routine, trigger or event: left out with it
	case word == "ALTER":
		if !keysStatement(stmt, i) {
			return fmt.Errorf("%.60q: a masked load carries ALTER TABLE `t` DISABLE KEYS and ENABLE KEYS, as mariadb-dump writes them, and no other ALTER", stmt)
		}
		d.schema = append(d.schema, stmt)
		d.carry(stmt)
	case word == "CREATE" && second == "TABLE" && delim == ";" && !bytes.HasPrefix(stmt, []byte("/*")):
		return d.createTable(stmt)
	case word == "CREATE":
		d.dropped[createdKind(stmt)]++
	case word == "INSERT" && delim == ";":
		return d.insert(stmt)
	default:
		return fmt.Errorf("%.60q is not a statement a masked load carries (it carries tables and their rows as mariadb-dump writes them)", stmt)
	}
	return nil
}

// keysStatement reports whether stmt, from i, is ALTER TABLE `t`
// DISABLE KEYS or ENABLE KEYS, and nothing else.
func keysStatement(stmt []byte, i int) bool {
	_, i = headWord(stmt, i)
	w, i := headWord(stmt, skipSpaces(stmt, i))
	if !asciiEqualFold(w, "TABLE") {
		return false
	}
	_, rest, ok := ident(stmt[skipSpaces(stmt, i):])
	if !ok {
		return false
	}
	f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(string(rest)), "*/"))
	return len(f) == 2 && (strings.EqualFold(f[0], "DISABLE") || strings.EqualFold(f[0], "ENABLE")) && strings.EqualFold(f[1], "KEYS")
}

// createdKind names what a CREATE statement that is not a table creates,
// for the note that says what was left out.
func createdKind(stmt []byte) string {
	head := strings.ToUpper(string(stmt[:min(len(stmt), 400)]))
	for _, k := range []string{"TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "VIEW", "TABLE"} {
		if strings.Contains(head, " "+k+" ") || strings.Contains(head, "*/"+k+" ") {
			if k == "TABLE" {
				return "view placeholder"
			}
			return strings.ToLower(k)
		}
	}
	return "other object"
}

func (d *maskDB) createTable(stmt []byte) error {
	ct, err := parseCreateTable(stmt)
	if err != nil {
		return err
	}
	if len(ct.generated) > 0 {
		return fmt.Errorf("CREATE TABLE %s: column %s is generated: the server computes its values from its expression, not from the rows, so a masked load cannot mask them; restore this snapshot unmasked, or drop the column from the source", quoteIdent(ct.name), quoteIdent(ct.generated[0]))
	}
	if d.tables[ct.name] != nil {
		return fmt.Errorf("table %s is created twice: mariadb-dump creates each table once", quoteIdent(ct.name))
	}
	t := &maskTable{createTable: ct, key: d.m.Rules.TableKey(d.label, ct.name), maskers: make([]*mask.Column, len(ct.cols)), collect: make([]bool, len(ct.cols))}
	for i, c := range ct.cols {
		r, _ := d.m.Rules.Lookup(t.key, c)
		if !r.Masks() {
			continue
		}
		r.Unique = r.Unique || ct.unique[c]
		t.maskers[i] = d.m.Masker.Column(t.key+"."+c, r)
		t.collect[i] = mask.Checked(r)
	}
	d.tables[ct.name] = t
	d.full.Table(d.label + "." + ct.name)
	d.v.want.Table(d.label + "." + ct.name)
	d.v.kept.Table(d.label + "." + ct.name + keptSuffix)
	d.schema = append(d.schema, stmt)
	d.carry(stmt)
	return nil
}

// insert reads the rows of one INSERT with the dump parser and writes the
// INSERT rebuilt from them, masked. The statement must be exactly one
// INSERT INTO `t` VALUES (…),…; of a table the dump created.
func (d *maskDB) insert(stmt []byte) error {
	rp := newParser(d.label, d.full)
	var t *maskTable
	var rerr error
	d.sql = d.sql[:0]
	rp.onRow = func(table string, row []byte) {
		if rerr != nil {
			return
		}
		if t == nil {
			if t = d.tables[table]; t == nil {
				rerr = fmt.Errorf("INSERT INTO %s, a table the dump did not create", quoteIdent(table))
				return
			}
			if len(rp.rowCols) > 0 {
				rerr = fmt.Errorf("INSERT INTO %s with a column list, which coffer's dumps never write: a masked load reads rows in the table's column order", quoteIdent(table))
				return
			}
			d.sql = append(append(append(d.sql, "INSERT INTO "...), quoteIdent(table)...), " VALUES "...)
		} else {
			d.sql = append(d.sql, ',')
		}
		rerr = d.row(t, row)
	}
	rp.Write(stmt)
	rp.Write([]byte{';'})
	switch {
	case rp.err != nil:
		return rp.err
	case rerr != nil:
		return rerr
	case rp.inserts != 1 || rp.st != stTop || rp.inStmt:
		return fmt.Errorf("%.60q is not one INSERT statement the dump parser can follow", stmt)
	case t == nil: // an INSERT without rows
		return nil
	}
	d.carry(d.sql)
	return nil
}

// value is one value of a row's canonical encoding (parse.go).
type value struct {
	tag byte
	v   []byte
}

// decodeRow splits a canonical row into its values.
func decodeRow(row []byte, dst []value) []value {
	for len(row) >= 9 {
		n := binary.BigEndian.Uint64(row[1:9])
		dst = append(dst, value{row[0], row[9 : 9+n]})
		row = row[9+n:]
	}
	return dst
}

func appendCanon(dst []byte, tag byte, v []byte) []byte {
	dst = append(dst, tag)
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(v)))
	return append(dst, v...)
}

// row masks one row into d.sql and adds it to the digests: the masked row
// as the target must hold it, the kept columns as the backup holds them.
func (d *maskDB) row(t *maskTable, row []byte) error {
	vals := decodeRow(row, nil)
	if len(vals) != len(t.cols) {
		return fmt.Errorf("a row of INSERT INTO %s has %d values, not its %d columns", quoteIdent(t.name), len(vals), len(t.cols))
	}
	d.want, d.kept = d.want[:0], d.kept[:0]
	d.sql = append(d.sql, '(')
	for i, x := range vals {
		if i > 0 {
			d.sql = append(d.sql, ',')
		}
		c := t.maskers[i]
		if c == nil || x.tag == 'N' {
			if c == nil {
				d.kept = appendCanon(d.kept, x.tag, x.v)
				if h := d.v.seen.Hash(string(x.v)); h != 0 && (x.tag == 'S' || x.tag == 'X') {
					t.kept = append(t.kept, h)
				}
			}
			var err error
			if d.sql, err = appendLiteral(d.sql, x.tag, x.v); err != nil {
				return fmt.Errorf("INSERT INTO %s: %w", quoteIdent(t.name), err)
			}
			d.want = appendCanon(d.want, x.tag, x.v)
			continue
		}
		if t.collect[i] {
			d.v.seen.Add(string(x.v))
		}
		out, null, err := c.Mask(string(x.v))
		if err != nil {
			return fmt.Errorf("masked load of database %q: %w", d.label, err)
		}
		tag := maskedTag(x.tag, out, null, binaryType(t.types[t.cols[i]]))
		d.sql, _ = appendLiteral(d.sql, tag, []byte(out))
		d.want = appendCanon(d.want, tag, []byte(out))
	}
	d.sql = append(d.sql, ')')
	d.v.want.Add(d.label+"."+t.name, d.want)
	d.v.kept.Add(d.label+"."+t.name+keptSuffix, d.kept)
	return nil
}

// maskedTag is how a masked value is written, as mariadb-dump writes the
// column's values: NULL, a number where the original was one and the
// pseudonym is one, binary in a binary column, else a string.
func maskedTag(orig byte, out string, null, binary bool) byte {
	switch {
	case null:
		return 'N'
	case orig == 'D' && isNumber([]byte(out)):
		return 'D'
	case binary:
		return 'X'
	}
	return 'S'
}

// binaryType reports whether a declared column type holds bytes, which
// mariadb-dump --hex-blob writes as 0x….
func binaryType(typ string) bool {
	base, _, _ := strings.Cut(typ, "(")
	switch base {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return false
}

// appendLiteral writes a value as SQL, as the dump parser reads it back.
func appendLiteral(dst []byte, tag byte, v []byte) ([]byte, error) {
	switch tag {
	case 'N':
		return append(dst, "NULL"...), nil
	case 'D':
		if !isNumber(v) {
			return nil, fmt.Errorf("%.20q is not a number", v)
		}
		return append(dst, v...), nil
	case 'X':
		if len(v) == 0 {
			return append(dst, "X''"...), nil
		}
		return hex.AppendEncode(append(dst, "0x"...), v), nil
	case 'B':
		for _, c := range v {
			if c != '0' && c != '1' {
				return nil, fmt.Errorf("bit literal b'%.20s' holds other digits than 0 and 1", v)
			}
		}
		return append(append(append(dst, "b'"...), v...), '\''), nil
	}
	dst = append(dst, '\'')
	for _, c := range v {
		switch c {
		case '\\', '\'':
			dst = append(dst, '\\', c)
		case 0:
			dst = append(dst, '\\', '0')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case 26:
			dst = append(dst, '\\', 'Z')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '\''), nil
}

// cover lists the database's tables and columns as the rules name them.
func (d *maskDB) cover(out map[string][]string) {
	for _, t := range d.tables {
		out[t.key] = append(out[t.key], t.cols...)
	}
}

// checkRows proves that the rows the masked load read are the rows the
// backup digested (the same parser, in the same dump): a dump that reads
// differently when split into statements is refused.
func (d *maskDB) checkRows(recorded []engine.TableDigest) error {
	want := map[string]engine.TableDigest{}
	for _, r := range recorded {
		if strings.HasPrefix(r.Table, d.label+".") {
			want[r.Table] = r
		}
	}
	for _, got := range d.full.Result() {
		if w, ok := want[got.Table]; ok && w != got || !ok && got.Rows > 0 {
			return fmt.Errorf("dump of database %q: the rows of table %s as the masked load reads them differ from those the backup digested: the dump is not one mariadb-dump wrote; nothing was written to the target", d.label, got.Table)
		}
		delete(want, got.Table)
	}
	for name, w := range want {
		if w.Rows > 0 {
			return fmt.Errorf("dump of database %q: the backup digested %d rows of %s, which the masked load does not find; nothing was written to the target", d.label, w.Rows, name)
		}
	}
	return nil
}

// checkSchema refuses a dump whose carried statements (settings, table
// definitions) hold an original value of a masked column: a backup host
// could otherwise hide the data in a default or a comment.
func (d *maskDB) checkSchema(seen *mask.Originals) error {
	for _, s := range d.schema {
		if seen.HasIn(string(s)) {
			return fmt.Errorf("dump of database %q: the statement %.60q… holds an original value of a masked column: a masked copy must not carry it; nothing was written to the target", d.label, s)
		}
	}
	return nil
}

// checkKept refuses a dump in which a column the rules keep holds an
// original value of a masked column (a copy of the e-mails under another
// name): found before anything is written.
func (d *maskDB) checkKept(seen *mask.Originals) error {
	for _, t := range d.tables {
		for _, h := range t.kept {
			if seen.HasHash(h) {
				return fmt.Errorf("dump of database %q: a column of table %s that the rules keep holds an original value of a masked column; nothing was written to the target: check the rules (a kept column holding what a masked one holds?)", d.label, quoteIdent(t.name))
			}
		}
		t.kept = nil
	}
	return nil
}

// notes says what the masked load left out.
func (d *maskDB) notes() []string {
	if len(d.dropped) == 0 {
		return nil
	}
	var kinds []string
	for k, n := range d.dropped {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	return []string{fmt.Sprintf("database %q: the masked copy leaves out what a masked load does not carry (it carries tables, their rows and keys): %s", d.label, strings.Join(kinds, ", "))}
}
