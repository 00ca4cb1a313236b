package postgres

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// This file is the lexer shared by the parsers of globals.go, acl.go and
// createdb.go. They read SQL that a backup host wrote, so the lexer
// follows PostgreSQL's own rules (scan.l) for what ends a statement and
// what a quoted identifier or a string literal holds, and marks every
// name PostgreSQL would not store as it reads it (too long, not UTF-8,
// a NUL): the parsers refuse those, so that a name can never stand for
// another one.

// maxIdentLen is NAMEDATALEN-1: PostgreSQL truncates a longer identifier,
// which would let a long name in a snapshot stand for an existing role.
const maxIdentLen = 63

type tokKind uint8

const (
	tEOF    tokKind = iota
	tWord           // unquoted identifier or keyword, ASCII lower-cased
	tQuoted         // "quoted identifier", its name
	tString         // 'string literal' or E'…', its value
	tDollar         // $tag$ … $tag$, its value (no parser accepts one)
	tNumber         // unsigned decimal integer
	tSym            // one character of punctuation: ; , . ( ) = * [ ] …
	tMeta           // a psql meta-command: a backslash to the end of the line
)

// token is one lexical element; bad says why it cannot be used as a name
// or value (the parsers refuse it), and is empty for a usable token.
type token struct {
	kind tokKind
	text string
	line int
	bad  string
}

// lexer splits SQL text into tokens. stdStrings is
// standard_conforming_strings: when it is off, backslashes are escapes in
// every string literal.
type lexer struct {
	src        string
	pos, line  int
	stdStrings bool
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, stdStrings: true} }

// errLex is an error that makes the rest of the text unreadable (an
// unterminated quote or comment).
var errLex = errors.New("unterminated")

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// next returns the next token, tEOF at the end, or an error naming the
// line of an unterminated quoted identifier, literal or comment.
func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	if l.pos >= len(l.src) {
		return token{kind: tEOF, line: l.line}, nil
	}
	start, line := l.pos, l.line
	c := l.src[l.pos]
	switch {
	case c == '"':
		return l.quoted(line)
	case c == '\'':
		return l.str(line, !l.stdStrings)
	case (c == 'e' || c == 'E') && l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'':
		l.pos++
		return l.str(line, true)
	case c == '$' && l.dollarTag() != "":
		return l.dollar(line)
	case c == '\\':
		end := strings.IndexByte(l.src[l.pos:], '\n')
		if end < 0 {
			end = len(l.src) - l.pos
		}
		cmd := l.src[l.pos+1 : l.pos+end]
		l.pos += end
		name, _, _ := strings.Cut(strings.TrimLeft(cmd, " \t"), " ")
		name, _, _ = strings.Cut(name, "\t")
		return token{kind: tMeta, text: name, line: line}, nil
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentCont(l.src[l.pos]) {
			l.pos++
		}
		return l.name(tWord, asciiLower(l.src[start:l.pos]), line), nil
	case c >= '0' && c <= '9':
		for l.pos < len(l.src) && l.src[l.pos] >= '0' && l.src[l.pos] <= '9' {
			l.pos++
		}
		return token{kind: tNumber, text: l.src[start:l.pos], line: line}, nil
	}
	_, n := utf8.DecodeRuneInString(l.src[l.pos:])
	l.pos += n
	return token{kind: tSym, text: l.src[start:l.pos], line: line}, nil
}

// asciiLower lower-cases the ASCII letters of s, as PostgreSQL folds an
// unquoted identifier in a multibyte encoding; other bytes stay as they
// are (strings.ToLower would turn invalid UTF-8 into valid U+FFFD).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// skipSpace skips white space, -- comments and (nested) /* */ comments.
func (l *lexer) skipSpace() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case isSpace(c):
			if c == '\n' {
				l.line++
			}
			l.pos++
		case strings.HasPrefix(l.src[l.pos:], "--"):
			end := strings.IndexByte(l.src[l.pos:], '\n')
			if end < 0 {
				l.pos = len(l.src)
			} else {
				l.pos += end
			}
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			line, depth := l.line, 0
			for {
				switch {
				case l.pos >= len(l.src):
					return fmt.Errorf("line %d: %w comment", line, errLex)
				case strings.HasPrefix(l.src[l.pos:], "/*"):
					depth++
					l.pos += 2
				case strings.HasPrefix(l.src[l.pos:], "*/"):
					depth--
					l.pos += 2
				default:
					if l.src[l.pos] == '\n' {
						l.line++
					}
					l.pos++
				}
				if depth == 0 {
					break
				}
			}
		default:
			return nil
		}
	}
	return nil
}

// name checks a name the way PostgreSQL would store it.
func (l *lexer) name(kind tokKind, s string, line int) token {
	t := token{kind: kind, text: s, line: line}
	switch {
	case s == "":
		t.bad = "an empty quoted identifier"
	case len(s) > maxIdentLen:
		t.bad = fmt.Sprintf("a name longer than %d bytes, which PostgreSQL would cut short", maxIdentLen)
	default:
		t.bad = badText(s)
	}
	return t
}

