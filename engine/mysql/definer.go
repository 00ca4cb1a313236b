package mysql

import (
	"fmt"
	"strconv"
	"strings"
)

// The load account has no right to name another account as the definer of
// a view, trigger, routine or event (that takes SET USER or SUPER, with
// which it could run code as anyone), so the DEFINER clauses of a dump are
// taken out before it runs them: the load account becomes the definer, and
// after the load coffer makes a locked account that may use only the
// database the definer instead (see adoptObjects). A clause the splitter
// misses is harmless: the server refuses it and the load fails.

// stripDefiner returns stmt without the DEFINER clause of its head, when
// it is a CREATE or ALTER statement whose head has one, as mariadb-dump
// writes them:
//
//	/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`u`@`h` SQL SECURITY DEFINER */ /*!50001 VIEW …
//	/*!50003 CREATE*/ /*!50017 DEFINER=`u`@`h`*/ /*!50003 TRIGGER …
//	CREATE DEFINER=`u`@`h` PROCEDURE …
//	/*!50106 CREATE*/ /*!50117 DEFINER=`u`@`h`*/ /*!50106 EVENT …
//
// Only the head is read, up to the first word that is not CREATE, ALTER,
// OR REPLACE, ALGORITHM=…, DEFINER=… or SQL SECURITY …; the rest is left
// as it is.
func stripDefiner(stmt []byte) []byte {
	for i, first := 0, true; ; first = false {
		i = skipHead(stmt, i)
		w, j := headWord(stmt, i)
		switch {
		case first && !asciiEqualFold(w, "CREATE") && !asciiEqualFold(w, "ALTER"):
			return stmt
		case first, asciiEqualFold(w, "OR"), asciiEqualFold(w, "REPLACE"):
		case asciiEqualFold(w, "ALGORITHM"):
			if j = skipHead(stmt, j); j >= len(stmt) || stmt[j] != '=' {
				return stmt
			}
			_, j = headWord(stmt, skipHead(stmt, j+1))
		case asciiEqualFold(w, "SQL"):
			w, j = headWord(stmt, skipHead(stmt, j))
			if !asciiEqualFold(w, "SECURITY") {
				return stmt
			}
			_, j = headWord(stmt, skipHead(stmt, j))
		case asciiEqualFold(w, "DEFINER"):
			k := skipHead(stmt, j)
			if k >= len(stmt) || stmt[k] != '=' {
				return stmt
			}
			end, ok := userSpec(stmt, skipHead(stmt, k+1))
			if !ok {
				return stmt
			}
			out := append(append(append(make([]byte, 0, len(stmt)), stmt[:i]...), ' '), stmt[end:]...)
			return stripDefiner(out) // a second clause would be refused anyway
		default:
			return stmt
		}
		if j == i {
			return stmt
		}
		i = j
	}
}

// skipHead passes over spaces, comments and the markers of versioned
// comments (/*!50013 and */), from i.
func skipHead(s []byte, i int) int {
	for i < len(s) {
		switch {
		case isSpace(s[i]):
			i++
		case hasAt(s, i, "/*!") || hasAt(s, i, "/*M!"):
			i += 3
			if s[i-1] != '!' {
				i++
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
		case hasAt(s, i, "*/"):
			i += 2
		case hasAt(s, i, "/*"):
			end := indexAt(s, i+2, "*/")
			if end < 0 {
				return len(s)
			}
			i = end + 2
		case lineComment(s, i):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		default:
			return i
		}
	}
	return i
}

// headWord is the word of letters at i and where it ends.
func headWord(s []byte, i int) ([]byte, int) {
	j := i
	for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] == '_') {
		j++
	}
	return s[i:j], j
}

// userSpec reads an account at i: `user`@`host`, 'user'@'host', user@host,
// user, CURRENT_USER or CURRENT_USER(), and returns where it ends.
func userSpec(s []byte, i int) (int, bool) {
	j, ok := userPart(s, i, "_$.")
	if !ok {
		return 0, false
	}
	if w, _ := headWord(s, i); asciiEqualFold(s[i:j], "CURRENT_USER") && len(w) == j-i {
		k := skipHead(s, j)
		if k < len(s) && s[k] == '(' {
			if k = skipHead(s, k+1); k < len(s) && s[k] == ')' {
				return k + 1, true
			}
			return 0, false
		}
		return j, true
	}
	if j < len(s) && s[j] == '@' {
		return userPart(s, j+1, "_$.%:-")
	}
	return j, true
}

// userPart reads a quoted name or a bare one of letters, digits and
// extra, at i.
func userPart(s []byte, i int, extra string) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	if q := s[i]; q == '`' || q == '\'' || q == '"' {
		for j := i + 1; j < len(s); j++ {
			switch {
			case s[j] == '\\' && q != '`':
				j++
			case s[j] == q && j+1 < len(s) && s[j+1] == q:
				j++
			case s[j] == q:
				return j + 1, true
			}
		}
		return 0, false
	}
	j := i
	for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] >= 0x80 || containsByte(extra, s[j])) {
		j++
	}
	return j, j > i
}

