package mysql

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestHostileVersionedComments (found by a red-team review): coffer's
// checks read a versioned comment's content as code. The server reads a comment whose version is
// above its own (/*!110000 on 10.11), or in MySQL's range 50700–99999
// without M, as a comment. So coffer classifies a statement by a word the
// server never sees, and misses a word the server does see. A limited load
// refuses a comment the server would skip, and ends "--" comments as the
// server does: no file appears outside the data directory.
func TestHostileVersionedComments(t *testing.T) {
	db := rootDB(t)
	for _, tc := range []struct{ name, stmts string }{
		{"execute immediate behind /*!50700 SET */", "/*!50700 SET */ EXECUTE IMMEDIATE 'CREATE TABLE d (a INT) ENGINE=MyISAM DATA DIRECTORY=''@@D@@'' INDEX DIRECTORY=''@@D@@'''"},
		{"execute immediate behind /*!110000 SET */", "/*!110000 SET */ EXECUTE IMMEDIATE 'CREATE TABLE d (a INT) ENGINE=MyISAM DATA DIRECTORY=''@@D@@'''"},
		{"DATA /*!50700 x */ DIRECTORY", "CREATE TABLE d (a INT) ENGINE=MyISAM DATA /*!50700 x */ DIRECTORY='@@D@@'"},
		{"DATA /*!999999 x */ DIRECTORY", "CREATE TABLE d (a INT) ENGINE=MyISAM DATA /*!999999 x */ DIRECTORY='@@D@@'"},
		// the server ends "--" + any control character as a comment; skipHead knows only "-- ", "--\t", "--\n"
		{"DATA --\\v x DIRECTORY", "CREATE TABLE d (a INT) ENGINE=MyISAM DATA --\v x\nDIRECTORY='@@D@@'"},
		{"DATA --\\x01 x DIRECTORY", "CREATE TABLE d (a INT) ENGINE=MyISAM DATA --\x01 x\nDIRECTORY='@@D@@'"},
		{"prepare/execute behind /*!50700 SET */", "/*!50700 SET */ PREPARE s FROM CONCAT('CREATE TABLE d (a INT) ENGINE=MyISAM DATA ', 'DIRECTORY=''@@D@@''');\n/*!50700 SET */ EXECUTE s"},
	} {
		t.Run(tc.name, func(t *testing.T) { hostileDirLoad3(t, db, tc.stmts) })
	}
	noLeftLoadAccounts(t, db)
}

// TestHostileQuotingModes (found by a red-team review): the splitter and
// directoryClause always read a backslash in a quoted string as an
// escape. A dump may SET sql_mode='NO_BACKSLASH_ESCAPES' first (a SET, so
// allowed); the server then ends 'a\' at its second quote, and a DATA
// DIRECTORY that coffer reads as part of a string is code to the server.
// After every SET, a limited load reads the session's sql_mode and client
// character set back and refuses such modes: no file appears.
func TestHostileQuotingModes(t *testing.T) {
	db := rootDB(t)
	for _, tc := range []struct{ name, stmts string }{
		{"NO_BACKSLASH_ESCAPES", "SET sql_mode='NO_BACKSLASH_ESCAPES';\nCREATE TABLE d (a INT COMMENT 'a\\') ENGINE=MyISAM DATA DIRECTORY='@@D@@' # '\n"},
		{"ANSI_QUOTES", "SET sql_mode='ANSI_QUOTES';\nCREATE TABLE d (\"a\\\" INT) ENGINE=MyISAM DATA DIRECTORY='@@D@@' # \"\n"},
		// gbk: 0xbf 0x5c is one character, so the backslash escapes nothing
		{"SET NAMES gbk", "SET NAMES gbk;\nCREATE TABLE d (a INT COMMENT '\xbf\\') ENGINE=MyISAM DATA DIRECTORY='@@D@@' # '\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { hostileDirLoad3(t, db, tc.stmts) })
	}
	noLeftLoadAccounts(t, db)
}

// hostileDirLoad3 restores a dump holding stmts as the limited account
// (dirLoad) and fails if the load made files outside the data directory,
// or succeeded.
func hostileDirLoad3(t *testing.T, db *sql.DB, stmts string) {
	t.Helper()
	files, err := dirLoad(t, db, stmts)
	if len(files) > 0 {
		t.Errorf("load (err=%v): the load account made files outside the data directory: %v", err, files)
	} else if err == nil {
		t.Errorf("load succeeded without making files?")
	} else {
		t.Logf("held: %v", err)
	}
}

// dirLoad restores a dump holding stmts, with @@D@@ standing for a fresh
// directory outside the server's data directory, as the limited account,
// and returns the load's error and the files that appeared there.
func dirLoad(t *testing.T, db *sql.DB, stmts string) ([]string, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "coffer-dirload-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	dst := newName(t, db, "dirload")
	dump := "CREATE TABLE t1 (a INT);\n" + strings.ReplaceAll(stmts, "@@D@@", dir) + ";\n" + dumpEnd
	_, err = restoreDump(t, dst, "shop", dump, TargetOptions{})
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, werr error) error {
		if p != dir {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// TestHostileOneStatementPerExec (held): with multiStatements off, as
// the load's connection is, the server refuses a second statement in one
// Exec and runs neither.
func TestHostileOneStatementPerExec(t *testing.T) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", server
	cfg.InterpolateParams, cfg.MultiStatements = false, false
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET @a=1; SET @b=2", "SET @a=1; SET @b=2;", "SET @a=1;/*!50700 x*/ SET @b=2", "SET @a=1 /*!; SET @b=2 */"} {
		_, err := conn.ExecContext(context.Background(), q)
		var a, b sql.NullInt64
		conn.QueryRowContext(context.Background(), "SELECT @a, @b").Scan(&a, &b)
		if b.Valid {
			t.Errorf("%q: the second statement ran (err=%v)", q, err)
		}
		t.Logf("%q: err=%v a=%v", q, err, a)
		conn.ExecContext(context.Background(), "SET @a=NULL, @b=NULL")
	}
}
