package mysql

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"github.com/coffer-backup/coffer/engine"
)

// The parser follows a mariadb-dump / mysqldump stream byte by byte, as the
// bytes pass. It is a state machine, so a statement, a string or an escape
// may span any number of reads. It understands just enough of the client's
// syntax to find statement ends as the mariadb/mysql client does: quotes
// with backslash escapes, backquoted identifiers, -- # and /* */ comments,
// versioned comments (/*!50003 … */, /*M!100000 … */, whose content is
// code) and the DELIMITER command.
//
// It has two uses, and is the one place that knows where a dump's
// statements end:
//
//   - Digests (newParser): it digests the rows of INSERT statements.
//     Everything but `INSERT INTO `t` VALUES (…),(…);` and the name in
//     `CREATE TABLE `t` (` is passed over.
//   - Loading (newSplitter): it hands each statement to a function, with
//     the line it starts on, so that coffer executes it itself. Nothing a
//     dump holds ever reaches the mariadb client, which would run client
//     commands (\!, system, source, tee, pager, connect, use…): the
//     splitter refuses them, naming the line, before anything runs them.
//
// A row's canonical encoding is, for each value in order, a tag byte, an
// 8-byte big-endian length and the value's bytes:
//
//	'N' NULL (length 0)
//	'D' a number, as the dump spells it
//	'S' a string, unescaped
//	'X' binary: a 0x… or x'…' literal, decoded, or a _binary '…' string
//	'B' a bit literal b'…', its digits
//
// The dump of a restored database spells values as the dump of the source
// did, so equal encodings mean equal rows.

type state uint8

const (
	stTop       state = iota // in or between statements, outside quotes and comments
	stDash                   // after '-'
	stDash2                  // after "--"
	stSlash                  // after '/'
	stLine                   // in a -- or # comment
	stBlock                  // in a /* */ comment
	stBlockStar              // in a /* */ comment, after '*'
	stQuote                  // in a quoted string or identifier
	stQuoteEsc               // after a backslash in a quoted string
	stQuoteEnd               // after a quote that may be doubled
	stDelimCmd               // in a DELIMITER command, to the end of its line
	stBlockOpen              // after "/*": a comment, or a versioned comment if '!' follows
	stBlockM                 // after "/*M": a versioned comment if '!' follows
	stVerNum                 // after "/*!": the version digits
	stVerStar                // in a versioned comment, after '*'
	stBackslash              // splitting: after a backslash outside quotes (a client command)
	rRowStart                // rows: before '('
	rValue                   // rows: before a value
	rBare                    // rows: in an unquoted value (NULL, number, 0x…, _binary)
	rStr                     // rows: in a quoted value
	rStrEsc                  // rows: after a backslash in a quoted value
	rStrQuote                // rows: after a quote in a quoted value
	rAfterValue              // rows: before ',' or ')'
	rAfterRow                // rows: before ',' or the delimiter
)

const (
	headMax    = 64 << 10 // bytes of a statement kept to recognise it
	splitHead  = 16       // bytes kept when splitting: enough to see DELIMITER
	commentMax = 32       // bytes of a -- comment kept to recognise the trailer
	trailer    = "-- Dump completed"
)

// DumpError is a dump that could not be followed: malformed or truncated,
// or (when loading) holding what coffer never runs.
type DumpError struct {
	Database  string
	Offset    int64 // bytes into the database's dump
	Line      int   // when loading: the line, from 1
	Reason    string
	Truncated bool // the dump ended early
}

func (e *DumpError) Error() string {
	switch {
	case e.Truncated:
		return fmt.Sprintf("dump of database %q is truncated at byte %d: %s; the dump stopped early and must not be kept", e.Database, e.Offset, e.Reason)
	case e.Line > 0:
		return fmt.Sprintf("dump of database %q, line %d: %s", e.Database, e.Line, e.Reason)
	}
	return fmt.Sprintf("dump of database %q, byte %d: %s", e.Database, e.Offset, e.Reason)
}

