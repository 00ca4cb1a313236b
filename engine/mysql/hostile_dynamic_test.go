package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/engine"
)

// TestHostileDynamicSQL (found by a red-team review): DATA/INDEX
// DIRECTORY is refused by reading a statement's text, so a dump that
// builds the CREATE TABLE at run time (EXECUTE IMMEDIATE, PREPARE …
// EXECUTE, a procedure it then CALLs, a compound statement, SET STATEMENT
// … FOR) would get past the check, and the server would let the load
// account write table files in a directory of the snapshot's choosing. A
// load runs only the statements dump tools write: each of these fails,
// naming its line, and no file appears.
func TestHostileDynamicSQL(t *testing.T) {
	db := rootDB(t)
	for _, tc := range []struct{ name, stmts, refused string }{
		{"execute immediate", "EXECUTE IMMEDIATE 'CREATE TABLE d (a INT) ENGINE=MyISAM DATA DIRECTORY=''@@D@@'' INDEX DIRECTORY=''@@D@@'''", "EXECUTE"},
		{"prepare", "PREPARE s FROM CONCAT('CREATE TABLE d (a INT) ENGINE=MyISAM DATA ', 'DIRECTORY=''@@D@@''');\nEXECUTE s", "PREPARE"},
		{"innodb via procedure", "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN SET @s = CONCAT('CREATE TABLE d (a INT) ENGINE=InnoDB DATA ', 'DIRECTORY=''@@D@@'''); PREPARE s FROM @s; EXECUTE s; END ;;\nDELIMITER ;\nCALL p()", "CALL"},
		{"versioned call", "/*!50000 CALL p() */", "CALL"},
		{"compound statement", "DELIMITER ;;\nBEGIN NOT ATOMIC EXECUTE IMMEDIATE CONCAT('CREATE TABLE d (a INT) ENGINE=MyISAM DATA ', 'DIRECTORY=''@@D@@'''); END ;;\nDELIMITER ;\nSELECT 1", "BEGIN"},
		{"set statement", "SET STATEMENT max_statement_time=10 FOR EXECUTE IMMEDIATE 'CREATE TABLE d (a INT) ENGINE=MyISAM DATA DIRECTORY=''@@D@@'''", "SET STATEMENT … FOR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := dirLoad(t, db, tc.stmts)
			if err == nil || !strings.Contains(err.Error(), tc.refused+" is not a statement that a dump tool writes") || !strings.Contains(err.Error(), "--trust-snapshot") {
				t.Errorf("load: %v, want %s refused", err, tc.refused)
			}
			if len(files) > 0 {
				t.Errorf("the load account made files outside the data directory: %v", files)
			}
		})
	}
	noLeftLoadAccounts(t, db)
}

// TestDigestsReadAsReader: the verification dump of a loaded database
// reads it as the reader account (SELECT, SHOW VIEW, EXECUTE on that
// database only), never as the administrator, and gives the digests of
// the rows; Commit drops the account.
func TestDigestsReadAsReader(t *testing.T) {
	ctx := context.Background()
	db := rootDB(t)
	dst := newName(t, db, "digread")
	tg, err := NewTarget(rootDSN(dst), TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dump := "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10));\nINSERT INTO t VALUES (1,'a'),(2,'b');\nCREATE VIEW w AS SELECT id FROM t;\n" + dumpEnd
	if err := tg.Load(ctx, strings.NewReader(dump), engine.Report{Parts: []engine.Part{{Name: "shop.sql", Size: int64(len(dump))}}}); err != nil {
		t.Fatal(err)
	}
	got, err := tg.Digests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Rows != 2 {
		t.Fatalf("digests %+v, want table t with 2 rows", got)
	}
	if tg.reader == nil {
		t.Fatal("Digests made no reader account: it read as the administrator")
	}
	grants, err := engine.QueryStrings(ctx, db, "SHOW GRANTS FOR "+tg.reader.sql())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if strings.Contains(g, "ON *.*") && !strings.Contains(g, "GRANT USAGE ON *.*") || strings.Contains(g, "ALL PRIVILEGES") {
			t.Errorf("the reader account has %s", g)
		}
	}
	if _, err := tg.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	noLeftLoadAccounts(t, db)
}

// TestHostileSystemDatabasePart: a snapshot whose part claims the
// server's own database (mysql.sql, whose swap would replace the grant
// tables) is refused before anything is loaded.
func TestHostileSystemDatabasePart(t *testing.T) {
	for _, name := range []string{"mysql", "MySQL", "sys", "performance_schema", "information_schema"} {
		tg, err := NewTarget(rootDSN(""), TargetOptions{Clean: true})
		if err != nil {
			t.Fatal(err)
		}
		dump := "CREATE TABLE user (a INT);\n" + dumpEnd
		err = tg.Load(context.Background(), strings.NewReader(dump), engine.Report{Parts: []engine.Part{{Name: name + ".sql", Size: int64(len(dump))}}})
		if err == nil || !strings.Contains(err.Error(), "the server's own database") {
			t.Errorf("part %s.sql: %v, want it refused", name, err)
		}
	}
}

// TestHostileAccountStatements: any account may set its own password, so
// a dump that did would make the load account (ALL PRIVILEGES on the
// target database) the snapshot author's to log in as while it loads.
// Statements about accounts are no dump's: each is refused, by its text,
// before the server sees it.
func TestHostileAccountStatements(t *testing.T) {
	db := rootDB(t)
	for _, tc := range []struct{ name, stmts, refused string }{
		{"set password", "SET PASSWORD = PASSWORD('known-to-the-backup-host')", "SET PASSWORD"},
		{"set password behind a versioned comment", "/*!40101 SET */ /* x */ password = 'known'", "SET PASSWORD"},
		{"alter user", "ALTER USER CURRENT_USER() IDENTIFIED BY 'known'", "ALTER USER"},
		{"set role", "SET ROLE coffer_some_role", "SET ROLE"},
		{"set default role", "SET DEFAULT ROLE coffer_some_role FOR CURRENT_USER", "SET DEFAULT"},
		{"create or replace user", "CREATE OR REPLACE USER 'x'@'%' IDENTIFIED BY 'y'", "CREATE USER"},
		{"drop user", "DROP USER IF EXISTS 'root'@'localhost'", "DROP USER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dirLoad(t, db, tc.stmts)
			if err == nil || !strings.Contains(err.Error(), tc.refused+" is not a statement that a dump tool writes") {
				t.Errorf("load: %v, want %s refused", err, tc.refused)
			}
		})
	}
	// A column or table of such a name is data, not an account statement.
	if _, err := dirLoad(t, db, "CREATE TABLE `user` (`password` INT, role INT, `default` INT)"); err != nil {
		t.Errorf("a table named user: %v", err)
	}
	noLeftLoadAccounts(t, db)
}
