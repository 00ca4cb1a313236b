package repository_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
)

// The masking key is made once, read back by any operator, survives a
// change of operators and a key rotation unchanged, and a key planted by
// whoever controls the bucket (encrypted to the operators' public
// recipients, which anyone can do) is refused.
func TestMaskingKey(t *testing.T) {
	ctx := context.Background()
	be := localBackend(t)
	tr := repotest.New(t, be, repository.InitOptions{})
	ops := []age.Recipient{tr.Identity.Recipient()}
	if _, err := tr.Restorer.MaskingKey(ctx); !errors.Is(err, repository.ErrNoMaskingKey) {
		t.Fatalf("a new repository's masking key: %v", err)
	}
	if _, err := tr.Writer.MaskingKey(ctx); !errors.Is(err, repository.ErrNeedIdentity) {
		t.Fatalf("a writer read the masking key: %v", err)
	}
	key, err := tr.Restorer.CreateMaskingKey(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Restorer.CreateMaskingKey(ctx, ops); err == nil {
		t.Fatal("a second masking key replaced the first")
	}
	got, err := reopen(t, be, tr.Identity).MaskingKey(ctx)
	if err != nil || got != key {
		t.Fatalf("read back: %v", err)
	}

	b, _ := age.GenerateX25519Identity()
	if err := tr.Restorer.SetOperators(ctx, []age.Recipient{tr.Identity.Recipient(), b.Recipient()},
		[]string{tr.Identity.Recipient().String(), b.Recipient().String()}); err != nil {
		t.Fatal(err)
	}
	if got, err := reopen(t, be, b).MaskingKey(ctx); err != nil || got != key {
		t.Fatalf("the added operator's masking key: %v", err)
	}
	r2, _, _ := repotest.Rekey(t, be, tr.Identity, tr.Key)
	if got, err := r2.MaskingKey(ctx); err != nil || got != key {
		t.Fatalf("after rotation: %v", err)
	}
	name := repository.MaskingKeyObject(r2.Config().Gen())
	if name == repository.MaskingKeyObject(1) {
		t.Fatal("rotation did not move to a new generation")
	}

	// The attacker plants a key of their own, encrypted to the operator and
	// to the repository key, whose recipients are public.
	repoRcpt, err := age.ParseX25519Recipient(r2.Config().Recipient)
	if err != nil {
		t.Fatal(err)
	}
	var forged [32]byte
	plain := fmt.Sprintf("coffer masking key v1\nrepository %s\ngeneration %d\nkey %x\nmac %x\n", r2.Config().ID, r2.Config().Gen(), forged[:], forged[:])
	var ct bytes.Buffer
	w, _ := age.Encrypt(&ct, tr.Identity.Recipient(), repoRcpt)
	w.Write([]byte(plain))
	w.Close()
	if err := be.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := be.Put(ctx, name, ct.Bytes(), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = reopen(t, be, tr.Identity).MaskingKey(ctx)
	var ce *repository.CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not authenticated by the repository key") {
		t.Fatalf("a planted masking key: %v", err)
	}
}

func reopen(t *testing.T, be storage.Backend, id age.Identity) *repository.Repo {
	t.Helper()
	r, err := repository.OpenRestorer(context.Background(), be, []age.Identity{id}, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