type parser struct {
	db  string
	dg  *engine.Digester
	off int64 // of the byte being read
	err error

	line     int  // of the byte being read, from 1
	inVer    bool // in a versioned comment, whose content is code
	ver      int  // the version digits read so far, and how many
	verN     int
	verM     bool // the comment began "/*M!"
	back     int  // bytes before the current one that a replayed byte is at
	sigOff   int64
	stmtLine int // where the statement began

	// splitting (split != nil): the bytes since the last statement's end
	split  func(stmt []byte, line int) error
	buf    []byte
	bufOff int64  // offset of buf[0]
	cur    []byte // the bytes Write is reading, from mark
	mark   int
	pos    int // index in cur of the byte being read

	st        state
	delim     []byte
	k         int  // bytes of delim matched
	inStmt    bool // the statement has begun
	head      []byte
	created   bool // the statement's first '(' has been seen
	quote     byte
	comment   []byte
	completed bool // the last thing seen is the trailer comment

	// rows
	table  string
	row    []byte
	val    []byte
	tag    byte
	hexStr bool // the quoted value is x'…'
	intro  string
	ncols  int

	// onRow, when set, is given each row (its table's name as the dump
	// spells it, its canonical encoding) besides the digest, and only
	// the _binary introducer is accepted: a masked load reads rows so.
	onRow    func(table string, row []byte)
	rowTable string // the INSERT's table, unqualified
	rowCols  []byte // the INSERT's column list, without its parentheses
	inserts  int    // INSERT statements ended
}

func newParser(db string, dg *engine.Digester) *parser {
	return &parser{db: db, dg: dg, delim: []byte{';'}, line: 1}
}

// newSplitter returns a parser that calls fn with each statement of the
// dump of database db: its text without the delimiter, leading spaces and
// comments, and the line it begins on. fn may keep stmt. An error from fn
// stops the parser and is returned by Write.
func newSplitter(db string, fn func(stmt []byte, line int) error) *parser {
	return &parser{db: db, delim: []byte{';'}, line: 1, split: fn}
}

func (p *parser) fail(reason string, args ...any) error {
	if p.err == nil {
		e := &DumpError{Database: p.db, Offset: p.off, Reason: fmt.Sprintf(reason, args...)}
		if p.split != nil {
			e.Line = p.line
		}
		p.err = e
	}
	return p.err
}

