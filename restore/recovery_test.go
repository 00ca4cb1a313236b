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
	"github.com/coffer-backup/coffer/repository"
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
// blocks with age, zstd, jq, dd and tar: a physical base backup's stream
// into a data directory, and its WAL files beside it. Both formats: one
// tar (pg_basebackup-tar), and parts with a tablespace.
func TestRecoverBaseBackupByHand(t *testing.T) {
	for _, tool := range []string{"age", "zstd", "jq", "bash", "tar", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: this test needs it (run .ci/run)", tool)
		}
	}
	base := map[string]string{"PG_VERSION": "15\n", "base/1/1259": string(synth.Bytes(3, 300_000)), "global/pg_control": "control"}
	t.Run("one tar", func(t *testing.T) {
		f := newFixture(t)
		snap := f.snapshot(t, tarOf(base), "stdin")
		recoverByHand(t, f, snap, map[string]map[string]string{"pgdata": base})
	})
	t.Run("parts", func(t *testing.T) {
		f := newFixture(t)
		space := map[string]string{"PG_15_202209061/5/16400": string(synth.Bytes(5, 200_000))}
		withMap := map[string]string{"tablespace_map": "16390 /srv/elsewhere\n"}
		for k, v := range base {
			withMap[k] = v
		}
		var in []byte
		var parts []engine.Part
		for _, p := range []struct {
			name string
			b    []byte
		}{{"16390.tar", tarOf(space)}, {"base.tar", tarOf(withMap)}, {"backup_manifest", []byte(`{"PostgreSQL-Backup-Manifest-Version": 1}`)}} {
			parts = append(parts, engine.Part{Name: p.name, Offset: int64(len(in)), Size: int64(len(p.b))})
			in = append(in, p.b...)
		}
		snap := f.snapshot(t, in, "postgres-physical", parts...)
		data := map[string]string{"backup_manifest": `{"PostgreSQL-Backup-Manifest-Version": 1}`}
		for k, v := range base {
			data[k] = v
		}
		recoverByHand(t, f, snap, map[string]map[string]string{"pgdata": data, "tablespaces/16390": space, "pgdata/pg_tblspc/16390": space})
		if _, err := os.Stat(filepath.Join(f.root, "pgdata", "tablespace_map")); !os.IsNotExist(err) {
			t.Errorf("the procedure left the backup's tablespace_map: %v", err)
		}
	})
}

func tarOf(files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

// recoverByHand runs the procedure on snap, then checks that each
// directory (relative to the repository root) holds the files given.
func recoverByHand(t *testing.T, f *fixture, snap *repository.Snapshot, want map[string]map[string]string) {
	t.Helper()
	blocks := recoveryBlocks(t)
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
	for dir, files := range want {
		for name, body := range files {
			if got, err := os.ReadFile(filepath.Join(f.root, dir, name)); err != nil || string(got) != body {
				t.Fatalf("%s/%s: %v (equal %v)", dir, name, err, string(got) == body)
			}
		}
	}
	for name, content := range wal {
		if got, err := os.ReadFile(filepath.Join(f.root, "pgdata", "coffer_wal", name)); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("coffer_wal/%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.root, "repo.key")); err == nil {
		t.Error("the procedure left the repository key behind")
	}
}