// badText says why s cannot be a name or value: not UTF-8, or a NUL.
func badText(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "text that is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "a NUL character"
	}
	return ""
}

func (l *lexer) quoted(line int) (token, error) {
	var b strings.Builder
	for l.pos++; ; l.pos++ {
		if l.pos >= len(l.src) {
			return token{}, fmt.Errorf("line %d: %w quoted identifier", line, errLex)
		}
		c := l.src[l.pos]
		if c == '"' {
			if l.pos+1 < len(l.src) && l.src[l.pos+1] == '"' {
				l.pos++
			} else {
				l.pos++
				return l.name(tQuoted, b.String(), line), nil
			}
		}
		if c == '\n' {
			l.line++
		}
		b.WriteByte(c)
	}
}

// str reads a string literal from its opening quote; escapes is true for
// E'…' literals (and all literals with standard_conforming_strings off).
func (l *lexer) str(line int, escapes bool) (token, error) {
	var b strings.Builder
	bad := ""
	for l.pos++; ; {
		if l.pos >= len(l.src) {
			return token{}, fmt.Errorf("line %d: %w string literal", line, errLex)
		}
		c := l.src[l.pos]
		switch {
		case c == '\'' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'':
			b.WriteByte('\'')
			l.pos += 2
		case c == '\'':
			l.pos++
			if bad == "" {
				bad = badText(b.String())
			}
			return token{kind: tString, text: b.String(), line: line, bad: bad}, nil
		case c == '\\' && escapes:
			if why := l.escape(&b); why != "" && bad == "" {
				bad = why
			}
		default:
			if c == '\n' {
				l.line++
			}
			b.WriteByte(c)
			l.pos++
		}
	}
}

// escape decodes one backslash escape of an E'…' literal at l.pos.
func (l *lexer) escape(b *strings.Builder) (bad string) {
	l.pos++ // the backslash
	if l.pos >= len(l.src) {
		return ""
	}
	c := l.src[l.pos]
	simple := map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
	digits := func(max int, ok func(byte) bool) string {
		i := l.pos
		for i < len(l.src) && i-l.pos < max && ok(l.src[i]) {
			i++
		}
		d := l.src[l.pos:i]
		l.pos = i
		return d
	}
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	switch {
	case simple[c] != 0:
		b.WriteByte(simple[c])
		l.pos++
	case c >= '0' && c <= '7':
		v, _ := strconv.ParseUint(digits(3, func(c byte) bool { return c >= '0' && c <= '7' }), 8, 16)
		b.WriteByte(byte(v))
	case c == 'x' && l.pos+1 < len(l.src) && isHex(l.src[l.pos+1]):
		l.pos++
		v, _ := strconv.ParseUint(digits(2, isHex), 16, 8)
		b.WriteByte(byte(v))
	case c == 'u' || c == 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		l.pos++
		d := digits(n, isHex)
		v, _ := strconv.ParseUint(d, 16, 32)
		if len(d) != n || !utf8.ValidRune(rune(v)) || v == 0 {
			return "an invalid Unicode escape"
		}
		b.WriteRune(rune(v))
	default:
		if c == '\n' {
			l.line++
		}
		b.WriteByte(c)
		l.pos++
	}
	return ""
}

// dollarTag returns the $tag$ that starts at l.pos, or "".
func (l *lexer) dollarTag() string {
	i := l.pos + 1
	if i < len(l.src) && (isIdentStart(l.src[i]) && l.src[i] < 0x80) {
		for i < len(l.src) && isIdentCont(l.src[i]) && l.src[i] != '$' {
			i++
		}
	}
	if i < len(l.src) && l.src[i] == '$' {
		return l.src[l.pos : i+1]
	}
	return ""
}

func (l *lexer) dollar(line int) (token, error) {
	tag := l.dollarTag()
	l.pos += len(tag)
	end := strings.Index(l.src[l.pos:], tag)
	if end < 0 {
		return token{}, fmt.Errorf("line %d: %w dollar-quoted string", line, errLex)
	}
	s := l.src[l.pos : l.pos+end]
	l.line += strings.Count(s, "\n")
	l.pos += end + len(tag)
	return token{kind: tDollar, text: s, line: line, bad: "a dollar-quoted string"}, nil
}

// tokenize splits all of src into tokens, ending with tEOF.
func tokenize(src string) ([]token, error) {
	l := newLexer(src)
	var out []token
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		if t.kind == tEOF {
			return out, nil
		}
	}
}

// quoteIdent quotes a name as an SQL identifier.
func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// quoteLiteral quotes s as an SQL string literal that means s whatever
// standard_conforming_strings is: with a backslash in s, as E'…' with the
// backslashes doubled; else as a plain '…' literal. Single quotes are
// doubled in both.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(s, `\`, `\\`) + "'"
	}
	return "'" + s + "'"
}

// display renders a name or value for a message read on a terminal:
// quoted, with control characters and escape sequences escaped, and
// shortened to about 60 characters.
func display(s string) string {
	if utf8.RuneCountInString(s) > 60 {
		r := []rune(s)
		s = string(r[:57]) + "…"
	}
	return strconv.QuoteToGraphic(s)
}
