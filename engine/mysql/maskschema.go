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
	items, err := tableItems(rest[1:])
	if err != nil {
		return nil, fmt.Errorf("CREATE TABLE %s: %w", quoteIdent(name), err)
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
func tableItems(b []byte) ([][]byte, error) {
	var items [][]byte
	depth, start := 0, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\'', '"', '`':
			j, ok := quoteEnd(b, i)
			if !ok {
				return nil, fmt.Errorf("an unterminated quote")
			}
			i = j
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return append(items, b[start:i]), nil
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, b[start:i])
				start = i + 1
			}
		case '#', '/', '-':
			if c == '#' || i+1 < len(b) && (c == '/' && b[i+1] == '*' || c == '-' && b[i+1] == '-') {
				return nil, fmt.Errorf("a comment in the column list, which mariadb-dump never writes")
			}
		}
	}
	return nil, fmt.Errorf("no end to the column list")
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
