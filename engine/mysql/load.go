package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// A statement is one SQL statement of a dump and the line it begins on.
type statement struct {
	text []byte
	line int
}

// execDump splits the dump of database label (as the snapshot names it)
// read from r into statements and executes each, one per Exec, on conn.
// The text goes to the server as it is (no client-side interpolation, no
// multi-statements); with stripDefiners, DEFINER clauses are taken out
// first, so that the connecting account becomes the definer. Splitting
// runs ahead of the server by a few statements.
// check, when set, is called before each statement is executed; its
// error stops the load (a masked load's checks, maskload.go).
func execDump(ctx context.Context, conn *sql.Conn, label string, r io.Reader, stripDefiners bool, check func(context.Context, *sql.Conn, []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stmts := make(chan statement, 16)
	execErr := make(chan error, 1)
	go func() {
		execErr <- execAll(ctx, conn, label, stmts, stripDefiners, check)
		cancel()
	}()
	p := newSplitter(label, func(s []byte, line int) error {
		select {
		case stmts <- statement{s, line}:
			return nil
		case <-ctx.Done():
			return errStopped
		}
	})
	_, err := io.Copy(p, r)
	if err == nil {
		err = p.Close()
	}
	close(stmts)
	eerr := <-execErr
	if eerr != nil {
		return eerr // the statement that failed, not the split it stopped
	}
	if errors.Is(err, errStopped) {
		return ctx.Err()
	}
	return err
}

var errStopped = errors.New("stopped")

func execAll(ctx context.Context, conn *sql.Conn, label string, stmts <-chan statement, stripDefiners bool, check func(context.Context, *sql.Conn, []byte) error) error {
	var v commentVersion
	if stripDefiners || check != nil {
		var err error
		if v, err = readVersion(ctx, conn); err != nil {
			return err
		}
	}
	for s := range stmts {
		text := s.text
		// A masked load (check) chose what to carry by reading versioned
		// comments as code: one the server skips would make it run what
		// coffer did not read, trusted snapshot or not.
		if check != nil && !stripDefiners {
			if c := skippedComment(text, v); c != "" {
				return &StatementError{Database: label, Line: s.line, Statement: string(s.text),
					Err: fmt.Errorf("%s… is a versioned comment this server skips, while coffer would read it as code: a dump tool writes none, and a masked load refuses it", c)}
			}
		}
		if stripDefiners { // a load as the limited account
			refuse := func(format string, args ...any) error {
				return &StatementError{Database: label, Line: s.line, Statement: string(s.text),
					Err: fmt.Errorf(format+"; restore with --trust-snapshot if you trust this snapshot", args...)}
			}
			if c := skippedComment(text, v); c != "" {
				return refuse("%s… is a versioned comment this server skips, while coffer would read it as code: a dump tool writes none", c)
			}
			if w := notDumpStatement(text); w != "" {
				return &StatementError{Database: label, Line: s.line, Statement: string(s.text),
					Err: fmt.Errorf("%s is not a statement that a dump tool writes (dynamic SQL, CALL and compound statements run SQL that coffer cannot check); restore with --trust-snapshot if you trust this snapshot", w)}
			}
			if c := directoryClause(text); c != "" {
				return &StatementError{Database: label, Line: s.line, Statement: string(s.text),
					Err: fmt.Errorf("%s would place a table's files outside the server's data directory; restore with --trust-snapshot if you trust this snapshot", c)}
			}
			text = stripDefiner(text)
		}
		text = unqualifyTrigger(text, label)
		if check != nil {
			if err := check(ctx, conn, text); err != nil {
				return &StatementError{Database: label, Line: s.line, Statement: string(s.text), Err: err}
			}
		}
		if _, err := conn.ExecContext(ctx, string(text)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &StatementError{Database: label, Line: s.line, Statement: string(s.text), Err: err}
		}
		// A masked load (check) writes its own literals: they must be read
		// as coffer writes them, even with TrustSnapshot.
		if (stripDefiners || check != nil) && isSet(text) {
			if why, err := quotingChanged(ctx, conn); err != nil || why != "" {
				if err != nil {
					return &StatementError{Database: label, Line: s.line, Statement: string(s.text), Err: err}
				}
				return &StatementError{Database: label, Line: s.line, Statement: string(s.text),
					Err: fmt.Errorf("%s: the server would then read quotes and escapes unlike coffer, which checks each statement; restore with --trust-snapshot if you trust this snapshot", why)}
			}
		}
	}
	return nil
}

// isSet reports whether stmt is a SET statement.
func isSet(stmt []byte) bool {
	w, _ := headWord(stmt, skipHead(stmt, 0))
	return asciiEqualFold(w, "SET")
}

// safeCharsets are the client character sets in which a backslash or a
// quote byte is always that character: in gbk, big5, sjis or cp932 it
// can be the second byte of another, and escape nothing.
var safeCharsets = map[string]bool{"utf8mb4": true, "utf8mb3": true, "utf8": true, "latin1": true, "binary": true, "ascii": true}

// quotingChanged says, after a SET, whether the session now reads string
// literals unlike coffer's splitter and checks: without backslash
// escapes, with double quotes as identifier quotes, or in a character set
// where a quote or a backslash can be part of another character. The
// values are read back from the server, since a dump can compute them.
func quotingChanged(ctx context.Context, conn *sql.Conn) (string, error) {
	var mode, cs string
	if err := conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client").Scan(&mode, &cs); err != nil {
		return "", err
	}
	for _, m := range strings.Split(strings.ToUpper(mode), ",") {
		if m == "NO_BACKSLASH_ESCAPES" || m == "ANSI_QUOTES" {
			return "sql_mode " + m, nil
		}
	}
	if !safeCharsets[strings.ToLower(cs)] {
		return "character_set_client " + cs, nil
	}
	return "", nil
}

// readVersion reads the server's version for versioned comments.
func readVersion(ctx context.Context, conn *sql.Conn) (commentVersion, error) {
	var s string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&s); err != nil {
		return commentVersion{}, err
	}
	v := commentVersion{mariadb: strings.Contains(strings.ToLower(s), "mariadb")}
	var a, b, c int
	fmt.Sscanf(s, "%d.%d.%d", &a, &b, &c)
	v.num = a*10000 + b*100 + c
	return v, nil
}

// StatementError is a statement of a dump that the server refused.
type StatementError struct {
	Database  string // as the snapshot names it
	Line      int
	Statement string
	Err       error
}

func (e *StatementError) Error() string {
	msg := fmt.Sprintf("dump of database %q, line %d: %.120q: %v", e.Database, e.Line, e.Statement, e.Err)
	if e.Denied() {
		msg += " (the statement reaches beyond the database it restores, which a restore never allows; if you trust this snapshot, restore it with --trust-snapshot)"
	}
	return msg
}

func (e *StatementError) Unwrap() error { return e.Err }

// Denied reports whether the server refused the statement for want of a
// privilege: the load account may use only its database.
func (e *StatementError) Denied() bool {
	var me *mysql.MySQLError
	if !errors.As(e.Err, &me) {
		return false
	}
	switch me.Number {
	case 1044, // access denied to a database
		1045, // access denied
		1142, // command denied for a table
		1143, // command denied for a column
		1227, // needs SUPER or another global privilege
		1370, // command denied for a routine
		1410: // may not create a user with GRANT
		return true
	}
	return false
}
