package restore_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/synth"
)

// recoveryBlocks returns the shell blocks of docs/format.md's section
// "Recovering a dump without coffer", so the test runs what the document
// says.
func recoveryBlocks(t *testing.T) []string {
	doc, err := os.ReadFile("../docs/format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## Recovering a dump without coffer")
	if !ok {
		t.Fatal("docs/format.md has no section \"Recovering a dump without coffer\"")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var blocks []string
	for {
		_, rest, ok := strings.Cut(sec, "```sh\n")
		if !ok {
			return blocks
		}
		var block string
		block, sec, _ = strings.Cut(rest, "```")
		blocks = append(blocks, block)
	}
}

// TestRecoverPartByHand follows docs/format.md with age, zstd, jq, dd and
// pg_restore only, and cuts a database's pg_dump archive out of a
// PostgreSQL snapshot's stream.
func TestRecoverPartByHand(t *testing.T) {
	for _, tool := range []string{"age", "zstd", "jq", "bash", "pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: this test needs it (run .ci/run)", tool)
		}
	}
	blocks := recoveryBlocks(t)
	if len(blocks) != 3 {
		t.Fatalf("the recovery section has %d shell blocks, want 3 (the stream, the parts, a base backup and its WAL)", len(blocks))
	}
	blocks = blocks[:2]
	archive, err := exec.Command("pg_dump", "-Fc", "-Z0", "-h", "127.0.0.1", "-U", "postgres", "--schema-only", "postgres").Output()
	if err != nil {
		t.Fatalf("pg_dump of the postgres database (PostgreSQL at 127.0.0.1:5432, user postgres, trust): %v", err)
	}
	f := newFixture(t)
	globals := synth.Bytes(9, 200_000)
	in := append(append([]byte(nil), globals...), archive...)
	snap := f.snapshot(t, in, "postgres", engine.Part{Name: "globals.sql", Size: int64(len(globals))},
		engine.Part{Name: "shop.pgdump", Offset: int64(len(globals)), Size: int64(len(archive))})

	work := t.TempDir()
	me := filepath.Join(work, "me.txt")
	os.WriteFile(me, []byte(f.Identity.String()+"\n"), 0o600)
	script := strings.Join(blocks, "\n")
	script = strings.ReplaceAll(script, "me.txt", me)
	script = strings.ReplaceAll(script, "SNAP=snapshots/<ID>", "SNAP=snapshots/"+snap.ID().String())
	for _, name := range []string{"dump.out", "shop.pgdump", "parts.txt"} {
		script = strings.ReplaceAll(script, " "+name, " "+filepath.Join(work, name))
		script = strings.ReplaceAll(script, "="+name, "="+filepath.Join(work, name))
	}
	cmd := exec.CommandContext(context.Background(), "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = f.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the recovery procedure failed: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(work, "shop.pgdump"))
	if !bytes.Equal(got, archive) {
		t.Fatalf("cut out %d bytes that differ from the %d-byte archive", len(got), len(archive))
	}
	if !strings.Contains(string(out), "Archive created at") {
		t.Errorf("pg_restore -l did not list the archive:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(f.root, "repo.key")); err == nil {
		t.Error("the procedure left the repository key behind")
	}
}

// TestRecoverBaseBackupByHand follows docs/format.md's first and third
// blocks with age, zstd, jq, dd and tar: a physical base backup's tar
// stream into a data directory, and its WAL files beside it.
func TestRecoverBaseBackupByHand(t *testing.T) {
	for _, tool := range []string{"age", "zstd", "jq", "bash", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: this test needs it (run .ci/run)", tool)
		}
	}
	blocks := recoveryBlocks(t)
	files := map[string]string{"PG_VERSION": "15\n", "base/1/1259": string(synth.Bytes(3, 300_000)), "global/pg_control": "control"}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, name := range []string{"PG_VERSION", "base/1/1259", "global/pg_control"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	f := newFixture(t)
	snap := f.snapshot(t, tarball.Bytes(), "stdin")
	wal := map[string][]byte{"000000010000000000000002": synth.Bytes(4, 1<<20), "00000002.history": []byte("1\t0/3000000\tbefore\n")}
	for name, content := range wal {
		if _, err := f.Writer.PushWAL(context.Background(), name, content); err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	me := filepath.Join(work, "me.txt")
	os.WriteFile(me, []byte(f.Identity.String()+"\n"), 0o600)
	script := strings.Join([]string{blocks[0], blocks[2]}, "\n")
	script = strings.ReplaceAll(script, "me.txt", me)
	script = strings.ReplaceAll(script, "SNAP=snapshots/<ID>", "SNAP=snapshots/"+snap.ID().String())
	cmd := exec.CommandContext(context.Background(), "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = f.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the recovery procedure failed: %v\n%s", err, out)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(f.root, "pgdata", name)); err != nil || string(got) != want {
			t.Fatalf("pgdata/%s: %v (equal %v)", name, err, string(got) == want)
		}
	}
	for name, want := range wal {
		if got, err := os.ReadFile(filepath.Join(f.root, "pgdata", "coffer_wal", name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("coffer_wal/%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.root, "repo.key")); err == nil {
		t.Error("the procedure left the repository key behind")
	}
}
