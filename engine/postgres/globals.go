package postgres

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// This file reads the globals part of a snapshot, the output of
// `pg_dumpall --globals-only`, which a backup host wrote and may have
// replaced. It is never given to psql or to the server: ParseGlobals
// recognises exactly the statements pg_dumpall writes about roles and
// their memberships and keeps their values; Plan (globalsplan.go) then
// builds the few statements coffer runs itself. Everything else is listed
// in Globals.Skipped, never run.

// Globals is what ParseGlobals recognised in a globals script.
type Globals struct {
	Roles       []RoleDef    // in the order the script defines them
	Memberships []Membership // in the order of the script
	Tablespaces []Tablespace // recorded, never created
	// Skipped describes every statement or psql meta-command that is not
	// applied, one short line each, safe to print on a terminal:
	// "line 12: psql meta-command \! (never run)".
	Skipped []string
	// Encoding is the client_encoding the script declared, upper-cased.
	Encoding string

	skippedMore int
}

// RoleDef is a role as pg_dumpall's CREATE ROLE and ALTER ROLE … WITH
// statements define it. A role the script only creates has PostgreSQL's
// defaults: INHERIT, NOLOGIN, no limit.
type RoleDef struct {
	Name                                   string
	Superuser, CreateDB, CreateRole        bool
	Inherit, Login, Replication, BypassRLS bool
	ConnLimit                              int    // -1: no limit
	Password                               string // a SCRAM-SHA-256 or MD5 hash, or empty
	ValidUntil                             string // a timestamp, or empty
	Comment                                string // COMMENT ON ROLE, or empty
	Line                                   int    // where the script defines it
}

// Membership is a GRANT role TO member statement of the script. Inherit
// and Set are nil when the script does not say (dumps of servers older
// than PostgreSQL 16).
type Membership struct {
	Role, Member string
	Admin        bool
	Inherit, Set *bool
	GrantedBy    string
	Line         int
}

// Tablespace is a CREATE TABLESPACE statement of the script. coffer never
// creates tablespaces: a tablespace is a directory on the server's file
// system, outside any database.
type Tablespace struct {
	Name, Owner, Location string
	Line                  int
}

// maxSkipped bounds Globals.Skipped: a hostile script may hold millions
// of statements.
const maxSkipped = 100

// ParseGlobals reads a pg_dumpall --globals-only script of PostgreSQL 11
// to 17. It fails only if the script cannot be split into statements
// (an unterminated quoted identifier, literal or comment); a statement it
// does not recognise, or whose names or values it cannot use, is listed
// in Skipped.
func ParseGlobals(script []byte) (*Globals, error) {
	p := &globalsParser{g: &Globals{}, lx: newLexer(string(script)), roles: map[string]int{}}
	var toks []token
	for {
		t, err := p.lx.next()
		if err != nil {
			return nil, fmt.Errorf("the globals script (pg_dumpall --globals-only) cannot be read, %w; no role was created", err)
		}
		switch {
		case t.kind == tMeta:
			if len(toks) > 0 {
				p.skip(toks, "cut short by a psql meta-command; never run")
				toks = nil
			}
			p.meta(t)
		case t.kind == tSym && t.text == ";":
			if len(toks) > 0 {
				p.statement(toks)
			}
			toks = nil
		case t.kind == tEOF:
			if len(toks) > 0 {
				p.skip(toks, "not ended by a semicolon; never run")
			}
			if p.g.skippedMore > 0 {
				p.g.Skipped = append(p.g.Skipped, fmt.Sprintf("and %d more statements, never run", p.g.skippedMore))
			}
			return p.g, nil
		default:
			toks = append(toks, t)
		}
	}
}

type globalsParser struct {
	g       *Globals
	lx      *lexer
	roles   map[string]int // name → index in g.Roles
	foreign bool           // client_encoding is not UTF-8
}

