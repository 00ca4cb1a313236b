package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// This file reads the privileges of a pg_dump archive: the definitions of
// its TOC entries of desc "ACL" and "DEFAULT ACL", which pg_dump writes as
// GRANT and REVOKE statements (dumputils.c, buildACLCommands). ParseACL
// keeps their values; Grant.SQL builds the statement again with quoted
// names, so that no text of the archive reaches the server.

// Grant is one GRANT or REVOKE statement of an ACL entry, or one ALTER
// DEFAULT PRIVILEGES statement of a DEFAULT ACL entry.
type Grant struct {
	Revoke bool
	// GrantOption is WITH GRANT OPTION of a GRANT, or GRANT OPTION FOR of
	// a REVOKE.
	GrantOption bool
	// Privileges are upper-case keywords: SELECT, INSERT, UPDATE, DELETE,
	// TRUNCATE, REFERENCES, TRIGGER, MAINTAIN, CREATE, CONNECT, TEMPORARY,
	// EXECUTE, USAGE, or ALL alone.
	Privileges []string
	// Columns, when set, are the columns every privilege is on (a TABLE).
	Columns []string
	// ObjectKind is TABLE, SEQUENCE, SCHEMA, FUNCTION, PROCEDURE, TYPE,
	// DOMAIN, LANGUAGE, LARGE OBJECT, FOREIGN DATA WRAPPER, FOREIGN SERVER
	// or DATABASE; with Default, TABLES, SEQUENCES, FUNCTIONS, ROUTINES,
	// TYPES or SCHEMAS.
	ObjectKind string
	// Object is the object's name parts (schema, name), its OID for a
	// large object, empty with Default. A DATABASE names the database
	// dumped: the caller puts the target's name here before SQL.
	Object []string
	// Args is a routine's argument list, canonical (signature.go),
	// without the parentheses.
	Args string
	// Grantee is the role granted to or revoked from; empty when Public.
	Grantee string
	Public  bool
	// GrantedBy is the role of the SET SESSION AUTHORIZATION around the
	// statement (pg_dump's way of naming a grantor other than the owner).
	GrantedBy string
	// Default: ALTER DEFAULT PRIVILEGES FOR ROLE ForRole [IN SCHEMA
	// InSchema].
	Default  bool
	ForRole  string
	InSchema string
}

// privsFor are the privileges GRANT takes on each kind of object.
var privsFor = map[string]string{
	"TABLE": "SELECT INSERT UPDATE DELETE TRUNCATE REFERENCES TRIGGER MAINTAIN", "TABLES": "SELECT INSERT UPDATE DELETE TRUNCATE REFERENCES TRIGGER MAINTAIN",
	"SEQUENCE": "USAGE SELECT UPDATE", "SEQUENCES": "USAGE SELECT UPDATE",
	"FUNCTION": "EXECUTE", "PROCEDURE": "EXECUTE", "FUNCTIONS": "EXECUTE", "ROUTINES": "EXECUTE",
	"SCHEMA": "USAGE CREATE", "SCHEMAS": "USAGE CREATE",
	"TYPE": "USAGE", "DOMAIN": "USAGE", "TYPES": "USAGE", "LANGUAGE": "USAGE",
	"FOREIGN DATA WRAPPER": "USAGE", "FOREIGN SERVER": "USAGE",
	"LARGE OBJECT": "SELECT UPDATE", "DATABASE": "CREATE CONNECT TEMPORARY",
}

// allPrivs are the privileges of every kind.
var allPrivs = func() map[string]bool {
	m := map[string]bool{}
	for _, ps := range privsFor {
		for _, p := range strings.Fields(ps) {
			m[p] = true
		}
	}
	return m
}()

// columnPrivs are the privileges that may name columns.
const columnPrivs = "SELECT INSERT UPDATE REFERENCES"

// aclKinds are the words of each object kind, and how many name parts
// its object has (0: an OID; -1: none, for default privileges).
var aclKinds = []struct {
	words []string
	parts int
}{
	{[]string{"table"}, 2}, {[]string{"sequence"}, 2}, {[]string{"function"}, 2}, {[]string{"procedure"}, 2},
	{[]string{"type"}, 2}, {[]string{"domain"}, 2}, {[]string{"schema"}, 1}, {[]string{"language"}, 1},
	{[]string{"large", "object"}, 0}, {[]string{"foreign", "data", "wrapper"}, 1},
	{[]string{"foreign", "server"}, 1}, {[]string{"database"}, 1},
	{[]string{"tables"}, -1}, {[]string{"sequences"}, -1}, {[]string{"functions"}, -1},
	{[]string{"routines"}, -1}, {[]string{"types"}, -1}, {[]string{"schemas"}, -1},
}

