package pitr

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/repository"
)

// twoSpaces is what a snapshot of a server with two user tablespaces
// records; their locations are directories of the backup host, which a
// restore must never write to unless the operator maps them there.
func twoSpaces(t *testing.T) (*repository.PhysicalInfo, string) {
	orig := t.TempDir()
	return &repository.PhysicalInfo{Tablespaces: []repository.Tablespace{
		{OID: 16390, Name: "fast", Location: filepath.Join(orig, "fast")},
		{OID: 16391, Name: "archive", Location: filepath.Join(orig, "archive")},
	}}, orig
}

// stream concatenates named tars into a stream and its part list.
func stream(named ...any) ([]byte, []engine.Part) {
	var buf bytes.Buffer
	var parts []engine.Part
	for i := 0; i < len(named); i += 2 {
		b := named[i+1].([]byte)
		parts = append(parts, engine.Part{Name: named[i].(string), Offset: int64(buf.Len()), Size: int64(len(b))})
		buf.Write(b)
	}
	return buf.Bytes(), parts
}

func spaceTar(t *testing.T, body string) []byte {
	return tarOf(t, entry{name: "PG_15_202209061/", typ: tar.TypeDir},
		entry{name: "PG_15_202209061/5/16400", typ: tar.TypeReg, body: body})
}

func baseTar(t *testing.T, extra ...entry) []byte {
	return tarOf(t, append([]entry{{name: "PG_VERSION", typ: tar.TypeReg, body: "15\n"},
		{name: "pg_tblspc/", typ: tar.TypeDir},
		{name: "tablespace_map", typ: tar.TypeReg, body: "16390 /srv/fast\n16391 /srv/archive\n"}}, extra...)...)
}