// failAt is fail for a statement that began on line.
func (p *parser) failAt(line int, reason string, args ...any) {
	if p.err == nil {
		p.err = &DumpError{Database: p.db, Offset: p.off, Line: line, Reason: fmt.Sprintf(reason, args...)}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isBare(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.' || c == '+' || c == '-'
}

// Write feeds the next bytes of the dump.
func (p *parser) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.split != nil {
		return p.writeSplit(b)
	}
	for i := 0; i < len(b); {
		// Fast path: the bulk of a dump is string values.
		if p.st == rStr {
			j := quoteOrEscape(b[i:])
			if j < 0 {
				p.val = append(p.val, b[i:]...)
				p.off += int64(len(b) - i)
				break
			}
			p.val = append(p.val, b[i:i+j]...)
			p.off += int64(j)
			i += j
		} else if p.st == rBare { // numbers and hex blobs
			j := i
			for j < len(b) && isBare(b[j]) {
				j++
			}
			p.val = append(p.val, b[i:j]...)
			p.off += int64(j - i)
			if i = j; i == len(b) {
				break
			}
		}
		p.step(b[i])
		if p.err != nil {
			return i, p.err
		}
		if b[i] == '\n' {
			p.line++
		}
		p.off++
		i++
	}
	return len(b), nil
}

// quoteOrEscape is the index of the first quote or backslash in b, or -1.
func quoteOrEscape(b []byte) int {
	for i, c := range b {
		if c == '\'' || c == '\\' {
			return i
		}
	}
	return -1
}

// step consumes one byte.
func (p *parser) step(c byte) {
	switch p.st {
	case stTop:
		p.top(c)
	case stDash:
		p.st = stTop
		if c == '-' {
			p.st = stDash2
			return
		}
		p.replay(1, '-')
		p.step(c)
	case stDash2:
		p.st = stTop
		if c <= ' ' { // "-- " starts a comment; "--x" does not
			p.startComment("--")
			p.lineComment(c)
			return
		}
		p.replay(2, '-')
		p.replay(1, '-')
		p.step(c)
	case stSlash:
		p.st = stTop
		if c == '*' {
			p.st = stBlockOpen
			return
		}
		p.replay(1, '/')
		p.step(c)
	case stBlockOpen, stBlockM:
		switch {
		case c == '!':
			p.verM = p.st == stBlockM
			p.ver, p.verN, p.st = 0, 0, stVerNum
		case c == 'M' && p.st == stBlockOpen:
			p.st = stBlockM
		case c == '*':
			p.st = stBlockStar
		default:
			p.st = stBlock
		}
	case stVerNum:
		if c >= '0' && c <= '9' && p.verN < 6 {
			p.ver = p.ver*10 + int(c-'0')
			p.verN++
			return
		}
		p.verEnd(c)
	case stVerStar:
		p.st = stTop
		if c == '/' {
			p.inVer = false
			p.keep(' ')
			return
		}
		p.replay(1, '*')
		p.step(c)
	case stBackslash:
		p.fail("\\%c is a command of the mariadb client (\\! runs a shell command), not SQL: coffer never runs client commands, and mariadb-dump never writes them; the snapshot was not made by mariadb-dump alone", c)
	case stLine:
		p.lineComment(c)
	case stBlock:
		if c == '*' {
			p.st = stBlockStar
		}
	case stBlockStar:
		switch c {
		case '/':
			p.st = stTop
			p.keep(' ')
		case '*':
		default:
			p.st = stBlock
		}
	case stQuote:
		p.keep(c)
		if c == p.quote {
			p.st = stQuoteEnd
		} else if c == '\\' && p.quote != '`' {
			p.st = stQuoteEsc
		}
	case stQuoteEsc:
		p.keep(c)
		p.st = stQuote
	case stQuoteEnd:
		if c == p.quote { // doubled: still in the quote
			p.keep(c)
			p.st = stQuote
			return
		}
		p.st = stTop
		p.step(c)
	case stDelimCmd:
		if c != '\n' {
			if len(p.head) >= headMax {
				p.fail("DELIMITER command too long")
			}
			p.head = append(p.head, c)
			return
		}
		d := bytes.TrimSpace(p.head[len("DELIMITER"):])
		if len(d) == 0 || len(d) > 16 {
			p.fail("DELIMITER without a delimiter of 1 to 16 bytes")
			return
		}
		p.delim = append(p.delim[:0], d...)
		p.st = stTop
		p.reset()
		if p.split != nil { // the command is the client's: nothing to send
			p.drop()
		}
	default:
		p.rows(c)
	}
}

// top handles a byte outside quotes and comments.
func (p *parser) top(c byte) {
	if p.k == 0 {
		switch c {
		case '-':
			p.st = stDash
			return
		case '/':
			if !bytes.Equal(p.delim, []byte("//")) {
				p.st = stSlash
				return
			}
		case '#':
			p.startComment("#")
			return
		case '\'', '"', '`':
			p.begin()
			p.keep(c)
			p.quote, p.st = c, stQuote
			return
		case '(':
			if p.paren() {
				return
			}
		case '*':
			if p.inVer {
				p.st = stVerStar
				return
			}
		case '\\':
			if p.split != nil {
				p.begin()
				p.st = stBackslash
				return
			}
		}
	}
	p.plain(c)
}

// replay handles a byte held back by a state that looked ahead, back
// bytes before the current one.
func (p *parser) replay(back int, c byte) {
	p.back = back
	p.plain(c)
	p.back = 0
}

// verEnd ends the version of a versioned comment at c, the byte after it.
// A comment for version 99.99.99 (mariadb-dump's "/*M!999999\- enable the
// sandbox mode */") is for no server: it is a comment. Any other's content
// is code.
func (p *parser) verEnd(c byte) {
	if p.ver >= 999999 {
		p.st = stBlock
		p.step(c)
		return
	}
	back := 3 + p.verN // "/*!" and the digits
	if p.verM {
		back++
	}
	p.back = back
	p.begin()
	p.back = 0
	p.keep(' ')
	p.inVer, p.st = true, stTop
	p.step(c)
}

// plain handles an ordinary byte of a statement: it may end the statement.
func (p *parser) plain(c byte) {
	if c == p.delim[p.k] {
		p.k++
		if p.k == len(p.delim) {
			p.end()
		} else {
			p.begin()
		}
		return
	}
	if p.k > 0 { // a partial delimiter was ordinary text
		for _, d := range p.delim[:p.k] {
			p.keep(d)
		}
		p.k = 0
		if c == p.delim[0] {
			p.k = 1
			return
		}
	}
	if !p.inStmt && isSpace(c) {
		return
	}
	p.begin()
	p.keep(c)
	if len(p.head) == len("DELIMITER ") && (c == ' ' || c == '\t') && asciiEqualFold(p.head[:9], "DELIMITER") {
		p.st = stDelimCmd
	}
}

func (p *parser) begin() {
	if !p.inStmt {
		p.inStmt, p.completed = true, false
		p.sigOff, p.stmtLine = p.off-int64(p.back), p.line
	}
}

func (p *parser) keep(c byte) {
	if p.inStmt && len(p.head) < p.headMax() {
		p.head = append(p.head, c)
	}
}

func (p *parser) headMax() int {
	if p.split != nil {
		return splitHead
	}
	return headMax
}

func (p *parser) reset() {
	p.inStmt, p.created, p.k, p.inVer = false, false, 0, false
	p.head = p.head[:0]
}

// end is the end of a statement that was not rows.
func (p *parser) end() {
	if p.split != nil {
		p.emit1()
		return
	}
	h := bytes.TrimSpace(p.head)
	if hasPrefixFold(h, "INSERT") || hasPrefixFold(h, "REPLACE") {
		p.fail("cannot follow this statement: %.60q…; coffer reads only mariadb-dump's and mysqldump's INSERT INTO `t` VALUES (…)", h)
		return
	}
	p.reset()
}

func (p *parser) startComment(start string) {
	p.comment = append(p.comment[:0], start...)
	p.st = stLine
}

func (p *parser) lineComment(c byte) {
	if c == '\n' {
		p.endComment()
		p.st = stTop
		if p.inStmt {
			p.keep(' ')
		}
		return
	}
	if len(p.comment) < commentMax {
		p.comment = append(p.comment, c)
	}
}

func (p *parser) endComment() {
	if !p.inStmt && bytes.HasPrefix(p.comment, []byte(trailer)) {
		p.completed = true
	}
	p.comment = p.comment[:0]
}

// paren looks at a statement's head when a '(' comes outside quotes: it
// notes a CREATE TABLE, and starts reading rows after INSERT INTO … VALUES.
func (p *parser) paren() bool {
	if !p.inStmt {
		return false
	}
	h := bytes.TrimSpace(p.head)
	if p.split != nil {
		return false
	}
	if !p.created {
		p.created = true
		if rest, ok := cutPrefixFold(h, "CREATE TABLE "); ok {
			rest, _ = cutPrefixFold(bytes.TrimSpace(rest), "IF NOT EXISTS ")
			if name, tail, ok := ident(bytes.TrimSpace(rest)); ok && len(bytes.TrimSpace(tail)) == 0 {
				p.dg.Table(p.db + "." + name)
			}
			return false
		}
	}
	rest, ok := cutPrefixFold(h, "INSERT INTO ")
	if !ok {
		return false
	}
	name, tail, ok := ident(bytes.TrimSpace(rest))
	if !ok {
		return false
	}
	tail = bytes.TrimSpace(tail)
	p.rowCols = p.rowCols[:0]
	if len(tail) > 0 && tail[0] == '(' { // a column list
		i := bytes.LastIndexByte(tail, ')')
		if i < 0 {
			return false
		}
		p.rowCols = append(p.rowCols, tail[1:i]...)
		tail = bytes.TrimSpace(tail[i+1:])
	}
	if !asciiEqualFold(tail, "VALUES") {
		return false
	}
	p.table, p.rowTable = p.db+"."+name, name
	p.dg.Table(p.table)
	p.startRow()
	return true
}

func (p *parser) startRow() {
	p.row, p.ncols, p.st = p.row[:0], 0, rValue
}

// rows handles a byte of an INSERT statement's VALUES list.
func (p *parser) rows(c byte) {
	switch p.st {
	case rRowStart:
		switch {
		case isSpace(c):
		case c == '(':
			p.startRow()
		default:
			p.fail("INSERT INTO %s: want '(', got %q", p.table, c)
		}
	case rValue:
		switch {
		case isSpace(c):
		case c == '\'':
			p.tag, p.hexStr = 'S', false
			if p.intro == "_binary" {
				p.tag = 'X'
			}
			p.val, p.st = p.val[:0], rStr
		case c == ')' && p.ncols == 0 && p.intro == "":
			p.endRow()
		case isBare(c):
			p.val, p.st = append(p.val[:0], c), rBare
		default:
			p.fail("INSERT INTO %s: unexpected %q where a value should be", p.table, c)
		}
	case rBare:
		if isBare(c) {
			p.val = append(p.val, c)
			return
		}
		p.bare(c)
	case rStr:
		switch c {
		case '\\':
			p.st = rStrEsc
		case '\'':
			p.st = rStrQuote
		default:
			p.val = append(p.val, c)
		}
	case rStrEsc:
		if c == '%' || c == '_' { // kept escaped by the server too
			p.val = append(p.val, '\\')
		}
		p.val = append(p.val, unescape(c))
		p.st = rStr
	case rStrQuote:
		if c == '\'' {
			p.val = append(p.val, '\'')
			p.st = rStr
			return
		}
		if p.hexStr {
			p.emitHex(p.val)
		} else {
			p.emit(p.tag, p.val)
		}
		p.st = rAfterValue
		p.rows(c)
	case rAfterValue:
		switch {
		case isSpace(c):
		case c == ',':
			p.st = rValue
		case c == ')':
			p.endRow()
		default:
			p.fail("INSERT INTO %s: want ',' or ')' after a value, got %q", p.table, c)
		}
	case rAfterRow:
		switch {
		case p.k == 0 && isSpace(c):
		case p.k == 0 && c == ',':
			p.st = rRowStart
		case c == p.delim[p.k]:
			p.k++
			if p.k == len(p.delim) {
				p.st = stTop
				p.reset()
				p.inserts++
			}
		default:
			p.fail("INSERT INTO %s: want ',' or %q after a row, got %q", p.table, p.delim, c)
		}
	}
}

// bare ends an unquoted value at c, the byte after it.
func (p *parser) bare(c byte) {
	tok := p.val
	switch {
	case c == '\'' && len(tok) == 1 && (tok[0] == 'x' || tok[0] == 'X'):
		p.tag, p.hexStr, p.val, p.st = 'X', true, p.val[:0], rStr
		return
	case c == '\'' && len(tok) == 1 && (tok[0] == 'b' || tok[0] == 'B'):
		p.tag, p.hexStr, p.val, p.st = 'B', false, p.val[:0], rStr
		return
	case tok[0] == '_' && p.intro == "": // a character set introducer
		p.intro = string(tok)
		if p.onRow != nil && p.intro != "_binary" {
			p.fail("INSERT INTO %s: the introducer %.20q, which mariadb-dump never writes (only _binary): a masked load refuses it", p.table, p.intro)
			return
		}
		p.st = rValue
		p.rows(c)
		return
	case asciiEqualFold(tok, "NULL"):
		p.emit('N', nil)
	case len(tok) > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X'):
		p.emitHex(tok[2:])
	case isNumber(tok):
		p.emit('D', tok)
	default:
		p.fail("INSERT INTO %s: unexpected value %.40q", p.table, tok)
		return
	}
	p.st = rAfterValue
	p.rows(c)
}

func isNumber(tok []byte) bool {
	digits := false
	for i, c := range tok {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == 'e' || c == 'E':
		case (c == '-' || c == '+') && (i == 0 || tok[i-1] == 'e' || tok[i-1] == 'E'):
		default:
			return false
		}
	}
	return digits
}

