package postgres

import (
	"fmt"
	"sort"
	"strings"

	"github.com/coffer-backup/coffer/mask"
)

// Masking makes a load a masked one (TargetOptions.Mask): the archive is
// rewritten on its way to pg_restore so that no original value of a
// masked column reaches the server.
type Masking struct {
	Rules  *mask.Rules
	Masker *mask.Masker
}

// maskCarried is the closed list of what a masked load carries: tables,
// their data, and what the tables need to hold it (types, sequences,
// defaults, constraints, indexes). Everything else a dump can hold is
// left out, because any of it can carry data past the rules: comments,
// functions, views and materialized views, triggers and rules, policies,
// large objects, publications, and whatever a hostile backup host makes
// up. Owners and grants (ACL) are applied by coffer from parsed values.
var maskCarried = map[string]bool{
	"ENCODING": true, "STDSTRINGS": true, "SEARCHPATH": true, "DATABASE": true, "SCHEMA": true,
	"TABLE": true, "TABLE DATA": true, "SEQUENCE": true, "SEQUENCE OWNED BY": true, "SEQUENCE SET": true,
	"DEFAULT": true, "CONSTRAINT": true, "FK CONSTRAINT": true, "CHECK CONSTRAINT": true, "INDEX": true,
	"TYPE": true, "DOMAIN": true, "COLLATION": true, "EXTENSION": true, "ACL": true,
}

// maskPlan is what a masked load does with one archive.
type maskPlan struct {
	tables  map[int64]*maskTable // TABLE DATA entries, by dump id
	dropped map[string]int       // entries left out, by kind
}

// maskTable is one table's data in a masked load.
type maskTable struct {
	id       int64  // the TABLE DATA entry's dump id
	name     string // schema.table
	copyStmt string // rebuilt from parsed names
	cols     []string
	maskers  []*mask.Column // nil for a kept column
	collect  []bool         // remember the column's originals (verification)
	order    []int          // the masked columns, costliest first (maskwork.go)
	workers  int            // how many goroutines mask the table's columns
}

// planMask checks the archive's table of contents against the rules and
// drops what a masked load does not carry, before anything is written to
// the target: every table's data must be COPY text naming its own table,
// once, and (with default: fail) every column must have a rule.
func planMask(a *archive, m *Masking) (*maskPlan, error) {
	p := &maskPlan{tables: map[int64]*maskTable{}, dropped: map[string]int{}}
	unique := uniqueColumns(a)
	seen := map[string]bool{}
	cover := map[string][]string{}
	var kept []int64
	for _, id := range a.order {
		e := a.entries[id]
		if !maskCarried[e.desc] || e.desc == "ACL" && !aclOfCarried(a, e) {
			p.dropped[e.desc]++ // stays in entries: its data block, if any, is read and dropped
			continue
		}
		kept = append(kept, id)
		if e.desc != "TABLE DATA" {
			if e.hasData {
				return nil, fmt.Errorf("masked load of database %q: the archive's %s entry %d claims data, which pg_dump never writes for one: the archive was not written by pg_dump; nothing was written to the target", a.label, display(e.desc), id)
			}
			continue
		}
		cols, err := parseCopy(e)
		if err != nil {
			return nil, fmt.Errorf("masked load of database %q: %w", a.label, err)
		}
		name := e.namespace + "." + e.tag
		if seen[name] {
			return nil, fmt.Errorf("masked load of database %q: the archive holds the data of table %s twice: pg_dump writes each table's data once; nothing was written to the target", a.label, display(name))
		}
		seen[name] = true
		key := rulesTable(m.Rules, e.namespace, e.tag)
		cover[key] = cols
		p.tables[id] = newMaskTable(m, key, e, cols, unique[name])
		p.tables[id].id = id
	}
	a.order = kept
	if err := m.Rules.Cover(cover); err != nil {
		return nil, err
	}
	return p, nil
}

// aclOfCarried reports whether an ACL entry is about an object the masked
// load carries (its tag names it: "TABLE customers", "SCHEMA public"…).
func aclOfCarried(a *archive, acl *tocEntry) bool {
	kind, _, _ := strings.Cut(acl.tag, " ")
	return maskCarried[kind] && kind != "ACL"
}