func (p *globalsParser) skipf(line int, format string, args ...any) {
	if len(p.g.Skipped) >= maxSkipped {
		p.g.skippedMore++
		return
	}
	p.g.Skipped = append(p.g.Skipped, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
}

func (p *globalsParser) skip(toks []token, why string) {
	p.skipf(toks[0].line, "%s (%s)", summary(toks), why)
}

// meta records a psql meta-command. \restrict and \unrestrict, which
// pg_dumpall writes from PostgreSQL 17.6, 16.10 and 15.14 on to keep psql
// from running other meta-commands, mean nothing here.
func (p *globalsParser) meta(t token) {
	if t.text == "restrict" || t.text == "unrestrict" {
		return
	}
	name := t.text
	if !plainMeta.MatchString(name) {
		name = display(name)
	}
	p.skipf(t.line, `psql meta-command \%s (never run)`, name)
}

func (p *globalsParser) statement(toks []token) {
	if p.foreign {
		for _, t := range toks {
			if strings.ContainsFunc(t.text, func(r rune) bool { return r >= 0x80 }) {
				p.skip(toks, fmt.Sprintf("names in client encoding %s are not converted; not applied", display(p.g.Encoding)))
				return
			}
		}
	}
	c := &cursor{toks: toks}
	why, known := "", true
	switch {
	case c.word("set"):
		why = p.set(c)
	case c.word("create", "role"):
		why = p.createRole(c)
	case c.word("alter", "role"):
		why = p.alterRole(c)
	case c.word("comment", "on", "role"):
		why = p.comment(c)
	case c.word("grant"):
		why = p.grant(c)
	case c.word("create", "tablespace"):
		why = p.tablespace(c)
	case c.word("alter", "tablespace"), c.word("comment", "on", "tablespace"):
		why = "tablespaces are not restored"
	case c.word("security", "label"):
		why = "security labels are not restored"
	case c.word("drop"):
		why = "never run"
	default:
		why, known = "not a statement pg_dumpall --globals-only writes about roles; never run", false
	}
	if why != "" {
		if bad := c.badToken(); bad != "" && known {
			why = "it holds " + bad + "; not applied"
		}
		p.skip(toks, why)
	}
}

// set follows the settings that change how the rest of the script reads.
func (p *globalsParser) set(c *cursor) string {
	name, ok := c.anyWord()
	if !ok || !(c.sym("=") || c.word("to")) {
		return "not applied"
	}
	val, ok := c.str()
	if !ok {
		val, ok = c.anyWord()
	}
	if !ok || !c.done() {
		return "not applied"
	}
	switch name {
	case "default_transaction_read_only":
	case "client_encoding":
		p.g.Encoding = strings.ToUpper(val)
		switch p.g.Encoding {
		case "UTF8", "UTF-8", "UNICODE", "SQL_ASCII":
			p.foreign = false
		default:
			p.foreign = true
		}
	case "standard_conforming_strings":
		switch strings.ToLower(val) {
		case "on", "true":
			p.lx.stdStrings = true
		case "off", "false":
			p.lx.stdStrings = false
		default:
			return "not applied"
		}
	default:
		return "settings are not applied"
	}
	return ""
}

// role returns the definition of role name, adding it with PostgreSQL's
// defaults for CREATE ROLE.
func (p *globalsParser) role(name string, line int) *RoleDef {
	if i, ok := p.roles[name]; ok {
		return &p.g.Roles[i]
	}
	p.roles[name] = len(p.g.Roles)
	p.g.Roles = append(p.g.Roles, RoleDef{Name: name, Inherit: true, ConnLimit: -1, Line: line})
	return &p.g.Roles[len(p.g.Roles)-1]
}

func (p *globalsParser) createRole(c *cursor) string {
	line := c.peek().line
	name, ok := c.ident()
	if !ok || !c.done() {
		return "not the plain CREATE ROLE pg_dumpall writes; never run"
	}
	if _, dup := p.roles[name]; dup {
		return "the role is defined twice; never run"
	}
	p.role(name, line)
	return ""
}

var (
	plainMeta = regexp.MustCompile(`^[!-~]{0,16}$`)
	scramHash = regexp.MustCompile(`^SCRAM-SHA-256\$[0-9]{1,9}:[A-Za-z0-9+/=]{1,200}\$[A-Za-z0-9+/=]{1,200}:[A-Za-z0-9+/=]{1,200}$`)
	md5Hash   = regexp.MustCompile(`^md5[0-9a-f]{32}$`)
	timestamp = regexp.MustCompile(`^[0-9A-Za-z :+./-]{1,64}$`)
)

// alterRole reads ALTER ROLE name WITH attributes. The attributes are
// checked in full before any is kept.
func (p *globalsParser) alterRole(c *cursor) string {
	line := c.peek().line
	name, ok := c.ident()
	if !ok {
		return "not applied"
	}
	if c.isWord("set") || c.isWord("reset") || c.isWord("in") {
		return "role settings are not restored"
	}
	if !c.word("with") {
		return "not applied"
	}
	var r RoleDef
	if i, ok := p.roles[name]; ok {
		r = p.g.Roles[i]
	} else {
		r = RoleDef{Name: name, Inherit: true, ConnLimit: -1, Line: line}
	}
	flags := map[string]*bool{"superuser": &r.Superuser, "createdb": &r.CreateDB, "createrole": &r.CreateRole,
		"inherit": &r.Inherit, "login": &r.Login, "replication": &r.Replication, "bypassrls": &r.BypassRLS}
	seen := map[string]bool{}
	var notes []string
	for !c.done() {
		w, ok := c.anyWord()
		key := strings.TrimPrefix(w, "no")
		if flags[w] == nil && flags[key] == nil {
			key = w
		}
		if !ok || seen[key] {
			return "not the attributes pg_dumpall writes; not applied"
		}
		seen[key] = true
		switch {
		case flags[w] != nil:
			*flags[w] = true
		case flags[key] != nil:
			*flags[key] = false
		case w == "connection" && c.word("limit"):
			n, err := strconv.ParseInt(c.peek().text, 10, 32)
			if c.peek().kind != tNumber || err != nil {
				return "not applied"
			}
			c.i++
			r.ConnLimit = int(n)
		case w == "password":
			if c.word("null") {
				r.Password = ""
				continue
			}
			pw, ok := c.str()
			if !ok {
				return "not applied"
			}
			r.Password = ""
			if scramHash.MatchString(pw) || md5Hash.MatchString(pw) {
				r.Password = pw
			} else {
				notes = append(notes, fmt.Sprintf("the password of role %s is not a SCRAM-SHA-256 or MD5 hash; left out", display(name)))
			}
		case w == "valid" && c.word("until"):
			v, ok := c.str()
			if !ok {
				return "not applied"
			}
			r.ValidUntil = ""
			if timestamp.MatchString(v) {
				r.ValidUntil = v
			} else {
				notes = append(notes, fmt.Sprintf("the VALID UNTIL of role %s is not a timestamp; left out", display(name)))
			}
		default:
			return "not the attributes pg_dumpall writes; not applied"
		}
	}
	*p.role(name, line) = r
	for _, n := range notes {
		p.skipf(line, "%s", n)
	}
	return ""
}

func (p *globalsParser) comment(c *cursor) string {
	name, ok := c.ident()
	if !ok || !c.word("is") {
		return "not applied"
	}
	text, ok := c.str()
	if !ok || !c.done() {
		return "not applied"
	}
	i, ok := p.roles[name]
	if !ok {
		return "a comment on a role the script does not define; not applied"
	}
	p.g.Roles[i].Comment = text
	return ""
}

// grant reads GRANT role TO member [WITH options] [GRANTED BY grantor].
func (p *globalsParser) grant(c *cursor) string {
	line := c.peek().line
	m := Membership{Line: line}
	var ok bool
	if m.Role, ok = c.ident(); !ok || c.isWord("on") || !c.word("to") {
		for c.i < len(c.toks) && !c.isWord("on") {
			c.i++
		}
		if c.word("on", "tablespace") {
			return "tablespaces are not restored"
		}
		if c.isWord("on") {
			return "privileges on server parameters are not restored"
		}
		return "not the GRANT role TO member pg_dumpall writes; not applied"
	}
	if m.Member, ok = c.ident(); !ok {
		return "not the GRANT role TO member pg_dumpall writes; not applied"
	}
	if c.word("with") {
		seen := map[string]bool{}
		for {
			opt, _ := c.anyWord()
			val, _ := c.anyWord()
			if seen[opt] {
				return "not applied"
			}
			seen[opt] = true
			yes, no := val == "true" || opt == "admin" && val == "option", val == "false"
			switch {
			case opt == "admin" && (yes || no):
				m.Admin = yes
			case opt == "inherit" && (yes || no):
				m.Inherit = &yes
			case opt == "set" && (yes || no):
				m.Set = &yes
			default:
				return "not the options pg_dumpall writes; not applied"
			}
			if !c.sym(",") {
				break
			}
		}
	}
	if c.word("granted", "by") {
		if m.GrantedBy, ok = c.ident(); !ok {
			return "not applied"
		}
	}
	if !c.done() {
		return "not the GRANT role TO member pg_dumpall writes; not applied"
	}
	p.g.Memberships = append(p.g.Memberships, m)
	return ""
}

func (p *globalsParser) tablespace(c *cursor) string {
	line := c.peek().line
	ts := Tablespace{Line: line}
	var ok bool
	if ts.Name, ok = c.ident(); ok && c.word("owner") {
		if ts.Owner, ok = c.ident(); ok && c.word("location") {
			if ts.Location, ok = c.str(); ok && c.done() {
				p.g.Tablespaces = append(p.g.Tablespaces, ts)
			}
		}
	}
	return "tablespaces are never created: they are directories on the server"
}