func containsByte(s string, c byte) bool {
	for i := range len(s) {
		if s[i] == c {
			return true
		}
	}
	return false
}

func hasAt(s []byte, i int, p string) bool {
	return len(s)-i >= len(p) && string(s[i:i+len(p)]) == p
}

func indexAt(s []byte, i int, p string) int {
	for j := i; j+len(p) <= len(s); j++ {
		if string(s[j:j+len(p)]) == p {
			return j
		}
	}
	return -1
}

// dumpWords begin the statements that mariadb-dump and mysqldump write:
// a load as the limited account runs no other kind. Dynamic SQL
// (PREPARE, EXECUTE, EXECUTE IMMEDIATE), CALL, compound statements (BEGIN
// NOT ATOMIC, IF, WHILE…) and SET STATEMENT … FOR would run SQL that no
// check of the statement's text can see, e.g. a CREATE TABLE … DATA
// DIRECTORY built with CONCAT.
var dumpWords = map[string]bool{"SET": true, "DROP": true, "CREATE": true, "ALTER": true,
	"INSERT": true, "REPLACE": true, "LOCK": true, "UNLOCK": true}

// accountWords, after one of dumpWords, make a statement about accounts
// (SET PASSWORD, SET ROLE, SET DEFAULT ROLE, ALTER USER, CREATE USER,
// DROP ROLE…), which no dump of one database holds.
var accountWords = map[string]bool{"PASSWORD": true, "ROLE": true, "DEFAULT": true, "USER": true}

// notDumpStatement names what stmt is when it is not a statement a dump
// tool writes ("" when it is one, or only comments).
func notDumpStatement(stmt []byte) string {
	i := skipHead(stmt, 0)
	if i >= len(stmt) {
		return ""
	}
	w, j := headWord(stmt, i)
	word := strings.ToUpper(string(w))
	w2, k := headWord(stmt, skipHead(stmt, j))
	second := strings.ToUpper(string(w2))
	if second == "OR" { // CREATE OR REPLACE USER
		if w3, k3 := headWord(stmt, skipHead(stmt, k)); asciiEqualFold(w3, "REPLACE") {
			w4, _ := headWord(stmt, skipHead(stmt, k3))
			second = strings.ToUpper(string(w4))
		}
	}
	switch {
	case word == "SET" && second == "STATEMENT":
		return "SET STATEMENT … FOR"
	case dumpWords[word] && accountWords[second]:
		// Any account may set its own password: the load account
		// would then be the snapshot author's to log in as.
		return word + " " + second
	case dumpWords[word]:
		return ""
	case word == "":
		return fmt.Sprintf("a statement beginning %q", string(stmt[i:min(len(stmt), i+12)]))
	}
	return word
}

// lineComment reports whether a comment to the end of the line starts
// at i: "#", or "--" followed by a space or a control character, as the
// server reads it.
func lineComment(s []byte, i int) bool {
	return s[i] == '#' || hasAt(s, i, "--") && i+2 < len(s) && s[i+2] <= ' '
}

// commentVersion is the target server as versioned comments see it.
type commentVersion struct {
	num     int // e.g. 101119 for MariaDB 10.11.19, 80035 for MySQL 8.0.35
	mariadb bool
}

// sandboxLine is the first line of a mariadb-dump dump, for no server.
const sandboxLine = "/*M!999999\\- enable the sandbox mode */"

// skippedComment returns a versioned comment of stmt that the server reads
// as a plain comment ("" when there is none): one for a later version
// than the server's, or, on MariaDB, for MySQL 5.7 and later (50700 to
// 99999, without M), or on MySQL a MariaDB one (/*M!), or one with a
// version of an unusual length. Coffer's
// checks read a versioned comment's content as code, so a statement with
// such a comment could be classified by words the server never sees
// ("/*!99999 SET */ EXECUTE …"): a limited load refuses it. Dump tools
// write none, but for mariadb-dump's sandbox line.
func skippedComment(stmt []byte, v commentVersion) string {
	for i := 0; i < len(stmt); {
		switch c := stmt[i]; {
		case c == '\'' || c == '"' || c == '`':
			end, ok := userPart(stmt, i, "")
			if !ok {
				return ""
			}
			i = end
		case hasAt(stmt, i, sandboxLine):
			i += len(sandboxLine)
		case hasAt(stmt, i, "/*!") || hasAt(stmt, i, "/*M!"):
			m := stmt[i+2] == 'M'
			j := i + 3
			if m {
				j++
			}
			k := j
			for k < len(stmt) && stmt[k] >= '0' && stmt[k] <= '9' {
				k++
			}
			if k > j {
				n, _ := strconv.Atoi(string(stmt[j:k]))
				want := 5
				if m {
					want = 6
				}
				if k-j != want || n > v.num || (!m && v.mariadb && n >= 50700 && n <= 99999) || (m && !v.mariadb) {
					return string(stmt[i:k])
				}
			}
			i = k
		case hasAt(stmt, i, "/*"):
			end := indexAt(stmt, i+2, "*/")
			if end < 0 {
				return ""
			}
			i = end + 2
		case lineComment(stmt, i):
			for i < len(stmt) && stmt[i] != '\n' {
				i++
			}
		default:
			i++
		}
	}
	return ""
}