func newMaskTable(m *Masking, key string, e *tocEntry, cols []string, unique map[string]bool) *maskTable {
	t := &maskTable{name: e.namespace + "." + e.tag, cols: cols, maskers: make([]*mask.Column, len(cols)), collect: make([]bool, len(cols))}
	q := make([]string, len(cols))
	rules := make([]mask.Rule, len(cols))
	for i, c := range cols {
		q[i] = quoteIdent(c)
		rules[i], _ = m.Rules.Lookup(key, c)
		rules[i].Unique = rules[i].Unique || unique[c]
	}
	for i, r := range rules {
		if r.Masks() {
			// A Masker of its own, so that any goroutine may mask it.
			t.maskers[i] = m.Masker.Fork().Column(key+"."+cols[i], r)
			t.collect[i] = mask.Checked(r)
		}
	}
	t.order, t.workers = maskOrder(rules)
	t.copyStmt = "COPY " + quoteIdent(e.namespace) + "." + quoteIdent(e.tag) + " (" + strings.Join(q, ", ") + ") FROM stdin;\n"
	if len(cols) == 0 {
		t.copyStmt = "COPY " + quoteIdent(e.namespace) + "." + quoteIdent(e.tag) + " FROM stdin;\n"
	}
	return t
}

// rulesTable is the name the rules file gives a table: schema.table, or
// the bare name for a table in public when the file uses that.
func rulesTable(r *mask.Rules, schema, table string) string {
	full := schema + "." + table
	if _, ok := r.Tables[full]; !ok && schema == "public" {
		if _, ok := r.Tables[table]; ok {
			return table
		}
	}
	return full
}

// parseCopy reads a TABLE DATA entry's copy statement, which pg_restore
// would run as it is: it must be COPY of the entry's own table, with a
// list of plain column names, FROM stdin, and nothing else.
func parseCopy(e *tocEntry) ([]string, error) {
	bad := fmt.Errorf("the data of table %s has the copy statement %s, not pg_dump's COPY of that table FROM stdin: the archive was not written by pg_dump; nothing was written to the target",
		display(e.namespace+"."+e.tag), display(truncate(e.copyStmt, 200)))
	toks, err := tokenize(e.copyStmt)
	if err != nil {
		return nil, bad
	}
	c := &cursor{toks: toks}
	if !c.word("copy") {
		return nil, bad
	}
	name, ok := c.qualified(2)
	if !ok || name[0] != e.namespace || name[1] != e.tag {
		return nil, bad
	}
	var cols []string
	if c.sym("(") {
		for {
			col, ok := c.ident()
			if !ok {
				return nil, bad
			}
			cols = append(cols, col)
			if c.sym(")") {
				break
			}
			if !c.sym(",") {
				return nil, bad
			}
		}
	}
	if !c.word("from", "stdin") {
		return nil, bad
	}
	c.sym(";")
	if !c.done() {
		return nil, bad
	}
	dup := map[string]bool{}
	for _, col := range cols {
		if dup[col] {
			return nil, bad
		}
		dup[col] = true
	}
	return cols, nil
}

// uniqueColumns finds the columns that a primary key, a unique constraint
// or a unique index of one column makes unique, by schema.table: their
// pseudonyms must stay unique.
func uniqueColumns(a *archive) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(table []string, col string) {
		name := table[0] + "." + table[1]
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		out[name][col] = true
	}
	for _, id := range a.order {
		e := a.entries[id]
		if e.desc != "CONSTRAINT" && e.desc != "INDEX" {
			continue
		}
		toks, err := tokenize(e.defn)
		if err != nil {
			continue
		}
		c := &cursor{toks: toks}
		var table []string
		var ok bool
		switch {
		case c.word("alter", "table"):
			c.word("only")
			if table, ok = c.qualified(2); !ok || !c.word("add", "constraint") {
				continue
			}
			if _, ok := c.ident(); !ok || !(c.word("unique") || c.word("primary", "key")) {
				continue
			}
		case c.word("create", "unique", "index"):
			if _, ok := c.ident(); !ok || !c.word("on") {
				continue
			}
			c.word("only")
			if table, ok = c.qualified(2); !ok || !c.word("using") {
				continue
			}
			if _, ok := c.anyWord(); !ok {
				continue
			}
		default:
			continue
		}
		if !c.sym("(") {
			continue
		}
		col, ok := c.ident()
		if ok && c.sym(")") {
			add(table, col)
		}
	}
	return out
}

// notes says what the masked load left out, for the operator.
func (p *maskPlan) notes(db string) []string {
	if len(p.dropped) == 0 {
		return nil
	}
	var kinds []string
	for k, n := range p.dropped {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, strings.ToLower(k)))
	}
	sort.Strings(kinds)
	return []string{fmt.Sprintf("database %q: the masked copy leaves out what a masked load does not carry (it carries tables, their data, types, sequences, defaults, constraints and indexes): %s",
		db, strings.Join(kinds, ", "))}
}