// ParseACL reads the definition of an ACL or DEFAULT ACL TOC entry: GRANT
// and REVOKE statements, perhaps between SET SESSION AUTHORIZATION and
// RESET SESSION AUTHORIZATION, each ended by a semicolon. Anything else
// fails, with an error naming the statement.
func ParseACL(defn string) ([]Grant, error) {
	toks, err := tokenize(defn)
	if err != nil {
		return nil, fmt.Errorf("privileges %s: %w", display(defn), err)
	}
	var out []Grant
	authz, start := "", 0
	for i, t := range toks {
		if t.kind == tEOF && i > start {
			return nil, fmt.Errorf("privileges statement %s is not ended by a semicolon", summary(toks[start:i]))
		}
		if t.kind != tSym || t.text != ";" {
			continue
		}
		stmt := toks[start:i]
		start = i + 1
		if len(stmt) == 0 {
			continue
		}
		c := &cursor{toks: stmt}
		var why string
		switch {
		case c.word("set", "session", "authorization"):
			name, ok := c.ident()
			switch {
			case !ok || !c.done():
				why = "not a role name"
			case authz != "":
				why = "a second SET SESSION AUTHORIZATION"
			}
			authz = name
		case c.word("reset", "session", "authorization"):
			if authz == "" || !c.done() {
				why = "not after a SET SESSION AUTHORIZATION"
			}
			authz = ""
		default:
			var g Grant
			if g, why = parseGrant(c); why == "" {
				g.GrantedBy = authz
				out = append(out, g)
			}
		}
		if why != "" {
			if bad := c.badToken(); bad != "" {
				why = "it holds " + bad
			}
			return nil, fmt.Errorf("privileges statement %s: %s; coffer applies only the GRANT and REVOKE statements pg_dump writes", summary(stmt), why)
		}
	}
	if authz != "" {
		return nil, errors.New("privileges: SET SESSION AUTHORIZATION without RESET SESSION AUTHORIZATION")
	}
	return out, nil
}

// parseGrant reads [ALTER DEFAULT PRIVILEGES FOR ROLE r [IN SCHEMA s]]
// GRANT|REVOKE … and says what is wrong, or "".
func parseGrant(c *cursor) (Grant, string) {
	var g Grant
	var ok bool
	if c.word("alter", "default", "privileges") {
		g.Default = true
		if !c.word("for", "role") {
			return g, "not FOR ROLE"
		}
		if g.ForRole, ok = c.ident(); !ok {
			return g, "not a role name after FOR ROLE"
		}
		if c.word("in", "schema") {
			if g.InSchema, ok = c.ident(); !ok {
				return g, "not a schema name after IN SCHEMA"
			}
		}
	}
	switch {
	case c.word("grant"):
	case c.word("revoke"):
		g.Revoke = true
		g.GrantOption = c.word("grant", "option", "for")
	default:
		return g, "not a GRANT or REVOKE"
	}
	if why := parsePrivileges(c, &g); why != "" {
		return g, why
	}
	if !c.word("on") {
		return g, "no ON after the privileges"
	}
	if why := parseObject(c, &g); why != "" {
		return g, why
	}
	if g.Revoke && !c.word("from") || !g.Revoke && !c.word("to") {
		return g, "not TO or FROM a role"
	}
	if t := c.peek(); t.bad == "" && (t.kind == tWord || t.kind == tQuoted) && t.text == "public" {
		c.i++
		g.Public = true
	} else if g.Grantee, ok = c.ident(); !ok || g.Grantee == "none" {
		return g, "not a role name after TO or FROM"
	}
	if !g.Revoke && c.word("with", "grant", "option") {
		g.GrantOption = true
	}
	if !c.done() {
		return g, "more than pg_dump writes after the role"
	}
	return g, ""
}

func parsePrivileges(c *cursor, g *Grant) string {
	var cols []string
	for first := true; ; first = false {
		w, ok := c.anyWord()
		p := strings.ToUpper(w)
		switch {
		case !ok:
			return "not a privilege"
		case p == "ALL":
			c.word("privileges")
		case p == "TEMP":
			p = "TEMPORARY"
		case !allPrivs[p]:
			return fmt.Sprintf("%s is not a privilege", display(w))
		}
		if slices.Contains(g.Privileges, p) {
			return "a privilege named twice"
		}
		g.Privileges = append(g.Privileges, p)
		var these []string
		if c.sym("(") {
			for {
				col, ok := c.ident()
				if !ok {
					return "not a column name"
				}
				these = append(these, col)
				if c.sym(")") {
					break
				}
				if !c.sym(",") {
					return "not a column list"
				}
			}
		}
		if !first && !slices.Equal(these, cols) {
			return "privileges on different columns in one statement"
		}
		cols = these
		if !c.sym(",") {
			break
		}
	}
	if len(g.Privileges) > 1 && slices.Contains(g.Privileges, "ALL") {
		return "ALL with other privileges"
	}
	g.Columns = cols
	return ""
}