// TestExtractTablespaces: each tablespace's part goes into its own
// directory (the operator's mapping, or one coffer chose), pg_tblspc/OID
// links there, and nothing is written at the backup host's locations or
// from the backup's tablespace_map.
func TestExtractTablespaces(t *testing.T) {
	info, orig := twoSpaces(t)
	root := t.TempDir()
	data := filepath.Join(root, "data")
	mapped := filepath.Join(root, "mine")
	l, err := PlanLayout(info, data, TablespacesBeside(data), []string{"archive=" + mapped})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]string{16390: filepath.Join(root, "data.tablespaces", "16390"), 16391: mapped}
	for oid, dir := range want {
		if l.Tablespaces[oid] != dir {
			t.Fatalf("tablespace %d goes to %s, want %s", oid, l.Tablespaces[oid], dir)
		}
	}
	s, parts := stream("16390.tar", spaceTar(t, "fast rows"), "16391.tar", spaceTar(t, "archived rows"),
		"base.tar", baseTar(t), "backup_manifest", []byte(`{"PostgreSQL-Backup-Manifest-Version": 1}`))
	n, err := ExtractBackup(bytes.NewReader(s), parts, info, l)
	if err != nil || n != 4 {
		t.Fatalf("extract: %d files, %v", n, err)
	}
	for oid, dir := range want {
		link, err := os.Readlink(filepath.Join(data, "pg_tblspc", repository.TablespacePart(oid)[:5]))
		if err != nil || link != dir {
			t.Fatalf("pg_tblspc/%d links to %q (%v), want %s", oid, link, err, dir)
		}
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("tablespace directory %s: %v %v", dir, fi, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(mapped, "PG_15_202209061", "5", "16400")); string(b) != "archived rows" {
		t.Fatalf("tablespace 16391's file holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(data, "tablespace_map")); !os.IsNotExist(err) {
		t.Fatalf("the backup's tablespace_map was written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "backup_manifest")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(orig); len(ents) != 0 {
		t.Fatalf("something was written at the backup host's locations: %v", ents)
	}
}

// TestHostileTablespaces: the backup host writes the tablespace list, the
// part list and every tar. Each attack is refused, naming what is wrong,
// and nothing is written outside the data directory and the tablespaces'
// directories; a list that does not match the parts is refused before
// anything is written at all.
func TestHostileTablespaces(t *testing.T) {
	info, orig := twoSpaces(t)
	outside := t.TempDir()
	good1, good2 := spaceTar(t, "a"), spaceTar(t, "b")
	cases := []struct {
		name    string
		parts   []any
		want    string
		nothing bool // refused before any directory is made
	}{
		{"tablespace stream missing", []any{"16390.tar", good1, "base.tar", baseTar(t)}, "no part 16391.tar", true},
		{"part no tablespace", []any{"16390.tar", good1, "16391.tar", good2, "16392.tar", good2, "base.tar", baseTar(t)}, "16392.tar", true},
		{"part named as a path", []any{"16390.tar", good1, "16391.tar", good2, "../../x", good2, "base.tar", baseTar(t)}, "../../x", true},
		{"part twice", []any{"16390.tar", good1, "16390.tar", good1, "16391.tar", good2, "base.tar", baseTar(t)}, "twice", true},
		{"no base", []any{"16390.tar", good1, "16391.tar", good2}, "base.tar", true},
		{"link in a tablespace", []any{"16390.tar", tarOf(t, entry{name: "PG_15", typ: tar.TypeSymlink, link: outside}), "16391.tar", good2, "base.tar", baseTar(t)}, "link", false},
		{"file through a link", []any{"16390.tar", tarOf(t, entry{name: "l", typ: tar.TypeSymlink, link: outside}, entry{name: "l/canary", typ: tar.TypeReg, body: "x"}), "16391.tar", good2, "base.tar", baseTar(t)}, "link", false},
		{"device in a tablespace", []any{"16390.tar", tarOf(t, entry{name: "null", typ: tar.TypeChar}), "16391.tar", good2, "base.tar", baseTar(t)}, "device", false},
		{"dot-dot in a tablespace", []any{"16390.tar", tarOf(t, entry{name: "../../canary", typ: tar.TypeReg, body: "x"}), "16391.tar", good2, "base.tar", baseTar(t)}, "outside", false},
		{"absolute in a tablespace", []any{"16390.tar", tarOf(t, entry{name: filepath.Join(outside, "canary"), typ: tar.TypeReg, body: "x"}), "16391.tar", good2, "base.tar", baseTar(t)}, "outside", false},
		{"base makes the link", []any{"16390.tar", good1, "16391.tar", good2, "base.tar", baseTar(t, entry{name: "pg_tblspc/16390", typ: tar.TypeSymlink, link: outside})}, "link", false},
		{"base makes the directory", []any{"16390.tar", good1, "16391.tar", good2, "base.tar", baseTar(t, entry{name: "pg_tblspc/16390/PG_15/x", typ: tar.TypeReg, body: "x"})}, "pg_tblspc/16390", false},
		{"map names another", []any{"16390.tar", good1, "16391.tar", good2, "base.tar", tarOf(t, entry{name: "tablespace_map", typ: tar.TypeReg, body: "16390 /a\n1 " + outside + "\n"})}, "tablespace_map", false},
		{"map misses one", []any{"16390.tar", good1, "16391.tar", good2, "base.tar", tarOf(t, entry{name: "tablespace_map", typ: tar.TypeReg, body: "16390 /a\n"})}, "tablespace_map", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			data := filepath.Join(root, "data")
			l, err := PlanLayout(info, data, TablespacesBeside(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			s, parts := stream(tc.parts...)
			_, err = ExtractBackup(bytes.NewReader(s), parts, info, l)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
			if tc.nothing {
				if ents, _ := os.ReadDir(root); len(ents) != 0 {
					t.Fatalf("refused after making %v", ents)
				}
			}
			for _, d := range []string{outside, orig} {
				if ents, _ := os.ReadDir(d); len(ents) != 0 {
					t.Fatalf("written outside the restore's directories, in %s: %v", d, ents)
				}
			}
			for _, d := range l.Tablespaces {
				filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode()&(os.ModeSymlink|os.ModeDevice) != 0 {
						t.Fatalf("%s was made with mode %v", p, fi.Mode())
					}
					return nil
				})
			}
		})
	}
}

// TestPlanLayout: the operator's mapping names tablespaces by oid or name;
// a mapping of nothing, or directories that overlap, are refused.
func TestPlanLayout(t *testing.T) {
	info, _ := twoSpaces(t)
	root := t.TempDir()
	data := filepath.Join(root, "data")
	for _, tc := range []struct {
		mapping []string
		want    string
	}{
		{[]string{"16392=/x"}, "no such tablespace"},
		{[]string{"nosuch=/x"}, "no such tablespace"},
		{[]string{"fast"}, "OID=DIR"},
		{[]string{"fast=/x", "16390=/y"}, "twice"},
		{[]string{"fast=" + filepath.Join(data, "base")}, "overlap"},
		{[]string{"fast=" + root}, "overlap"},
		{[]string{"fast=/x", "archive=/x/y"}, "overlap"},
		{[]string{"fast=" + filepath.Join(root, "data.tablespaces")}, "overlap"},
	} {
		if _, err := PlanLayout(info, data, TablespacesBeside(data), tc.mapping); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mapping %q: %v, want an error with %q", tc.mapping, err, tc.want)
		}
	}
	l, err := PlanLayout(info, data, TablespacesBeside(data), []string{"16390=rel/fast"})
	if err != nil || !filepath.IsAbs(l.Tablespaces[16390]) {
		t.Fatalf("a relative mapping: %v %v", l, err)
	}
	if _, err := PlanLayout(&repository.PhysicalInfo{}, data, "", []string{"fast=/x"}); err == nil || !strings.Contains(err.Error(), "no tablespace") {
		t.Fatalf("a mapping for a backup without tablespaces: %v", err)
	}
}
