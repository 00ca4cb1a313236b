package postgres

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// This file reads the argument lists of functions, procedures and
// aggregates as pg_dump writes them in TOC tags ("f(integer, text)") and
// ACL statements ("f(a integer, VARIADIC b text[])"), and writes them back
// canonically: type names are either SQL's keyword types (integer, double
// precision, timestamp with time zone…) or identifiers, which are quoted.
// Nothing else is accepted, so a signature can carry no other SQL.

// argModes are the argument modes of a routine's signature.
var argModes = map[string]bool{"in": true, "out": true, "inout": true, "variadic": true}

// keywordTypes are the first words of the types SQL names with keywords.
var keywordTypes = map[string]bool{
	"integer": true, "int": true, "smallint": true, "bigint": true, "real": true, "float": true,
	"boolean": true, "numeric": true, "decimal": true, "dec": true, "double": true,
	"character": true, "char": true, "varchar": true, "nchar": true, "national": true,
	"bit": true, "timestamp": true, "time": true, "interval": true,
}

// parseArgs reads "(" [arg {"," arg}] ")" at c and returns the arguments
// in canonical form, without the parentheses. With aggregate, "(*)" and
// "ORDER BY" (ordered-set aggregates) are accepted, as ALTER AGGREGATE
// takes them.
func parseArgs(c *cursor, aggregate bool) (string, bool) {
	if !c.sym("(") {
		return "", false
	}
	if c.sym(")") {
		return "", true
	}
	if aggregate && c.sym("*") {
		return "*", c.sym(")")
	}
	var b strings.Builder
	ordered := false
	if aggregate && c.word("order", "by") {
		b.WriteString("ORDER BY ")
		ordered = true
	}
	for {
		a, ok := parseArg(c, aggregate)
		if !ok {
			return "", false
		}
		b.WriteString(a)
		switch {
		case c.sym(","):
			b.WriteString(", ")
		case aggregate && !ordered && c.word("order", "by"):
			b.WriteString(" ORDER BY ")
			ordered = true
		case c.sym(")"):
			return b.String(), true
		default:
			return "", false
		}
	}
}

// argEnd says whether an argument ends at c.
func argEnd(c *cursor, aggregate bool) bool {
	t := c.peek()
	return t.kind == tSym && (t.text == "," || t.text == ")") || aggregate && c.isWord("order")
}

// parseArg reads [mode] [name] type.
func parseArg(c *cursor, aggregate bool) (string, bool) {
	mode := ""
	if t := c.peek(); t.kind == tWord && argModes[t.text] && c.i+1 < len(c.toks) {
		save := c.i
		c.i++
		if argEnd(c, aggregate) {
			c.i = save // a type named like a mode
		} else {
			mode = strings.ToUpper(t.text) + " "
		}
	}
	save := c.i
	if typ, ok := parseType(c); ok && argEnd(c, aggregate) {
		return mode + typ, true
	}
	c.i = save
	if name, ok := c.ident(); ok {
		if typ, ok := parseType(c); ok && argEnd(c, aggregate) {
			return mode + quoteIdent(name) + " " + typ, true
		}
	}
	return "", false
}

// parseType reads a type name: a keyword type or a (schema-qualified)
// identifier, an optional type modifier and array bounds.
func parseType(c *cursor) (string, bool) {
	typ, ok := keywordType(c)
	if t := c.peek(); !ok && t.kind == tWord && keywordTypes[t.text] {
		return "", false // "double" without "precision"
	}
	if !ok {
		name, ok := c.ident()
		if !ok {
			return "", false
		}
		parts := []string{name}
		if c.sym(".") {
			if name, ok = c.ident(); !ok {
				return "", false
			}
			parts = append(parts, name)
		}
		typ = pgx.Identifier(parts).Sanitize()
		mod, ok := typmod(c)
		if !ok {
			return "", false
		}
		typ += mod
	}
	for c.sym("[") {
		if t := c.peek(); t.kind == tNumber && len(t.text) <= 9 {
			c.i++
			typ += "[" + t.text + "]"
		} else {
			typ += "[]"
		}
		if !c.sym("]") {
			return "", false
		}
	}
	return typ, true
}

// typmod reads an optional "(n[, m])".
func typmod(c *cursor) (string, bool) {
	if !c.sym("(") {
		return "", true
	}
	var ns []string
	for {
		t := c.peek()
		if t.kind != tNumber || len(t.text) > 9 {
			return "", false
		}
		c.i++
		ns = append(ns, t.text)
		if c.sym(")") {
			break
		}
		if len(ns) == 2 || !c.sym(",") {
			return "", false
		}
	}
	return "(" + strings.Join(ns, ",") + ")", true
}

// keywordType reads a type SQL names with keywords, leaving c where it was
// if there is none.
func keywordType(c *cursor) (string, bool) {
	save := c.i
	first, ok := c.anyWord()
	if !ok || !keywordTypes[first] {
		c.i = save
		return "", false
	}
	words := []string{first}
	add := func(ws ...string) bool {
		if c.word(ws...) {
			words = append(words, ws...)
			return true
		}
		return false
	}
	fail := func() (string, bool) { c.i = save; return "", false }
	mod := ""
	switch first {
	case "double":
		if !add("precision") {
			return fail()
		}
	case "national":
		if !add("character") && !add("char") {
			return fail()
		}
		add("varying")
		mod, ok = typmod(c)
	case "character", "char", "nchar", "bit":
		add("varying")
		mod, ok = typmod(c)
	case "varchar", "numeric", "decimal", "dec", "float", "interval":
		mod, ok = typmod(c)
	case "timestamp", "time":
		if mod, ok = typmod(c); ok && !add("with", "time", "zone") {
			add("without", "time", "zone")
		}
	}
	if !ok {
		return fail()
	}
	if mod != "" && (first == "timestamp" || first == "time") {
		// the modifier goes after the first word: timestamp(3) with time zone
		return first + mod + strings.TrimPrefix(strings.Join(words, " "), first), true
	}
	return strings.Join(words, " ") + mod, true
}