func parseObject(c *cursor, g *Grant) string {
	parts := -2
	for _, k := range aclKinds {
		if c.word(k.words...) {
			g.ObjectKind, parts = strings.ToUpper(strings.Join(k.words, " ")), k.parts
			break
		}
	}
	switch {
	case parts == -2:
		return "not an object kind pg_dump grants privileges on"
	case g.Default != (parts == -1):
		return "an object kind that does not go with the statement"
	case parts == 0:
		t := c.peek()
		if n, err := strconv.ParseUint(t.text, 10, 32); t.kind != tNumber || err != nil || strconv.FormatUint(n, 10) != t.text {
			return "not a large object OID"
		}
		c.i++
		g.Object = []string{t.text}
	case parts > 0:
		var ok bool
		if g.Object, ok = c.qualified(parts); !ok {
			return fmt.Sprintf("not a %d-part name of a %s", parts, strings.ToLower(g.ObjectKind))
		}
	}
	if g.ObjectKind == "FUNCTION" || g.ObjectKind == "PROCEDURE" {
		var ok bool
		if g.Args, ok = parseArgs(c, false); !ok {
			return "not a list of argument types"
		}
	}
	allowed := privsFor[g.ObjectKind]
	if g.Columns != nil {
		if g.ObjectKind != "TABLE" {
			return "columns of something else than a table"
		}
		allowed = columnPrivs
	}
	for _, p := range g.Privileges {
		if p != "ALL" && !slices.Contains(strings.Fields(allowed), p) {
			return fmt.Sprintf("privilege %s on a %s", p, strings.ToLower(g.ObjectKind))
		}
	}
	return ""
}

// SQL is the statement of g, built from its values with every name
// quoted; PUBLIC is the keyword. It leaves out GrantedBy (see Statements).
func (g Grant) SQL() string {
	var b strings.Builder
	if g.Default {
		b.WriteString("ALTER DEFAULT PRIVILEGES FOR ROLE " + quoteIdent(g.ForRole) + " ")
		if g.InSchema != "" {
			b.WriteString("IN SCHEMA " + quoteIdent(g.InSchema) + " ")
		}
	}
	if g.Revoke {
		b.WriteString("REVOKE ")
		if g.GrantOption {
			b.WriteString("GRANT OPTION FOR ")
		}
	} else {
		b.WriteString("GRANT ")
	}
	cols := ""
	if g.Columns != nil {
		q := make([]string, len(g.Columns))
		for i, c := range g.Columns {
			q[i] = quoteIdent(c)
		}
		cols = "(" + strings.Join(q, ", ") + ")"
	}
	for i, p := range g.Privileges {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p + cols)
	}
	b.WriteString(" ON " + g.ObjectKind)
	switch {
	case g.Default:
	case g.ObjectKind == "LARGE OBJECT":
		b.WriteString(" " + strings.Join(g.Object, ""))
	default:
		b.WriteString(" " + pgx.Identifier(g.Object).Sanitize())
	}
	if g.ObjectKind == "FUNCTION" || g.ObjectKind == "PROCEDURE" {
		b.WriteString("(" + g.Args + ")")
	}
	if g.Revoke {
		b.WriteString(" FROM ")
	} else {
		b.WriteString(" TO ")
	}
	if g.Public {
		b.WriteString("PUBLIC")
	} else {
		b.WriteString(quoteIdent(g.Grantee))
	}
	if g.GrantOption && !g.Revoke {
		b.WriteString(" WITH GRANT OPTION")
	}
	return b.String()
}

// Statements are the statements that apply g: SQL, between SET SESSION
// AUTHORIZATION and RESET SESSION AUTHORIZATION when g has a grantor (the
// applying user must then be a superuser).
func (g Grant) Statements() []string {
	if g.GrantedBy == "" {
		return []string{g.SQL()}
	}
	return []string{"SET SESSION AUTHORIZATION " + quoteIdent(g.GrantedBy), g.SQL(), "RESET SESSION AUTHORIZATION"}
}

// Roles are the roles g names: its grantee (unless PUBLIC), its grantor
// and the role of default privileges.
func (g Grant) Roles() []string {
	var out []string
	for _, r := range []string{g.Grantee, g.GrantedBy, g.ForRole} {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// systemSchemas hold PostgreSQL's own objects.
var systemSchemas = map[string]bool{"pg_catalog": true, "information_schema": true, "pg_toast": true}

// System says whether g is on one of PostgreSQL's own objects (in
// pg_catalog or information_schema, or those schemas): pg_dump writes the
// privileges a database changed on them, and a snapshot could use that
// to let every role run pg_read_file or the like.
func (g Grant) System() bool {
	switch {
	case g.Default:
		return systemSchemas[g.InSchema]
	case len(g.Object) == 2:
		return systemSchemas[g.Object[0]]
	case g.ObjectKind == "SCHEMA":
		return systemSchemas[g.Object[0]]
	}
	return false
}
