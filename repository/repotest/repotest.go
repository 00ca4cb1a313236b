// Package repotest creates repositories for tests: a fresh operator
// identity, a repository in the given backend, and the repository opened
// both as the backup host (writer key only) and as an operator.
package repotest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// Repo is a test repository opened in both roles.
type Repo struct {
	Backend  storage.Backend
	Identity *age.X25519Identity   // the operator's identity
	Writer   *repository.Repo      // opened with the writer key alone
	Restorer *repository.Repo      // opened with the operator identity
	Key      *repository.WriterKey // the writer key
}

// New initialises a repository in be with opts (Operators are filled in).
func New(t testing.TB, be storage.Backend, opts repository.InitOptions) *Repo {
	t.Helper()
	ctx := context.Background()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	opts.Operators = []age.Recipient{id.Recipient()}
	opts.OperatorNames = []string{id.Recipient().String()}
	r, err := repository.Init(ctx, be, opts)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	// Reparse the key as a backup host would read it from its file.
	wk, err := repository.ParseWriterKey(r.WriterKey().Marshal(), "writer key")
	if err != nil {
		t.Fatal(err)
	}
	w, err := repository.OpenWriter(ctx, be, wk)
	if err != nil {
		t.Fatalf("open as writer: %v", err)
	}
	rr, err := repository.OpenRestorer(ctx, be, []age.Identity{id}, repository.OpenOptions{})
	if err != nil {
		t.Fatalf("open as restorer: %v", err)
	}
	return &Repo{Backend: be, Identity: id, Writer: w, Restorer: rr, Key: wk}
}

// RepositoryIdentity returns the current generation's repository identity
// in be, decrypted with the operator identity op.
func RepositoryIdentity(t testing.TB, be storage.Backend, op age.Identity) *age.X25519Identity {
	t.Helper()
	cfg, err := repository.LoadConfig(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := repository.KeyObjects(cfg.Gen())
	ct, err := storage.ReadAll(context.Background(), be, name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(ct), op)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Rekey rotates the repository's keys in be with op, an operator's
// identity, as `coffer key rotate` does, but appends no audit record (the
// rotation's record is the test's). It returns the repository opened at
// the new generation, its writer key and its repository identity.
func Rekey(t testing.TB, be storage.Backend, op *age.X25519Identity, _ *repository.WriterKey) (*repository.Repo, *repository.WriterKey, *age.X25519Identity) {
	t.Helper()
	ctx := context.Background()
	r, err := repository.OpenRestorer(ctx, be, []age.Identity{op}, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{op.Recipient()}}); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	return r, r.WriterKey(), RepositoryIdentity(t, be, op)
}

// Chunks returns snapshot s's chunk ids in order, read from its chunk
// lists.
func Chunks(t testing.TB, r *repository.Repo, s *repository.Snapshot) []repository.ID {
	t.Helper()
	var ids []repository.ID
	if err := r.SnapshotChunks(context.Background(), s, func(id repository.ID) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		t.Fatalf("chunks of snapshot %s: %v", s.ID().Short(), err)
	}
	return ids
}
