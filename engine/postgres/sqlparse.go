package postgres

import (
	"strings"
)

// cursor walks the tokens of one statement for the parsers of
// globals.go, acl.go and createdb.go.
type cursor struct {
	toks []token
	i    int
}

func (c *cursor) peek() token {
	if c.i < len(c.toks) {
		return c.toks[c.i]
	}
	return token{kind: tEOF}
}

func (c *cursor) done() bool { return c.peek().kind == tEOF }

// isWord says whether the next token is the unquoted word w.
func (c *cursor) isWord(w string) bool {
	t := c.peek()
	return t.kind == tWord && t.text == w
}

// word consumes the unquoted words ws, in order, if they are next.
func (c *cursor) word(ws ...string) bool {
	for k, w := range ws {
		if c.i+k >= len(c.toks) || c.toks[c.i+k].kind != tWord || c.toks[c.i+k].text != w {
			return false
		}
	}
	c.i += len(ws)
	return true
}

// sym consumes the symbol s if it is next.
func (c *cursor) sym(s string) bool {
	if t := c.peek(); t.kind == tSym && t.text == s {
		c.i++
		return true
	}
	return false
}

// anyWord consumes and returns the next unquoted word.
func (c *cursor) anyWord() (string, bool) {
	if t := c.peek(); t.kind == tWord && t.bad == "" {
		c.i++
		return t.text, true
	}
	return "", false
}

// ident consumes a name: a quoted identifier, or an unquoted one that is
// not a reserved keyword, and that PostgreSQL stores as it is written.
func (c *cursor) ident() (string, bool) {
	t := c.peek()
	if t.bad != "" || !(t.kind == tQuoted || t.kind == tWord && !reservedWords[t.text]) {
		return "", false
	}
	c.i++
	return t.text, true
}

// qualified consumes a name of n parts joined by dots.
func (c *cursor) qualified(n int) ([]string, bool) {
	var parts []string
	for k := range n {
		if k > 0 && !c.sym(".") {
			return nil, false
		}
		p, ok := c.ident()
		if !ok {
			return nil, false
		}
		parts = append(parts, p)
	}
	return parts, true
}

// str consumes a usable string literal.
func (c *cursor) str() (string, bool) {
	if t := c.peek(); t.kind == tString && t.bad == "" {
		c.i++
		return t.text, true
	}
	return "", false
}

// badToken returns the reason of the first unusable token, if any.
func (c *cursor) badToken() string {
	for _, t := range c.toks {
		if t.bad != "" {
			return t.bad
		}
	}
	return ""
}

// summary renders the first tokens of a statement for a message read on
// a terminal: words upper-cased, names and values quoted and escaped.
func summary(toks []token) string {
	var parts []string
	for i, t := range toks {
		if i == 4 {
			parts = append(parts, "…")
			break
		}
		switch t.kind {
		case tWord:
			if summaryWords[t.text] {
				parts = append(parts, strings.ToUpper(t.text))
			} else {
				parts = append(parts, display(t.text))
			}
		case tQuoted:
			parts = append(parts, display(t.text))
		case tString, tDollar:
			parts = append(parts, "'…'")
		case tNumber:
			parts = append(parts, t.text)
		default:
			if len(t.text) == 1 && t.text[0] > ' ' && t.text[0] < 0x7f {
				parts = append(parts, t.text)
			} else {
				parts = append(parts, display(t.text))
			}
		}
	}
	return strings.Join(parts, " ")
}

// summaryWords are the keywords a summary writes as keywords; other
// words may be names, and are quoted.
var summaryWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`all alter analyze authorization begin by call comment commit copy create data
		database default do drop execute exists for foreign from function grant granted if in insert is label
		language large object on owner parameter privileges procedure reset revoke role schema security select
		sequence server session set table tablespace to truncate type update usage user with wrapper`) {
		m[w] = true
	}
	return m
}()

// reservedWords are PostgreSQL's reserved and type_func_name keywords,
// which are names only when quoted: pg_dump quotes them, so an unquoted
// one where a name belongs is not pg_dump's output.
var reservedWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`all analyse analyze and any array as asc asymmetric both case
		cast check collate column constraint create current_catalog current_date current_role
		current_time current_timestamp current_user default deferrable desc distinct do else end
		except false fetch for foreign from grant group having in initially intersect into lateral
		leading limit localtime localtimestamp not null offset on only or order placing primary
		references returning select session_user some symmetric system_user table then to trailing
		true union unique user using variadic when where window with
		authorization binary collation concurrently cross current_schema freeze full ilike inner is
		isnull join left like natural notnull outer overlaps right similar tablesample verbose`) {
		m[w] = true
	}
	return m
}()
