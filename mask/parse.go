package mask

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a rules file, at the line and column it is about.
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ErrorObject names the file, line and column.
func (e *Error) ErrorObject() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	return e.File
}

// maxShiftDays bounds shift_date: ten years.
const maxShiftDays = 3650

// Load reads and parses a rules file.
func Load(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("masking rules: %w", err)
	}
	return Parse(path, b)
}

// Parse parses a rules file strictly: an unknown key, a duplicate table or
// column, or a rule it does not know is an error at its line and column;
// every error is reported, joined.
func Parse(file string, data []byte) (*Rules, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	r := &Rules{File: file, Tables: map[string]map[string]Rule{}}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: file, Msg: "empty: a rules file needs `default:` and `tables:` (write one with `coffer classify`)"}
	}
	p.top(doc.Content[0], r)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return r, nil
}

type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// pairs returns a mapping's keys and values, reporting a node that is not
// a mapping or a key given twice.
func (p *parser) pairs(n *yaml.Node, what string) (keys, vals []*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return nil, nil
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "a key of %s must be a plain name", what)
			continue
		}
		if seen[k.Value] {
			p.errorf(k, "%q appears twice in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals
}

func (p *parser) top(n *yaml.Node, r *Rules) {
	keys, vals := p.pairs(n, "the rules file")
	var sawDefault bool
	for i, k := range keys {
		v := vals[i]
		switch k.Value {
		case "version":
			if v.Value != "1" {
				p.errorf(v, "version %q is not supported: this coffer reads version 1", v.Value)
			}
		case "default":
			sawDefault = true
			switch v.Value {
			case "keep":
				r.Default = Keep
			case "fail":
				r.Default = DefaultFail
			default:
				p.errorf(v, "default %q: give keep (copy columns the file does not name) or fail (refuse them)", v.Value)
			}
		case "tables":
			p.tables(v, r)
		case "canaries":
			r.Canaries = p.canaries(v)
		default:
			p.errorf(k, "unknown key %q: a rules file has version, default, tables and canaries", k.Value)
		}
	}
	if !sawDefault {
		p.errorf(n, "no `default:`: say keep or fail for the columns the file does not name (fail is safer)")
	}
}

func (p *parser) tables(n *yaml.Node, r *Rules) {
	keys, vals := p.pairs(n, "tables")
	for i, k := range keys {
		if !validName(k.Value) {
			p.errorf(k, "table %q: give schema.table (PostgreSQL) or table", k.Value)
			continue
		}
		cols := map[string]Rule{}
		ck, cv := p.pairs(vals[i], "table "+strconv.Quote(k.Value))
		for j, c := range ck {
			if c.Value == "" {
				p.errorf(c, "an empty column name in table %q", k.Value)
				continue
			}
			if rule, ok := p.rule(cv[j], k.Value+"."+c.Value); ok {
				cols[c.Value] = rule
			}
		}
		r.Tables[k.Value] = cols
	}
}

// validName accepts table or schema.table, each part non-empty.
func validName(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return false
	}
	for _, x := range parts {
		if x == "" || strings.ContainsFunc(x, unicode.IsControl) {
			return false
		}
	}
	return true
}

// rule parses "keep", "null", "redact", "hash", "fake KIND", "shift_date
// DAYS", "keep_domain", each optionally followed by "unique".
func (p *parser) rule(n *yaml.Node, col string) (Rule, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "null" {
		return Rule{Action: Null, Line: n.Line, Column: n.Column}, true // `c: null`, unquoted
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "column %s: give a rule such as keep, null, redact, hash, fake email, shift_date 30 or keep_domain", col)
		return Rule{}, false
	}
	f := strings.Fields(n.Value)
	r := Rule{Line: n.Line, Column: n.Column}
	if len(f) > 1 && f[len(f)-1] == "unique" {
		r.Unique, f = true, f[:len(f)-1]
	}
	if len(f) == 0 {
		p.errorf(n, "column %s: an empty rule", col)
		return Rule{}, false
	}
	r.Action = Action(f[0])
	args := f[1:]
	switch r.Action {
	case Keep, Null, Redact, Hash, KeepDomain:
		if len(args) != 0 {
			p.errorf(n, "column %s: %s takes no argument (got %q)", col, r.Action, strings.Join(args, " "))
			return Rule{}, false
		}
	case Fake:
		if len(args) != 1 || !knownKind(Kind(args[0])) {
			p.errorf(n, "column %s: fake needs one kind of %s", col, kindList())
			return Rule{}, false
		}
		r.Kind = Kind(args[0])
	case ShiftDate:
		d, err := strconv.Atoi(strings.Join(args, " "))
		if len(args) != 1 || err != nil || d < 1 || d > maxShiftDays {
			p.errorf(n, "column %s: shift_date needs the largest shift in days, 1 to %d (e.g. shift_date 30)", col, maxShiftDays)
			return Rule{}, false
		}
		r.Days = d
	default:
		p.errorf(n, "column %s: unknown rule %q: give keep, null, redact, hash, fake KIND, shift_date DAYS or keep_domain", col, f[0])
		return Rule{}, false
	}
	return r, true
}

func knownKind(k Kind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func (p *parser) canaries(n *yaml.Node) *Canaries {
	c := &Canaries{}
	keys, vals := p.pairs(n, "canaries")
	for i, k := range keys {
		v := vals[i]
		if v.Kind != yaml.ScalarNode {
			p.errorf(v, "canaries.%s must be a plain value", k.Value)
			continue
		}
		switch k.Value {
		case "table":
			if !validName(v.Value) {
				p.errorf(v, "canaries.table %q: give schema.table (PostgreSQL) or table", v.Value)
			}
			c.Table = v.Value
		case "domain":
			if !validDomain(v.Value) {
				p.errorf(v, "canaries.domain %q: give a domain you receive mail for, such as canary.example.net", v.Value)
			}
			c.Domain = strings.ToLower(v.Value)
		case "phone_prefix":
			if !validPhonePrefix(v.Value) {
				p.errorf(v, "canaries.phone_prefix %q: give a number prefix you watch, such as +1-555-0100 (digits, spaces, dashes, a leading +; 4 digits at least)", v.Value)
			}
			c.PhonePrefix = v.Value
		default:
			p.errorf(k, "unknown key canaries.%s: canaries have table, domain and phone_prefix", k.Value)
		}
	}
	for _, req := range []struct{ v, name string }{{c.Table, "table"}, {c.Domain, "domain"}, {c.PhonePrefix, "phone_prefix"}} {
		if req.v == "" && len(keys) > 0 {
			p.errorf(n, "canaries needs %s", req.name)
		}
	}
	return c
}

func validDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 200 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func validPhonePrefix(s string) bool {
	digits := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '-':
		default:
			return false
		}
	}
	return digits >= 4 && digits <= 12
}