func unescape(c byte) byte {
	switch c {
	case '0':
		return 0
	case 'b':
		return '\b'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'Z':
		return 26
	}
	return c
}

func (p *parser) emit(tag byte, v []byte) {
	p.row = append(p.row, tag)
	p.row = binary.BigEndian.AppendUint64(p.row, uint64(len(v)))
	p.row = append(p.row, v...)
	p.ncols++
	p.intro = ""
}

func (p *parser) emitHex(h []byte) {
	if len(h)%2 == 1 {
		h = append([]byte{'0'}, h...)
	}
	p.row = append(p.row, 'X')
	p.row = binary.BigEndian.AppendUint64(p.row, uint64(len(h)/2))
	n := len(p.row)
	p.row = slices.Grow(p.row, len(h)/2)[:n+len(h)/2]
	if _, err := hex.Decode(p.row[n:], h); err != nil {
		p.fail("INSERT INTO %s: bad hex literal: %v", p.table, err)
	}
	p.ncols++
	p.intro = ""
}

func (p *parser) endRow() {
	if p.intro != "" {
		p.fail("INSERT INTO %s: introducer %s without a value", p.table, p.intro)
		return
	}
	p.dg.Add(p.table, p.row)
	if p.onRow != nil {
		p.onRow(p.rowTable, p.row)
	}
	p.st = rAfterRow
}

