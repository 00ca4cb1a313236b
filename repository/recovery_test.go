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
	// Small chunk lists, so the stream spans several of them.
	sum, err := backup.Run(ctx, r.Writer, bytes.NewReader(in), backup.Options{Source: "customers", Lists: repository.ListCut{Min: 8, AvgBits: 3, Max: 32}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Snapshot.Lists) < 3 {
		t.Fatalf("the snapshot has %d chunk lists: the procedure would not be shown to join several", len(sum.Snapshot.Lists))
	}
	out := recoverByHand(t, dir, r.Identity.String(), sum.Snapshot.ID(), in)
	if !strings.Contains(out, sum.Snapshot.ID().String()+" ") || !strings.Contains(out, " customers") {
		t.Errorf("step 2 did not list the snapshot:\n%s", out)
	}
}

// TestRecoverV1ByHand follows the same procedure on the version 1 fixture,
// whose snapshot holds its chunk ids itself.
func TestRecoverV1ByHand(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "v1", "repo"))); err != nil {
		t.Fatal(err)
	}
	idText, err := os.ReadFile(filepath.Join("testdata", "v1", "operator.txt"))
	if err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "snapshots", "*"))
	if err != nil || len(names) != 1 {
		t.Fatalf("the v1 fixture has snapshots %v (%v), want one", names, err)
	}
	id, err := repository.ParseID(filepath.Base(names[0]))
	if err != nil {
		t.Fatal(err)
	}
	recoverByHand(t, dir, strings.TrimSpace(string(idText)), id, fixtureInput())
}

// recoverByHand runs the procedure in repository directory dir with the
// operator identity idText for snapshot snap, checks that it recovers
// want and leaves no plaintext behind, and returns its output.
func recoverByHand(t *testing.T, dir, idText string, snap repository.ID, want []byte) string {
	t.Helper()
	work := t.TempDir()
	me := filepath.Join(work, "me.txt")
	if err := os.WriteFile(me, []byte(idText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := recoveryScript(t)
	script = strings.ReplaceAll(script, "me.txt", me)
	script = strings.ReplaceAll(script, "SNAP=snapshots/<ID>", "SNAP=snapshots/"+snap.String())
	script = strings.ReplaceAll(script, "dump.out", filepath.Join(work, "dump.out"))
	cmd := exec.CommandContext(context.Background(), "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the recovery procedure failed: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(work, "dump.out"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("recovered %d bytes that differ from the %d backed up", len(got), len(want))
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "plain-*")); len(leftovers) > 0 || fileExists(filepath.Join(dir, "repo.key")) {
		t.Errorf("the procedure left plaintext or the repository key behind: %v", leftovers)
	}
	return string(out)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
