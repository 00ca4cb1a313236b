package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/synth"
)

type snapshotRow struct {
	ID     string   `json:"snapshot"`
	Source string   `json:"source"`
	Size   int64    `json:"size_bytes"`
	Tags   []string `json:"tags"`
	Host   string   `json:"host"`
}

func (c *cli) snapshots(args ...string) []snapshotRow {
	c.t.Helper()
	var rows []snapshotRow
	out := c.ok(nil, append([]string{"snapshots", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		c.t.Fatalf("snapshots --json: %v\n%s", err, out)
	}
	return rows
}

type backupJSON struct {
	Snapshot    string `json:"snapshot"`
	BytesRead   int64  `json:"size_bytes"`
	BytesStored int64  `json:"stored_bytes"`
	ChunksTotal int    `json:"chunks_total"`
	ChunksNew   int    `json:"chunks_new"`
}

func (c *cli) backup(stdin io.Reader, args ...string) backupJSON {
	c.t.Helper()
	out := c.ok(stdin, append([]string{"backup", "--json"}, args...)...)
	var b backupJSON
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		c.t.Fatalf("backup --json: %v\n%s", err, out)
	}
	return b
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// cliRoundTrip backs up size synthetic bytes through the CLI, restores them
// to a file and to stdout, and checks the repository.
func cliRoundTrip(t *testing.T, c *cli, size int64) {
	c.init()
	in := filepath.Join(t.TempDir(), "dump.sql")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, synth.Dump(11, size)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The backup host has the writer key only.
	writer := c.without("COFFER_IDENTITY_FILE")
	src, _ := os.Open(in)
	b := writer.backup(src, "--source", "customers", "--stdin", "--tag", "nightly")
	src.Close()
	if b.BytesRead != size || b.Snapshot == "" {
		t.Fatalf("backup summary %+v, want %d bytes read", b, size)
	}
	rows := writer.snapshots("--source", "customers")
	if len(rows) != 1 || rows[0].ID != b.Snapshot || rows[0].Size != size || rows[0].Tags[0] != "nightly" {
		t.Fatalf("snapshots: %+v", rows)
	}
	writer.ok(nil, "check")

	out := filepath.Join(t.TempDir(), "restored.sql")
	c.ok(nil, "restore", "latest", "--source", "customers", "--output", out)
	if fileHash(t, out) != fileHash(t, in) {
		t.Fatal("restored file differs from the backed-up stream")
	}
	mustContain(t, "restore to an existing file", c.fail(nil, "restore", b.Snapshot[:8], "-o", out), "already exists")
	c.ok(nil, "check", "--read-data")
}

func TestCLIRoundTripLocal(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	cliRoundTrip(t, c, 30<<20)

	// restore to stdout, by id prefix
	rows := c.snapshots()
	got := c.ok(nil, "restore", rows[0].ID[:10])
	want := synth.Bytes(11, 30<<20)
	if !bytes.Equal([]byte(got), want) {
		t.Fatal("restore to stdout differs")
	}
}

func TestCLIExecAndTags(t *testing.T) {
	c := newCLI(t, "file://"+filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(nil, "--source", "seq", "--exec", "seq 1 200000", "--host", "db7")
	rows := c.snapshots()
	if len(rows) != 1 || rows[0].Host != "db7" || rows[0].ID != b.Snapshot {
		t.Fatalf("snapshots: %+v", rows)
	}
	out := c.ok(nil, "restore", "latest")
	if !strings.HasPrefix(out, "1\n2\n") || !strings.HasSuffix(out, "\n200000\n") {
		t.Fatalf("restored %d bytes, not the command's output", len(out))
	}
	again := c.backup(nil, "--source", "seq", "--exec", "seq 1 200000")
	if again.ChunksNew != 0 {
		t.Errorf("the same output again stored %d new chunks", again.ChunksNew)
	}
}

// TestCLIWriteOnly: the backup host's key cannot read what it wrote.
func TestCLIWriteOnly(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	w := c.without("COFFER_IDENTITY_FILE")
	w.backup(strings.NewReader(strings.Repeat("secret customer row\n", 10000)), "--source", "x", "--stdin")
	for _, args := range [][]string{{"restore", "latest"}, {"check", "--read-data"}} {
		r := w.run(nil, args...)
		if r.code == 0 || r.stdout != "" {
			t.Fatalf("coffer %v with the writer key: exit %d, %d bytes of output", args, r.code, len(r.stdout))
		}
		mustContain(t, strings.Join(args, " "), r.stderr, "identity", "COFFER_IDENTITY_FILE")
	}
}
