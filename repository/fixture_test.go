package repository_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage/local"
)

var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/v1 (go test ./repository -run FormatV1 -args -update-fixture; only for a new format version)")

// fixtureInput is what the version 1 fixture repository holds.
func fixtureInput() []byte { return synth.Bytes(1001, 300<<10) }

// TestFormatV1Fixture reads a repository written by the first release of
// format version 1: a stored format must decode forever.
func TestFormatV1Fixture(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join("testdata", "v1")
	if *updateFixture {
		writeFixture(t, dir)
	}
	idText, err := os.ReadFile(filepath.Join(dir, "operator.txt"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(idText)))
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(filepath.Join(dir, "repo"), false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenRestorer(ctx, be, []age.Identity{id}, repository.OpenOptions{})
	if err != nil {
		t.Fatalf("open the v1 fixture: %v", err)
	}
	snap, err := r.FindSnapshot(ctx, "latest", "fixture")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := restore.Run(ctx, r, snap, &out, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), fixtureInput()) {
		t.Fatal("the v1 fixture restores to different bytes")
	}
	rep, err := r.Check(ctx, repository.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check of the v1 fixture: %v %+v", err, rep)
	}
}

func writeFixture(t *testing.T, dir string) {
	os.RemoveAll(dir)
	be, err := local.Open(filepath.Join(dir, "repo"), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{})
	if _, err := backup.Run(context.Background(), r.Writer, bytes.NewReader(fixtureInput()), backup.Options{Source: "fixture", Host: "fixture-host"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.txt"), []byte(r.Identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
