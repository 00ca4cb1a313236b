package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/engine"
)

// enc builds a canonical row: pairs of tag and value.
func enc(vals ...string) []byte {
	var b []byte
	for i := 0; i < len(vals); i += 2 {
		b = append(b, vals[i][0])
		b = binary.BigEndian.AppendUint64(b, uint64(len(vals[i+1])))
		b = append(b, vals[i+1]...)
	}
	return b
}

// parseAll feeds data in pieces of size step (all at once when 0).
func parseAll(data []byte, step int) ([]engine.TableDigest, error) {
	dg := engine.NewDigester()
	p := newParser("db", dg)
	if step <= 0 {
		step = len(data) + 1
	}
	for i := 0; i < len(data); i += step {
		if _, err := p.Write(data[i:min(i+step, len(data))]); err != nil {
			return nil, err
		}
	}
	if err := p.Close(); err != nil {
		return nil, err
	}
	return dg.Result(), nil
}

func TestParseSample(t *testing.T) {
	data, err := os.ReadFile("testdata/sample.sql")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseAll(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.NewDigester()
	want.Table("db.audit")
	want.Table("db.empty1")
	want.Add("db.t", enc("D", "1", "S", "it's \\ \"q\" \n 😀", "X", "\x00'\\\"", "X", "\x05", "D", "0.00000015",
		"D", "3.14", "S", "2026-11-23 08:22:14", "S", `{"a":1}`, "D", "2", "S", "b",
		"X", "\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x40"))
	want.Add("db.t", enc("D", "2", "N", "", "N", "", "N", "", "N", "", "N", "", "N", "", "N", "", "D", "4", "N", "", "N", ""))
	if !reflect.DeepEqual(got, want.Result()) {
		t.Fatalf("digests:\n got %+v\nwant %+v", got, want.Result())
	}
	// Any way of cutting the stream into reads gives the same digests.
	for _, step := range []int{1, 2, 3, 7, 64, 1000} {
		if g, err := parseAll(data, step); err != nil || !reflect.DeepEqual(g, got) {
			t.Fatalf("in reads of %d bytes: %v, %+v", step, err, g)
		}
	}
	// Every prefix is a truncated dump, but the one lacking only the
	// final newline.
	for n := range len(data) - 1 {
		_, err := parseAll(data[:n], 0)
		var de *DumpError
		if !errors.As(err, &de) || !de.Truncated || de.Database != "db" {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
}

func TestParseCases(t *testing.T) {
	const end = "\n-- Dump completed\n"
	for _, tc := range []struct {
		name, in string
		rows     map[string][][]byte // nil: an error
	}{
		{"escapes", "INSERT INTO `a` VALUES ('x\\0\\b\\n\\r\\t\\Z\\\\\\'\\%\\_\\q''y');" + end,
			map[string][][]byte{"db.a": {enc("S", "x\x00\b\n\r\t\x1a\\'\\%\\_q'y")}}},
		{"numbers and null", "INSERT INTO `a` VALUES (-1,+2.5,1e-05,NULL,null),(0,0,0,0,0);" + end,
			map[string][][]byte{"db.a": {enc("D", "-1", "D", "+2.5", "D", "1e-05", "N", "", "N", ""), enc("D", "0", "D", "0", "D", "0", "D", "0", "D", "0")}}},
		{"binary forms", "INSERT INTO `a` VALUES (0xABC,x'00ff',b'101',_binary 'q\\0',_binary 0x01,_utf8mb4'é');" + end,
			map[string][][]byte{"db.a": {enc("X", "\x0a\xbc", "X", "\x00\xff", "B", "101", "X", "q\x00", "X", "\x01", "S", "é")}}},
		{"column list and odd name", "INSERT INTO `we``ird` (`a`,`b)`) VALUES (1,2);" + end,
			map[string][][]byte{"db.we`ird": {enc("D", "1", "D", "2")}}},
		{"delimiter block with inserts", "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN INSERT INTO `a` VALUES (1); END ;;\nDELIMITER ;\nINSERT INTO `a` VALUES (2);" + end,
			map[string][][]byte{"db.a": {enc("D", "2")}}},
		{"comments", "-- INSERT INTO `a` VALUES (1);\n# x;\n/* INSERT INTO `a` VALUES (3); */ /*!40000 SET x=1 */;\nINSERT INTO `a` VALUES ('-- not a comment; /* */');" + end,
			map[string][][]byte{"db.a": {enc("S", "-- not a comment; /* */")}}},
		{"create table", "CREATE TABLE `e` (\n  `x` int DEFAULT '(;'\n);\nCREATE TABLE IF NOT EXISTS `f` (x int);" + end,
			map[string][][]byte{"db.e": nil, "db.f": nil}},
		{"quoted semicolons", "SET @a = 'x;y', @b = \"p;\\\"q\", @c = `id;`;" + end, map[string][][]byte{}},
		{"no trailer", "INSERT INTO `a` VALUES (1);\n", nil},
		{"trailer then more", end + "SELECT 1;\n", nil},
		{"unterminated", "INSERT INTO `a` VALUES (1)" + end, nil},
		{"open string", "INSERT INTO `a` VALUES ('abc" + end, nil},
		{"unknown insert form", "INSERT INTO a SELECT 1;" + end, nil},
		{"replace", "REPLACE INTO `a` VALUES (1);" + end, nil},
		{"garbage value", "INSERT INTO `a` VALUES (NOW());" + end, nil},
		{"trailing comma", "INSERT INTO `a` VALUES (1,);" + end, nil},
		{"bad hex", "INSERT INTO `a` VALUES (0xZZ);" + end, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{0, 1} {
				got, err := parseAll([]byte(tc.in), step)
				if tc.rows == nil {
					if err == nil {
						t.Fatalf("parsed without error: %+v", got)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				want := engine.NewDigester()
				for table, rows := range tc.rows {
					want.Table(table)
					for _, r := range rows {
						want.Add(table, r)
					}
				}
				if !reflect.DeepEqual(got, want.Result()) {
					t.Fatalf("step %d:\n got %+v\nwant %+v", step, got, want.Result())
				}
			}
		})
	}
}

func TestDumpErrorNamesDatabase(t *testing.T) {
	p := newParser("shop", engine.NewDigester())
	p.Write([]byte("INSERT INTO `orders` VALUES (1,'a"))
	err := p.Close()
	if err == nil || !strings.Contains(err.Error(), `"shop"`) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "shop.orders") {
		t.Fatalf("error: %v", err)
	}
}

// FuzzParser checks that no input panics and that how the input is cut
// into reads changes nothing.
func FuzzParser(f *testing.F) {
	if data, err := os.ReadFile("testdata/sample.sql"); err == nil {
		f.Add(data, uint16(100))
	}
	f.Add([]byte("INSERT INTO `a` VALUES (1,'x\\'',0x00,_binary 'y',b'1',NULL),(2,'',x'',-1e5);\n-- Dump completed\n"), uint16(3))
	f.Add([]byte("DELIMITER ;;\nCREATE x ( 'a;' ) ;;\nDELIMITER ;\n/* x */ -- y\n# z\n"), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		whole, err1 := parseAll(data, 0)
		cut, err2 := parseAll(data, int(step%64)+1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v, in reads: %v", err1, err2)
		}
		if err1 == nil && !reflect.DeepEqual(whole, cut) {
			t.Fatalf("whole: %+v, in reads: %+v", whole, cut)
		}
	})
}

// BenchmarkParser measures the parser on customer-like extended inserts.
func BenchmarkParser(b *testing.B) {
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
		if _, err := parseAll(data, 32<<10); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDigestReader checks the bytes pass unchanged and a truncated dump
// fails at its end, naming the database.
func TestDigestReader(t *testing.T) {
	data, err := os.ReadFile("testdata/sample.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"complete", data, true},
		{"cut in a row", data[:bytes.Index(data, []byte("(2,NULL"))+3], false},
		{"cut before the trailer", data[:bytes.Index(data, []byte("-- Dump completed"))], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var size int64 = -1
			r := &digestReader{r: bytes.NewReader(tc.in), p: newParser("shop", engine.NewDigester()), done: func(n int64) { size = n }}
			var out bytes.Buffer
			_, err := io.Copy(&out, r)
			if !bytes.Equal(out.Bytes(), tc.in) {
				t.Fatal("the bytes changed on the way")
			}
			if tc.ok != (err == nil) || tc.ok != (size == int64(len(tc.in))) {
				t.Fatalf("err %v, size %d", err, size)
			}
			if !tc.ok && !strings.Contains(err.Error(), `database "shop" is truncated`) {
				t.Fatalf("err %v", err)
			}
		})
	}
}