// directoryClause is "DATA DIRECTORY" or "INDEX DIRECTORY" when stmt, a
// CREATE or ALTER statement, places a table's files in a directory of its
// choosing: the server would create them there, outside its data
// directory, with no privilege but the database's. A load refuses it.
func directoryClause(stmt []byte) string {
	if w, _ := headWord(stmt, skipHead(stmt, 0)); !asciiEqualFold(w, "CREATE") && !asciiEqualFold(w, "ALTER") {
		return ""
	}
	var prev []byte
	for i := 0; i < len(stmt); {
		if j := skipHead(stmt, i); j > i {
			i = j
			continue
		}
		switch c := stmt[i]; {
		case c == '\'' || c == '"' || c == '`':
			end, ok := userPart(stmt, i, "")
			if !ok {
				return ""
			}
			i, prev = end, nil
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			w, j := headWord(stmt, i)
			if asciiEqualFold(w, "DIRECTORY") && (asciiEqualFold(prev, "DATA") || asciiEqualFold(prev, "INDEX")) {
				return strings.ToUpper(string(prev)) + " DIRECTORY"
			}
			i, prev = j, w
		default:
			i, prev = i+1, nil
		}
	}
	return ""
}

// unqualifyTrigger takes the database name db out of the head of a
// CREATE TRIGGER statement: `db`.name and ON `db`.table become name and
// ON table. mariadb-dump writes a trigger's statement as it was typed,
// and one typed CREATE TRIGGER shop.t … ON shop.orders would otherwise
// be created in database shop, whatever database the snapshot is loaded
// into (with --clean, in the very database being replaced). Other names
// are left as they are; the server then refuses them.
func unqualifyTrigger(stmt []byte, db string) []byte {
	i, seen := 0, false
	for !seen {
		i = skipHead(stmt, i)
		w, j := headWord(stmt, i)
		switch {
		case len(w) == 0:
			return stmt
		case asciiEqualFold(w, "TRIGGER"):
			seen = true
		case asciiEqualFold(w, "DEFINER"):
			if k := skipHead(stmt, j); k < len(stmt) && stmt[k] == '=' {
				if j, _ = userSpec(stmt, skipHead(stmt, k+1)); j == 0 {
					return stmt
				}
			}
		case !asciiEqualFold(w, "CREATE") && !asciiEqualFold(w, "OR") && !asciiEqualFold(w, "REPLACE"):
			return stmt
		}
		i = j
	}
	out := stmt
	for _, want := range [][]string{nil, {"BEFORE", "AFTER"}, {"INSERT", "UPDATE", "DELETE"}, {"ON"}, nil} {
		i = skipHead(out, i)
		if want == nil { // a name, perhaps db.name
			if w, j := headWord(out, i); asciiEqualFold(w, "IF") {
				for _, k := range []string{"NOT", "EXISTS"} {
					if w, j = headWord(out, skipHead(out, j)); !asciiEqualFold(w, k) {
						return stmt
					}
				}
				i = skipHead(out, j)
			}
			end, ok := userPart(out, i, "_$")
			if !ok {
				return stmt
			}
			if k := skipHead(out, end); k < len(out) && out[k] == '.' && identValue(out[i:end]) == db {
				out = append(append(append([]byte(nil), out[:i]...), ' '), out[skipHead(out, k+1):]...)
				end, ok = userPart(out, i+1, "_$")
				if !ok {
					return stmt
				}
			}
			i = end
			continue
		}
		w, j := headWord(out, i)
		found := false
		for _, k := range want {
			found = found || asciiEqualFold(w, k)
		}
		if !found {
			return stmt
		}
		i = j
	}
	return out
}

// identValue is the name an identifier spells: `a“b` is a`b.
func identValue(b []byte) string {
	if len(b) >= 2 && (b[0] == '`' || b[0] == '"') && b[len(b)-1] == b[0] {
		q := string(b[:1])
		return strings.ReplaceAll(string(b[1:len(b)-1]), q+q, q)
	}
	return string(b)
}
