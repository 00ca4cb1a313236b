package mysql

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

const maskTestRules = `version: 1
default: fail
tables:
  customers:
    id: keep
    email: fake email
    city: keep
  leak:
    v: keep
`

const maskTestTable = "CREATE TABLE `customers` (\n  `id` int(11) NOT NULL,\n  `email` varchar(200) DEFAULT NULL,\n  `city` varchar(100) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `email` (`email`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"

func maskTest(t *testing.T, dump string) (string, *maskDB, error) {
	t.Helper()
	rules, err := mask.Parse("rules.yaml", []byte(maskTestRules))
	if err != nil {
		t.Fatal(err)
	}
	m := &Masking{Rules: rules, Masker: mask.NewMasker(mask.Key{14})}
	v := &maskVerify{want: engine.NewDigester(), kept: engine.NewDigester(), dbs: map[string]*maskDB{}}
	var out bytes.Buffer
	d, err := maskDump(m, "shop", strings.NewReader(maskTestTable+dump+"\n-- Dump completed\n"), &out, v)
	if err == nil {
		v.seen.Seal()
		err = d.checkSchema(&v.seen)
	}
	return out.String(), d, err
}

// TestMaskDumpHostile: what a crafted dump might use to carry an original
// value past the mask is refused before anything is written, or masked.
func TestMaskDumpHostile(t *testing.T) {
	const carol = "carol@mail.example.com"
	refused := []struct{ name, dump, why string }{
		{"comment in the values", "INSERT INTO `customers` VALUES (3,'x@y.example.com' /* '" + carol + "' */,'Oslo');", "after a value"},
		{"line comment in the values", "INSERT INTO `customers` VALUES (3,'x@y.example.com' -- '" + carol + "'\n,'Oslo');", "after a value"},
		{"column list", "INSERT INTO `customers` (`id`,`city`,`email`) VALUES (3,'" + carol + "','Oslo');", "column list"},
		{"introducer", "INSERT INTO `customers` VALUES (3,_latin1 '" + carol + "','Oslo');", "introducer"},
		{"double quotes", "INSERT INTO `customers` VALUES (3,\"" + carol + "\",'Oslo');", "unexpected"},
		{"on duplicate key", "INSERT INTO `customers` VALUES (3,'x@y.example.com','Oslo') ON DUPLICATE KEY UPDATE city='" + carol + "';", "want ','"},
		{"insert select", "INSERT INTO `customers` SELECT 3, '" + carol + "', 'Oslo';", "cannot follow"},
		{"replace", "REPLACE INTO `customers` VALUES (3,'" + carol + "','Oslo');", "not a statement a masked load carries"},
		{"update", "UPDATE `customers` SET city = '" + carol + "';", "not a statement a masked load carries"},
		{"create select", "CREATE TABLE `leak` (`v` varchar(100)) SELECT '" + carol + "' AS v;", "SELECT after the column list"},
		{"create select hex", "CREATE TABLE `leak` (`v` varchar(100)) ENGINE=InnoDB AS SELECT 0x6361726f6c AS v;", "SELECT after the column list"},
		{"generated column", "CREATE TABLE `leak` (`v` varchar(100) AS (concat('carol', '@mail.example.com')) VIRTUAL);", "generated"},
		{"two inserts in one statement", "DELIMITER ;;\nINSERT INTO `customers` VALUES (3,'a@b.example.com','Oslo');INSERT INTO `customers` VALUES (4,'" + carol + "','Oslo');;\nDELIMITER ;", "under DELIMITER"},
		{"insert into an unknown table", "INSERT INTO `other` VALUES (3,'" + carol + "');", "did not create"},
		{"too few values", "INSERT INTO `customers` VALUES (3,'" + carol + "');", "2 values, not its 3 columns"},
		{"alter table", "ALTER TABLE `customers` ADD COLUMN `x` int FIRST;", "no other ALTER"},
		{"a query", "SELECT '" + carol + "';", "not a statement a masked load carries"},
		{"an original in a default", "CREATE TABLE `leak` (`v` varchar(100) DEFAULT 'alice@mail.example.com');\nINSERT INTO `customers` VALUES (1,'alice@mail.example.com','Paris');", "holds an original value"},
		{"an original in a setting", "INSERT INTO `customers` VALUES (1,'alice@mail.example.com','Paris');\nSET @x = 'alice@mail.example.com';", "holds an original value"},
		{"a table twice", maskTestTable, "created twice"},
		{"versioned comment", "/*!50000 INSERT INTO `customers` VALUES (3,'" + carol + "','Oslo') */;", "want ','"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := maskTest(t, c.dump)
			if err == nil || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("want an error with %q, got %v", c.why, err)
			}
			if strings.Contains(out, carol) {
				t.Fatalf("the spool holds the original: %s", out)
			}
		})
	}
	masked := []struct{ name, dump string }{
		{"hex literal", "INSERT INTO `customers` VALUES (3,0x6361726f6c406d61696c2e6578616d706c652e636f6d,'Oslo');"},
		{"_binary", "INSERT INTO `customers` VALUES (3,_binary '" + carol + "','Oslo');"},
		{"x literal", "INSERT INTO `customers` VALUES (3,X'6361726f6c406d61696c2e6578616d706c652e636f6d','Oslo');"},
		{"escapes", "INSERT INTO `customers` VALUES (3,'carol\\@mail.example.com','Oslo'),(4,'carol@mail.ex''ample.com','Oslo');"},
		{"a view", "/*!50001 CREATE VIEW `v` AS SELECT '" + carol + "' AS `e` */;\nINSERT INTO `customers` VALUES (3,'" + carol + "','Oslo');"},
		{"a trigger", "DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER `t` BEFORE INSERT ON `customers` FOR EACH ROW SET NEW.city = '" + carol + "' */;;\nDELIMITER ;\nINSERT INTO `customers` VALUES (3,'" + carol + "','Oslo');"},
	}
	for _, c := range masked {
		t.Run(c.name, func(t *testing.T) {
			out, d, err := maskTest(t, c.dump)
			if err != nil {
				t.Fatal(err)
			}
			for _, orig := range []string{carol, "carol@mail.ex'ample.com", "6361726f6c", "carol"} {
				if strings.Contains(out, orig) {
					t.Fatalf("the spool holds %q:\n%s", orig, out)
				}
			}
			if !strings.Contains(out, "INSERT INTO `customers` VALUES (3,") {
				t.Fatalf("the spool lacks the masked row:\n%s", out)
			}
			if strings.Contains(c.name, "view") || strings.Contains(c.name, "trigger") {
				if len(d.notes()) == 0 {
					t.Fatal("no note of what was left out")
				}
			}
		})
	}
}
