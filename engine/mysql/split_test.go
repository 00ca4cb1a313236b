package mysql

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

type splitStmt struct {
	Text string
	Line int
}

// splitAll splits data fed in pieces of size step (all at once when 0).
func splitAll(data []byte, step int) ([]splitStmt, error) {
	var out []splitStmt
	p := newSplitter("db", func(s []byte, line int) error {
		out = append(out, splitStmt{string(s), line})
		return nil
	})
	if step <= 0 {
		step = len(data) + 1
	}
	for i := 0; i < len(data); i += step {
		if _, err := p.Write(data[i:min(i+step, len(data))]); err != nil {
			return out, err
		}
	}
	return out, p.Close()
}

func TestSplitDump(t *testing.T) {
	const end = "\n-- Dump completed\n"
	in := "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n" +
		"/*!40101 SET NAMES utf8mb4 */;\n" +
		"CREATE TABLE `t` (\n  `a` varchar(9) DEFAULT ';'\n);\n" +
		"INSERT INTO `t` VALUES ('x;\\'y'),(\"-- \\\";\"),(`q;`);\n" +
		"# a comment; with a semicolon\n" +
		"/* INSERT INTO `t` VALUES (3); */ SELECT 1 /* ; */ -- ;\n;\n" +
		"DELIMITER ;;\n" +
		"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr AFTER INSERT ON t FOR EACH ROW BEGIN INSERT INTO lg VALUES (1); END */;;\n" +
		"DELIMITER ;\n" +
		"SELECT 'a\nb';SELECT 2;\n" +
		"SELECT 3--x\n;" + end
	want := []splitStmt{
		{"/*!40101 SET NAMES utf8mb4 */", 3},
		{"CREATE TABLE `t` (\n  `a` varchar(9) DEFAULT ';'\n)", 4},
		{"INSERT INTO `t` VALUES ('x;\\'y'),(\"-- \\\";\"),(`q;`)", 7},
		{"SELECT 1 /* ; */ -- ;", 9},
		{"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr AFTER INSERT ON t FOR EACH ROW BEGIN INSERT INTO lg VALUES (1); END */", 12},
		{"SELECT 'a\nb'", 14},
		{"SELECT 2", 15},
		{"SELECT 3--x", 16},
	}
	for _, step := range []int{0, 1, 2, 3, 5, 64} {
		got, err := splitAll([]byte(in), step)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d:\n got %+v\nwant %+v", step, got, want)
		}
	}
}

// TestSplitSample splits a real mariadb-dump dump: every statement the
// digest parser sees is one the splitter hands over, whatever the reads.
func TestSplitSample(t *testing.T) {
	data, err := os.ReadFile("testdata/sample.sql")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := splitAll(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	var inserts int
	for _, s := range whole {
		if strings.HasPrefix(s.Text, "INSERT INTO") {
			inserts++
		}
		if strings.HasPrefix(s.Text, "--") || strings.HasSuffix(s.Text, ";") || strings.Contains(s.Text, "sandbox") {
			t.Errorf("statement %q keeps a comment or its delimiter", s.Text)
		}
	}
	if len(whole) < 20 || inserts != 1 {
		t.Fatalf("%d statements, %d inserts", len(whole), inserts)
	}
	for _, step := range []int{1, 7, 100} {
		if got, err := splitAll(data, step); err != nil || !reflect.DeepEqual(got, whole) {
			t.Fatalf("in reads of %d bytes: %v", step, err)
		}
	}
}

func TestSplitRefusesClientCommands(t *testing.T) {
	const end = "\n-- Dump completed\n"
	for _, tc := range []struct {
		name, in, want string
		line           int
	}{
		{"shell", "SELECT 1;\n\\! touch /tmp/canary\nSELECT 2;" + end, `\!`, 2},
		{"shell inside a statement", "SELECT 1;\nSELECT 2 \\! touch /tmp/canary\n;" + end, `\!`, 2},
		{"shell in a versioned comment", "/*!40000 \\! id */;" + end, `\!`, 1},
		{"system", "SELECT 1;\n\nsystem touch /tmp/canary\nSELECT 2;" + end, "(system)", 3},
		{"SYSTEM", "SYSTEM touch /tmp/canary;" + end, "(system)", 1},
		{"source", "source /etc/passwd;" + end, "(source)", 1},
		{"tee", "tee /tmp/x;" + end, "(tee)", 1},
		{"pager", "pager sh -c id;" + end, "(pager)", 1},
		{"connect", "connect other 10.0.0.1;" + end, "(connect)", 1},
		{"use", "-- x\nuse otherdb;" + end, "(use)", 2},
		{"charset", "\\C latin1\n;" + end, `\C`, 1},
		{"use at the end", "use otherdb", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1} {
				var ran []string
				p := newSplitter("shop", func(s []byte, line int) error {
					ran = append(ran, string(s))
					return nil
				})
				_, err := p.Write([]byte(tc.in))
				if err == nil {
					err = p.Close()
				}
				if err == nil {
					t.Fatalf("step %d: accepted; statements %q", step, ran)
				}
				if tc.line == 0 {
					return
				}
				var de *DumpError
				if !errors.As(err, &de) || de.Line != tc.line || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("line %d", tc.line)) || !strings.Contains(err.Error(), `"shop"`) {
					t.Fatalf("step %d: %v", step, err)
				}
				for _, s := range ran {
					if strings.Contains(s, "canary") || strings.Contains(s, "other") {
						t.Fatalf("step %d: %q was handed over", step, s)
					}
				}
			}
		})
	}
	// Words that only begin like a command, and backslashes in strings,
	// identifiers and comments, are SQL.
	ok := "USER_TABLES;\nSELECT 'a\\\\b', `x\\y`;\n/* \\! */ -- \\!\n# \\!\nSELECT 1;\n" +
		"/*M!999999\\- enable the sandbox mode */\nuser_x;" + end
	if got, err := splitAll([]byte(ok), 0); err != nil || len(got) != 4 {
		t.Fatalf("%v %+v", err, got)
	}
}

