// Package repotest creates repositories for tests: a fresh operator
// identity, a repository in the given backend, and the repository opened
// both as the backup host (writer key only) and as an operator.
package repotest

import (
	"context"
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
