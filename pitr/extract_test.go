package pitr

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/repository"
)

type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// extract restores a base backup of one tablespace, the stream base.tar.
func extract(r *bytes.Reader, dir string) (int, error) {
	return ExtractBackup(r, nil, &repository.PhysicalInfo{}, &Layout{DataDir: dir})
}

func TestExtractDataDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	n, err := extract(bytes.NewReader(tarOf(t,
		entry{name: "base/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "base/1/1259", typ: tar.TypeReg, mode: 0o4755, body: "heap"},
		entry{name: "PG_VERSION", typ: tar.TypeReg, mode: 0o644, body: "15\n"},
		entry{name: "postgresql.conf", typ: tar.TypeReg, mode: 0o644, body: "archive_command = 'touch /tmp/pwned'\n"},
		entry{name: "postgresql.auto.conf", typ: tar.TypeReg, mode: 0o644, body: "shared_preload_libraries = 'evil'\n"},
	)), dir)
	if err != nil || n != 4 {
		t.Fatalf("extract: %d files, %v", n, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "base", "1", "1259"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSetuid != 0 {
		t.Fatalf("a data file's mode: %v %v", fi.Mode(), err)
	}
	// The backup's configuration is set aside, never used.
	for _, name := range []string{"postgresql.conf", "postgresql.auto.conf"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("%s from the backup was written in place: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, name+setAsideSuffix)); err != nil {
			t.Fatalf("%s was not set aside: %v", name, err)
		}
	}
	if err := Configure(dir, Target{}, Server{Port: 5499}); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
	if strings.Contains(string(conf), "pwned") || !strings.Contains(string(conf), "restore_command = 'cp \"coffer_wal/%f\" \"%p\"'") {
		t.Fatalf("postgresql.conf:\n%s", conf)
	}
}

// TestHostileBaseBackup: a backup host controls every byte of the base
// backup's tar stream. Nothing in it may reach outside the data directory,
// make a link, a device or a set-id file, or write over what coffer wrote.
func TestHostileBaseBackup(t *testing.T) {
	outside := t.TempDir()
	canary := filepath.Join(outside, "canary")
	cases := map[string][]entry{
		"dot-dot":           {{name: "../canary", typ: tar.TypeReg, body: "x"}},
		"deep dot-dot":      {{name: "base/../../canary", typ: tar.TypeReg, body: "x"}},
		"absolute":          {{name: canary, typ: tar.TypeReg, body: "x"}},
		"symlink out":       {{name: "pg_tblspc", typ: tar.TypeSymlink, link: outside}},
		"symlink then file": {{name: "link", typ: tar.TypeSymlink, link: outside}, {name: "link/canary", typ: tar.TypeReg, body: "x"}},
		"hard link":         {{name: "canary", typ: tar.TypeLink, link: "/etc/passwd"}},
		"device":            {{name: "null", typ: tar.TypeChar}},
		"fifo":              {{name: "fifo", typ: tar.TypeFifo}},
		"twice":             {{name: "PG_VERSION", typ: tar.TypeReg, body: "15"}, {name: "PG_VERSION", typ: tar.TypeReg, body: "16"}},
		"backslash":         {{name: `..\canary`, typ: tar.TypeReg, body: "x"}},
		"tablespace map":    {{name: "tablespace_map", typ: tar.TypeReg, body: "16390 " + outside + "\n"}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := extract(bytes.NewReader(tarOf(t, entries...)), dir)
			if err == nil {
				t.Fatal("the hostile entry was accepted")
			}
			if _, err := os.Lstat(canary); !os.IsNotExist(err) {
				t.Fatalf("a file was written outside the data directory: %v", err)
			}
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode()&(os.ModeSymlink|os.ModeDevice|os.ModeNamedPipe|os.ModeSetuid|os.ModeSetgid) != 0 {
					t.Fatalf("%s was made with mode %v", p, fi.Mode())
				}
				return nil
			})
		})
	}
	// Into a directory that is not empty: refused before anything is written.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o600)
	if _, err := extract(bytes.NewReader(tarOf(t, entry{name: "keep", typ: tar.TypeReg, body: "theirs"})), dir); err == nil {
		t.Fatal("extracted into a directory that was not empty")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep")); string(b) != "mine" {
		t.Fatal("an existing file was overwritten")
	}
}

func TestTargetCheck(t *testing.T) {
	for _, bad := range []Target{
		{LSN: "0/1'; archive_command='x"}, {XID: "1 OR 1"}, {Name: "a\nrestore_command = 'x'"},
		{Action: "exec"}, {LSN: "0/1", Name: "n"},
	} {
		if bad.Check() == nil {
			t.Errorf("target %+v accepted", bad)
		}
	}
	dir := t.TempDir()
	if err := Configure(dir, Target{Name: "it's"}, Server{}); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
	if !strings.Contains(string(conf), "recovery_target_name = 'it''s'") {
		t.Fatalf("a quote in a restore point name:\n%s", conf)
	}
}

// TestFetchWALRefusesHostileInfo: a snapshot whose WAL start is no segment
// name is refused before anything is fetched or sliced.
func TestFetchWALRefusesHostileInfo(t *testing.T) {
	info := &repository.PhysicalInfo{StartWAL: "0", WALSegmentSize: 16 << 20}
	if _, err := FetchWAL(context.Background(), nil, "snapshots/x", info, t.TempDir(), "latest"); err == nil || !strings.Contains(err.Error(), "snapshots/x") {
		t.Fatalf("a hostile start segment: %v", err)
	}
}
