package repository

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
)

// TestHostileAuditSignature: operators' records are signed; a writer-key
// holder who edits a signed record and re-seals it with the writer key
// (a valid MAC and name) is caught by the signature, and a record signed
// by any other key is not taken for the operators'.
func TestHostileAuditSignature(t *testing.T) {
	ctx := context.Background()
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := age.GenerateX25519Identity()
	r, err := Init(ctx, be, InitOptions{Operators: []age.Recipient{op.Recipient()}})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := OpenWriter(ctx, be, r.WriterKey())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := r.AuditPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.AuditPublicKey(); !errors.Is(err, ErrNeedIdentity) {
		t.Fatalf("the writer key derived an audit key: %v", err)
	}
	signed := &AuditRecord{Event: "restore", Actor: "alice", Detail: map[string]string{"to": "/srv/a"}}
	if err := r.AppendAudit(ctx, signed); err != nil {
		t.Fatal(err)
	}
	if err := writer.AppendAudit(ctx, &AuditRecord{Event: "backup", Actor: "backup"}); err != nil {
		t.Fatal(err)
	}
	recs, problems, err := writer.AuditLog(ctx)
	if err != nil || len(problems) != 0 || len(recs) != 2 {
		t.Fatalf("audit log: %v %v %d records", err, problems, len(recs))
	}
	if err := recs[0].CheckSignature(pub); err != nil || recs[0].Version != 2 || recs[0].Detail["to"] != "/srv/a" {
		t.Fatalf("the operator's record: %v %+v", err, recs[0])
	}
	if err := recs[1].CheckSignature(pub); !errors.Is(err, ErrUnsigned) || recs[1].Version != 1 {
		t.Fatalf("the writer's record: %v version %d", err, recs[1].Version)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if err := recs[0].CheckSignature(other); !errors.Is(err, ErrOtherSigner) {
		t.Fatalf("checked against another key: %v", err)
	}

	// The attack: edit the signed record's target, keep its signature,
	// re-seal with the writer key under a correct name.
	ct, _ := storage.ReadAll(ctx, be, signed.Name())
	plain, err := r.openMeta("audit", signed.Name(), signed.ID(), ct)
	if err != nil {
		t.Fatal(err)
	}
	var env auditEnvelope
	if err := json.Unmarshal(plain, &env); err != nil {
		t.Fatal(err)
	}
	env.Record = bytes.Replace(env.Record, []byte("/srv/a"), []byte("/srv/b"), 1)
	plain, _ = json.Marshal(env)
	id, ct, err := writer.wk.sealMeta("audit", plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Delete(ctx, signed.Name()); err != nil {
		t.Fatal(err)
	}
	if err := be.Put(ctx, auditName(signed.Time, id), ct, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	recs, _, err = writer.AuditLog(ctx)
	if err != nil || len(recs) != 2 || recs[0].Detail["to"] != "/srv/b" {
		t.Fatalf("the edited record did not load: %v %d", err, len(recs))
	}
	if err := recs[0].CheckSignature(pub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("an edited signed record: %v, want ErrBadSignature", err)
	}
}
