package repository

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage"
)

// TestHostileAuditSignature: operators' records are signed; a writer-key
// holder who edits a signed record and re-seals it with the writer key
// (a valid MAC and name) is caught by the signature, and a record signed
// by any other key is not taken for the operators'.
func TestHostileAuditSignature(t *testing.T) {
	ctx := context.Background()
	be, _, r := newLocalRepo(t)
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
	plain, err := r.openMeta(context.Background(), "audit", signed.Name(), signed.ID(), ct)
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

// TestRotationDetailFormat: the audit key and a rotation's endorsement are
// exactly what docs/format.md specifies, byte for byte.
func TestRotationDetailFormat(t *testing.T) {
	id1, _ := age.GenerateX25519Identity()
	id2, _ := age.GenerateX25519Identity()
	m := hmac.New(sha256.New, []byte(id1.String()))
	m.Write([]byte("coffer audit signing key v1"))
	k1 := AuditKeyOf(id1)
	if !k1.Equal(ed25519.NewKeyFromSeed(m.Sum(nil))) {
		t.Fatal("AuditKeyOf is not the documented derivation")
	}
	p1 := k1.Public().(ed25519.PublicKey)
	p2 := AuditKeyOf(id2).Public().(ed25519.PublicKey)
	d := RotationDetail(k1, p2, 7)
	sig, err := base64.StdEncoding.DecodeString(d["endorsement"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"change": "rotate", "generation": "7", "previous_audit_key": hex.EncodeToString(p1), "audit_key": hex.EncodeToString(p2), "endorsement": d["endorsement"]}
	if !maps.Equal(d, want) || !ed25519.Verify(p1, []byte("coffer audit key rotation v1\n"+hex.EncodeToString(p2)+"\n"), sig) {
		t.Fatalf("rotation detail %v", d)
	}
}