// Close reports whether the dump ended where a complete dump ends: between
// statements, after mariadb-dump's "-- Dump completed" trailer.
func (p *parser) Close() error {
	if p.err != nil {
		return p.err
	}
	if p.st == stLine {
		p.endComment()
		p.st = stTop
	}
	if p.st == stBackslash {
		p.step(' ')
		return p.err
	}
	var why string
	switch {
	case p.st >= rRowStart:
		why = "it ends inside INSERT INTO " + p.table
	case p.st != stTop || p.inStmt || p.k > 0:
		why = "it ends inside a statement"
	case !p.completed:
		why = "it lacks the \"" + trailer + "\" trailer"
	default:
		return nil
	}
	p.err = &DumpError{Database: p.db, Offset: p.off, Reason: why, Truncated: true}
	return p.err
}

// ident reads a backquoted identifier.
func ident(b []byte) (name string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '`' {
		return "", nil, false
	}
	var out []byte
	for i := 1; i < len(b); i++ {
		if b[i] != '`' {
			out = append(out, b[i])
			continue
		}
		if i+1 < len(b) && b[i+1] == '`' {
			out = append(out, '`')
			i++
			continue
		}
		return string(out), b[i+1:], true
	}
	return "", nil, false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && asciiEqualFold(b[:len(s)], s)
}

