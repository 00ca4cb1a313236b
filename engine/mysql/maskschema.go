package mysql

import (
	"fmt"
	"strings"
)

// createTable is what a masked load reads of a dump's CREATE TABLE: the
// table's name, its columns in order, their declared types, and the
// columns a single-column primary or unique key makes unique.
type createTable struct {
	name   string
	cols   []string
	types  map[string]string
	unique map[string]bool
	// generated columns, whose values the server computes
	generated []string
}

// parseCreateTable reads mariadb-dump's CREATE TABLE `t` ( … ) …. What it
// does not understand is refused: the server's own column list is compared
// with what it read before any row is loaded, so a misreading can only
// refuse a dump, never mask the wrong column.
func parseCreateTable(stmt []byte) (*createTable, error) {
	i := skipHead(stmt, 0)
	words := []string{"CREATE", "TABLE"}
	for _, w := range words {
		got, j := headWord(stmt, i)
		if !asciiEqualFold(got, w) {
			return nil, fmt.Errorf("not a CREATE TABLE")
		}
		i = skipSpaces(stmt, j)
	}
	if w, j := headWord(stmt, i); asciiEqualFold(w, "IF") {
		for _, w := range []string{"NOT", "EXISTS"} {
			got, k := headWord(stmt, skipSpaces(stmt, j))
			if !asciiEqualFold(got, w) {
				return nil, fmt.Errorf("CREATE TABLE IF without NOT EXISTS")
			}
			j = k
		}
		i = skipSpaces(stmt, j)
	}
	name, rest, ok := ident(stmt[i:])
	if !ok {
		return nil, fmt.Errorf("CREATE TABLE without a backquoted name")
	}
	rest = []byte(strings.TrimLeft(string(rest), " \t\r\n"))
	if len(rest) == 0 || rest[0] != '(' {
		return nil, fmt.Errorf("CREATE TABLE %s without a column list", quoteIdent(name))
	}
	items, end, err := tableItems(rest[1:])
	if err != nil {
		return nil, fmt.Errorf("CREATE TABLE %s: %w", quoteIdent(name), err)
	}
	if w := tailWord(rest[1+end:]); w != "" {
		return nil, fmt.Errorf("CREATE TABLE %s: %s after the column list, which fills the table from the statement itself: mariadb-dump never writes it", quoteIdent(name), w)
	}
	t := &createTable{name: name, types: map[string]string{}, unique: map[string]bool{}}
	seen := map[string]bool{}
	for _, it := range items {
		it = []byte(strings.TrimSpace(string(it)))
		if len(it) > 0 && it[0] == '`' {
			col, tail, ok := ident(it)
			if !ok || seen[strings.ToLower(col)] {
				return nil, fmt.Errorf("CREATE TABLE %s: a column name that is not one backquoted name, or twice", quoteIdent(name))
			}
			seen[strings.ToLower(col)] = true
			if generated(tail) {
				t.generated = append(t.generated, col)
			}
			t.cols = append(t.cols, col)
			typ, _, _ := strings.Cut(strings.TrimSpace(string(tail)), " ")
			t.types[col] = strings.ToLower(typ)
			continue
		}
		if col, ok := uniqueKey(it); ok {
			t.unique[col] = true
		}
	}
	if len(t.cols) == 0 {
		return nil, fmt.Errorf("CREATE TABLE %s declares no column", quoteIdent(name))
	}
	return t, nil
}

func skipSpaces(s []byte, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// tableItems splits the body of CREATE TABLE (after its '(') at the commas
// outside quotes and parentheses, up to its ')'. Comments in it are
// refused: mariadb-dump writes none there.
func tableItems(b []byte) ([][]byte, int, error) {
	var items [][]byte
	depth, start := 0, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\'', '"', '`':
			j, ok := quoteEnd(b, i)
			if !ok {
				return nil, 0, fmt.Errorf("an unterminated quote")
			}
			i = j
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return append(items, b[start:i]), i + 1, nil
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, b[start:i])
				start = i + 1
			}
		case '#', '/', '-':
			if c == '#' || i+1 < len(b) && (c == '/' && b[i+1] == '*' || c == '-' && b[i+1] == '-') {
				return nil, 0, fmt.Errorf("a comment in the column list, which mariadb-dump never writes")
			}
		}
	}
	return nil, 0, fmt.Errorf("no end to the column list")
}

// words are the words of b outside quotes, upper-cased, and "(" for each
// opening parenthesis.
func words(b []byte) []string {
	var out []string
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\'', c == '"', c == '`':
			j, ok := quoteEnd(b, i)
			if !ok {
				return append(out, "'")
			}
			i = j
		case c == '(':
			out = append(out, "(")
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			w, j := headWord(b, i)
			out = append(out, strings.ToUpper(string(w)))
			i = j - 1
		}
	}
	return out
}

// generated reports whether a column definition (after its name) makes a
// generated column: GENERATED ALWAYS AS (…) or AS (…).
func generated(def []byte) bool {
	w := words(def)
	for i, x := range w {
		if x == "GENERATED" || x == "AS" && i+1 < len(w) && w[i+1] == "(" {
			return true
		}
	}
	return false
}

// tailWord is the first word of what follows a CREATE TABLE's column list
// that makes it more than a definition: a query (SELECT, VALUES, TABLE,
// WITH) whose rows would fill the table, or LIKE.
func tailWord(tail []byte) string {
	w := words(tail)
	for i, x := range w {
		switch x {
		case "SELECT", "TABLE", "WITH", "LIKE", "IGNORE", "REPLACE", "'":
			return x
		case "VALUES": // but PARTITION … VALUES LESS THAN / VALUES IN
			if i+1 >= len(w) || w[i+1] != "LESS" && w[i+1] != "IN" {
				return x
			}
		}
	}
	return ""
}

// quoteEnd is the index of the quote that closes the one at i.
func quoteEnd(b []byte, i int) (int, bool) {
	q := b[i]
	for j := i + 1; j < len(b); j++ {
		switch {
		case b[j] == '\\' && q != '`':
			j++
		case b[j] == q && j+1 < len(b) && b[j+1] == q:
			j++
		case b[j] == q:
			return j, true
		}
	}
	return 0, false
}

// uniqueKey reads PRIMARY KEY (`c`) or UNIQUE KEY `n` (`c`) of one column.
func uniqueKey(it []byte) (string, bool) {
	w, i := headWord(it, 0)
	switch {
	case asciiEqualFold(w, "PRIMARY"):
		if w2, j := headWord(it, skipSpaces(it, i)); asciiEqualFold(w2, "KEY") {
			i = j
		} else {
			return "", false
		}
	case asciiEqualFold(w, "UNIQUE"):
		if w2, j := headWord(it, skipSpaces(it, i)); asciiEqualFold(w2, "KEY") || asciiEqualFold(w2, "INDEX") {
			i = j
		}
		i = skipSpaces(it, i)
		if i < len(it) && it[i] == '`' {
			_, rest, ok := ident(it[i:])
			if !ok {
				return "", false
			}
			i = len(it) - len(rest)
		}
	default:
		return "", false
	}
	i = skipSpaces(it, i)
	if i >= len(it) || it[i] != '(' {
		return "", false
	}
	col, rest, ok := ident(it[i+1:])
	if !ok || len(rest) == 0 || rest[0] != ')' {
		return "", false
	}
	return col, true
}
