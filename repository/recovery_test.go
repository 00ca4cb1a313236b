package repository_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage/local"
)

// recoveryScript returns the shell block of docs/format.md's section
// "Recovering a dump without coffer", so the test runs what the document
// says, not a copy that could drift from it.
func recoveryScript(t *testing.T) string {
	doc, err := os.ReadFile("../docs/format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## Recovering a dump without coffer")
	if !ok {
		t.Fatal("docs/format.md has no section \"Recovering a dump without coffer\"")
	}
	_, block, ok := strings.Cut(sec, "```sh\n")
	if !ok {
		t.Fatal("the recovery section has no ```sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// TestRecoverByHand follows docs/format.md with age, zstd, jq and shell
// tools only, and must get the original stream back.
func TestRecoverByHand(t *testing.T) {
	for _, tool := range []string{"age", "zstd", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the recover-by-hand test needs it (apt-get install age zstd jq, or run .ci/run)", tool)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	be, err := local.Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	// Small packs, so the stream spans several packs and index objects.
	r := repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
	in := synth.Bytes(5, 6<<20)
	if _, err := backup.Run(ctx, r.Writer, bytes.NewReader(synth.Bytes(6, 2<<20)), backup.Options{Source: "other"}); err != nil {
		t.Fatal(err)
	}
	sum, err := backup.Run(ctx, r.Writer, bytes.NewReader(in), backup.Options{Source: "customers"})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	me := filepath.Join(work, "me.txt")
	if err := os.WriteFile(me, []byte(r.Identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := recoveryScript(t)
	script = strings.ReplaceAll(script, "me.txt", me)
	script = strings.ReplaceAll(script, "SNAP=snapshots/<ID>", "SNAP=snapshots/"+sum.Snapshot.ID().String())
	script = strings.ReplaceAll(script, "dump.out", filepath.Join(work, "dump.out"))
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the recovery procedure failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), sum.Snapshot.ID().String()+" ") || !strings.Contains(string(out), " customers") {
		t.Errorf("step 2 did not list the snapshot:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(work, "dump.out"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("recovered %d bytes that differ from the %d backed up", len(got), len(in))
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "plain-*")); len(leftovers) > 0 || fileExists(filepath.Join(dir, "repo.key")) {
		t.Errorf("the procedure left plaintext or the repository key behind: %v", leftovers)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