func cutPrefixFold(b []byte, s string) ([]byte, bool) {
	if !hasPrefixFold(b, s) {
		return b, false
	}
	return b[len(s):], true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// digestReader passes a database's dump through unchanged and digests its
// rows on the way. At the end of the dump it reports a truncated dump as
// an error.
type digestReader struct {
	r    io.Reader
	p    *parser
	n    int64
	err  error
	done func(size int64) // called once the dump ended complete
}

func (d *digestReader) Read(b []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(b)
	d.n += int64(n)
	if _, perr := d.p.Write(b[:n]); perr != nil {
		d.err = perr
		return n, perr
	}
	if err == io.EOF {
		if perr := d.p.Close(); perr != nil {
			d.err = perr
			return n, perr
		}
		if d.done != nil {
			d.done(d.n)
			d.done = nil
		}
	} else if err != nil {
		d.err = fmt.Errorf("dump of database %q: %w", d.p.db, err)
		return n, d.err
	}
	return n, err
}

// writeSplit is Write when splitting. It passes over runs of bytes that
// change nothing (the inside of strings, most of an INSERT) at once.
func (p *parser) writeSplit(b []byte) (int, error) {
	p.cur, p.mark = b, 0
	for i := 0; i < len(b); {
		if n := p.run(b[i:]); n > 0 {
			p.line += bytes.Count(b[i:i+n], newline)
			p.off += int64(n)
			i += n
			continue
		}
		c := b[i]
		p.pos = i
		p.step(c)
		if p.err != nil {
			p.cur = nil
			return i, p.err
		}
		if c == '\n' {
			p.line++
		}
		p.off++
		i++
	}
	if p.inStmt || p.st != stTop && p.st != stLine && p.st != stBlock && p.st != stBlockStar {
		p.buf = append(p.buf, b[p.mark:]...)
	} else { // between statements: spaces and comments need not be kept
		p.buf = p.buf[:0]
		p.bufOff = p.off
	}
	p.cur = nil
	return len(b), nil
}

var newline = []byte{'\n'}

// run is how many of b's first bytes change nothing but the offset and the
// line: the splitter passes over them without looking at each.
func (p *parser) run(b []byte) int {
	switch p.st {
	case stQuote:
		for i, c := range b {
			if c == p.quote || c == '\\' && p.quote != '`' {
				return i
			}
		}
		return len(b)
	case stTop:
		if !p.inStmt || p.k != 0 || len(p.head) < splitHead {
			return 0
		}
		d := p.delim[0]
		for i, c := range b {
			switch c {
			case d, '-', '/', '#', '\'', '"', '`', '\\', '*':
				return i
			}
		}
		return len(b)
	case stLine:
		if len(p.comment) < commentMax { // it may be the trailer: look
			return 0
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return i
		}
		return len(b)
	case stBlock:
		if i := bytes.IndexByte(b, '*'); i >= 0 {
			return i
		}
		return len(b)
	}
	return 0
}

// emit1 ends a statement when splitting: the byte being read is the last
// of its delimiter.
func (p *parser) emit1() {
	p.buf = append(p.buf, p.cur[p.mark:p.pos+1]...)
	p.mark = p.pos + 1
	began, line := p.inStmt, p.stmtLine
	start, end := p.sigOff-p.bufOff, int64(len(p.buf)-len(p.delim))
	var stmt []byte
	if began && start >= 0 && start < end {
		stmt = bytes.TrimRight(p.buf[start:end], " \t\r\n")
		// stmt keeps the buffer: the next statement gets a new one.
		p.buf = make([]byte, 0, min(cap(p.buf), 4<<20))
	} else {
		p.buf = p.buf[:0]
	}
	p.bufOff = p.off + 1
	p.reset()
	if len(stmt) == 0 {
		return
	}
	if w := clientCommand(stmt); w != "" {
		p.failAt(line, "%.60q is a command of the mariadb client (%s), not SQL: coffer never runs client commands, and mariadb-dump never writes them; the snapshot was not made by mariadb-dump alone", stmt, w)
		return
	}
	if err := p.split(stmt, line); err != nil && p.err == nil {
		p.err = err
	}
}

// drop forgets what the splitter holds, up to the byte being read.
func (p *parser) drop() {
	p.buf = p.buf[:0]
	p.mark = p.pos + 1
	p.bufOff = p.off + 1
}

// clientCommands are the mariadb client's commands that a line may begin
// with (but DELIMITER, which the splitter follows). The client runs them
// itself: system and \! run a shell command, source and \. read a file,
// tee writes one, connect and use switch servers or databases.
var clientCommands = []string{"?", "charset", "clear", "connect", "edit", "ego", "exit", "go", "help",
	"nopager", "notee", "nowarning", "pager", "print", "prompt", "quit", "rehash", "sandbox", "source",
	"status", "system", "tee", "use", "warnings"}

// clientCommand is the client command stmt begins with, if any.
func clientCommand(stmt []byte) string {
	if stmt[0] == '?' {
		return "?"
	}
	n := 0
	for n < len(stmt) && (stmt[n] >= 'a' && stmt[n] <= 'z' || stmt[n] >= 'A' && stmt[n] <= 'Z') {
		n++
	}
	if n == 0 || n > 10 || n < len(stmt) && !isSpace(stmt[n]) {
		return ""
	}
	for _, c := range clientCommands {
		if asciiEqualFold(stmt[:n], c) {
			return c
		}
	}
	return ""
}