// FuzzSplitter checks that no input panics and that how the input is cut
// into reads changes nothing.
func FuzzSplitter(f *testing.F) {
	if data, err := os.ReadFile("testdata/sample.sql"); err == nil {
		f.Add(data, uint16(100))
	}
	f.Add([]byte("/*!50003 CREATE*/ /*!50017 DEFINER=`a`@`b`*/ /*!50003 TRIGGER x */;\nDELIMITER ;;\nSELECT ';';;\n-- Dump completed\n"), uint16(3))
	f.Add([]byte("/*M!100000 SELECT 1 */; /**/ /*M x */ \\! a\n"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		whole, err1 := splitAll(data, 0)
		cut, err2 := splitAll(data, int(step%64)+1)
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(whole, cut) {
			t.Fatalf("whole: %v %+v, in reads: %v %+v", err1, whole, err2, cut)
		}
	})
}

func TestStripDefiner(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 */",
			"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013   SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 */"},
		{"/*!50003 CREATE*/ /*!50017 DEFINER=`ro``ot`@`%`*/ /*!50003 TRIGGER tr", "/*!50003 CREATE*/ /*!50017  */ /*!50003 TRIGGER tr"},
		{"CREATE DEFINER=`root`@`127.0.0.1` FUNCTION `tax`()", "CREATE   FUNCTION `tax`()"},
		{"CREATE OR REPLACE DEFINER = 'a\\'b'@'h' PROCEDURE p()", "CREATE OR REPLACE   PROCEDURE p()"},
		{"/*!50106 CREATE*/ /*!50117 DEFINER=CURRENT_USER ( ) */ /*!50106 EVENT e", "/*!50106 CREATE*/ /*!50117   */ /*!50106 EVENT e"},
		{"ALTER ALGORITHM=MERGE DEFINER=u@localhost SQL SECURITY INVOKER VIEW v", "ALTER ALGORITHM=MERGE   SQL SECURITY INVOKER VIEW v"},
		{"CREATE DEFINER=role1 PROCEDURE p()", "CREATE   PROCEDURE p()"},
		// Not in the head: left as it is.
		{"CREATE PROCEDURE p() SELECT 'DEFINER=`root`@`x`'", "CREATE PROCEDURE p() SELECT 'DEFINER=`root`@`x`'"},
		{"INSERT INTO t VALUES ('CREATE DEFINER=root@x')", "INSERT INTO t VALUES ('CREATE DEFINER=root@x')"},
		{"CREATE TABLE t (DEFINER INT)", "CREATE TABLE t (DEFINER INT)"},
	} {
		if got := string(stripDefiner([]byte(tc.in))); got != tc.want {
			t.Errorf("stripDefiner(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestDirectoryClause(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE TABLE d (a INT) DATA DIRECTORY='/tmp'":                       "DATA DIRECTORY",
		"CREATE TABLE d (a INT) /*!50000 index  /* x */ directory = '/t' */": "INDEX DIRECTORY",
		"alter table d data\ndirectory '/tmp'":                               "DATA DIRECTORY",
		"CREATE TABLE d (a INT) COMMENT 'DATA DIRECTORY'":                    "",
		"CREATE TABLE `data` (`directory` INT)":                              "",
		"INSERT INTO t VALUES (1) -- DATA DIRECTORY":                         "",
		"SELECT 'x' DATA DIRECTORY":                                          "",
	} {
		if got := directoryClause([]byte(in)); got != want {
			t.Errorf("directoryClause(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkSplitter measures the splitter on customer-like extended
// inserts (the data BenchmarkParser digests).
func BenchmarkSplitter(b *testing.B) {
	var buf strings.Builder
	for s := range 200 {
		buf.WriteString("INSERT INTO `customers` VALUES\n")
		for r := range 1000 {
			if r > 0 {
				buf.WriteString(",\n")
			}
			fmt.Fprintf(&buf, "(%d,'Zoë Müller-日本 😀 %d','kunde%d@example.com','+49 30 %d','%d Hauptstraße\\n10115 Berlin',%d.33,'2024-01-01 00:00:00',0x00275C220D0A1A00%x,NULL)", s*1000+r, r, r, r, r, r, r)
		}
		buf.WriteString(";\n")
	}
	buf.WriteString("-- Dump completed\n")
	data := []byte(buf.String())
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		p := newSplitter("db", func([]byte, int) error { return nil })
		for i := 0; i < len(data); i += 32 << 10 {
			if _, err := p.Write(data[i:min(i+32<<10, len(data))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnqualifyTrigger(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER `shop`.log_order AFTER INSERT ON `shop`.`orders` FOR EACH ROW INSERT INTO shop.x VALUES (1) */",
			"/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER  log_order AFTER INSERT ON  `orders` FOR EACH ROW INSERT INTO shop.x VALUES (1) */"},
		{"CREATE DEFINER=`a`@`b` TRIGGER IF NOT EXISTS shop . t BEFORE UPDATE ON shop.o FOR EACH ROW SET NEW.a = 1",
			"CREATE DEFINER=`a`@`b` TRIGGER IF NOT EXISTS  t BEFORE UPDATE ON  o FOR EACH ROW SET NEW.a = 1"},
		{"CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO lg VALUES (1)", "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO lg VALUES (1)"},
		{"CREATE TRIGGER other.tr AFTER INSERT ON other.t FOR EACH ROW DO 1", "CREATE TRIGGER other.tr AFTER INSERT ON other.t FOR EACH ROW DO 1"},
		{"CREATE TRIGGER `sh``op`.tr AFTER DELETE ON `sh``op`.t FOR EACH ROW DO 1", "CREATE TRIGGER `sh``op`.tr AFTER DELETE ON `sh``op`.t FOR EACH ROW DO 1"},
		{"CREATE TABLE shop.t (a INT)", "CREATE TABLE shop.t (a INT)"},
		{"INSERT INTO `shop`.`t` VALUES (1)", "INSERT INTO `shop`.`t` VALUES (1)"},
	} {
		if got := string(unqualifyTrigger([]byte(tc.in), "shop")); got != tc.want {
			t.Errorf("unqualifyTrigger(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
	if got := string(unqualifyTrigger([]byte("CREATE TRIGGER `sh``op`.tr AFTER DELETE ON `sh``op`.t FOR EACH ROW DO 1"), "sh`op")); got != "CREATE TRIGGER  tr AFTER DELETE ON  t FOR EACH ROW DO 1" {
		t.Errorf("quoted: %q", got)
	}
}

// TestDefinerNames: every definer name fits MySQL 8's 32 characters, and
// no database name can be chosen to share another database's definer.
func TestDefinerNames(t *testing.T) {
	long := "shop_" + strings.Repeat("x", 59)
	hashed := definerFor(long).user
	collider := strings.TrimPrefix(hashed, definerPrefix) // a tenant names a database after the hash
	for _, db := range []string{"shop", "sixteen_chars_ab", "seventeen_chars_a", long, collider, "ünïcødé_ünïcødé_ünïcødé", "a`b"} {
		u := definerFor(db).user
		if n := utf8.RuneCountInString(u); n > maxUser {
			t.Errorf("definer of %q is %q, %d characters", db, u, n)
		}
	}
	if definerFor(collider) == definerFor(long) {
		t.Fatalf("database %q shares the definer %q of %q", collider, hashed, long)
	}
	if definerFor("shop").user != "coffer_definer_shop" {
		t.Fatalf("short names stay readable: %q", definerFor("shop").user)
	}
}
