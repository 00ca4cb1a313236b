package repository

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/age"
)

// Audit record versions: 1 is a record authenticated by the writer key
// alone; 2 is an envelope holding a record signed with the operators'
// audit key (docs/format.md, "Signed audit records and heads").
const (
	auditUnsigned = 1
	auditSigned   = 2
)

// auditSigContext prefixes the signed bytes, so that an audit signature can
// never be taken for a signature of anything else.
const auditSigContext = "coffer audit record v2\n"

// auditKeyLabel derives the audit signing key from the repository key.
const auditKeyLabel = "coffer audit signing key v1"

// auditEnvelope is the stored form of a signed record.
type auditEnvelope struct {
	Version int    `json:"version"`
	Record  []byte `json:"record"` // the record's JSON (base64 in the envelope)
	Sig     []byte `json:"sig"`    // Ed25519 signature of auditSigContext || Record
}

// auditKey is the operators' audit signing key. It is derived from the
// repository key, which only operators hold, so every operator can sign
// and no writer-key holder can: seed = HMAC-SHA256(key = the repository
// identity's text "AGE-SECRET-KEY-1…", message = auditKeyLabel).
func (r *Repo) auditKey() (ed25519.PrivateKey, error) {
	x, ok := r.data.(*age.X25519Identity)
	if !ok || x == nil {
		return nil, ErrNeedIdentity
	}
	m := hmac.New(sha256.New, []byte(x.String()))
	m.Write([]byte(auditKeyLabel))
	return ed25519.NewKeyFromSeed(m.Sum(nil)), nil
}

// AuditPublicKey returns the public half of the operators' audit signing
// key. It needs an operator's identity (ErrNeedIdentity without it).
func (r *Repo) AuditPublicKey() (ed25519.PublicKey, error) {
	k, err := r.auditKey()
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

// encodeAudit returns the stored plaintext of a: a signed envelope when the
// repository was opened with an operator's identity, else the version 1
// record (backup hosts).
func (r *Repo) encodeAudit(a *AuditRecord) ([]byte, error) {
	key, err := r.auditKey()
	if err != nil {
		a.Version, a.Signer, a.body, a.sig = auditUnsigned, "", nil, nil
		return json.Marshal(a)
	}
	a.Version, a.Signer = auditSigned, signerHex(key.Public().(ed25519.PublicKey))
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	a.body, a.sig = body, ed25519.Sign(key, append([]byte(auditSigContext), body...))
	return json.Marshal(auditEnvelope{Version: auditSigned, Record: a.body, Sig: a.sig})
}

// decodeAudit parses the stored plaintext of a record of either version.
func decodeAudit(name string, plain []byte) (*AuditRecord, error) {
	var v versioned
	if err := json.Unmarshal(plain, &v); err != nil {
		return nil, &CorruptError{Object: name, Reason: "malformed JSON", Err: err}
	}
	var a AuditRecord
	switch v.Version {
	case auditUnsigned:
		if err := json.Unmarshal(plain, &a); err != nil {
			return nil, &CorruptError{Object: name, Reason: "malformed JSON", Err: err}
		}
		if a.Signer != "" {
			return nil, &CorruptError{Object: name, Reason: "an unsigned record names a signer"}
		}
	case auditSigned:
		var env auditEnvelope
		if err := json.Unmarshal(plain, &env); err != nil {
			return nil, &CorruptError{Object: name, Reason: "malformed JSON", Err: err}
		}
		if err := json.Unmarshal(env.Record, &a); err != nil {
			return nil, &CorruptError{Object: name, Reason: "malformed signed record", Err: err}
		}
		if a.Version != auditSigned || a.Signer == "" || len(env.Sig) != ed25519.SignatureSize {
			return nil, &CorruptError{Object: name, Reason: "a signed record without its version, signer or signature"}
		}
		a.body, a.sig = env.Record, env.Sig
	default:
		return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("audit record version %d, newer than this coffer understands: upgrade coffer", v.Version)}
	}
	return &a, nil
}

// Signature errors, from CheckSignature.
var (
	ErrUnsigned     = errors.New("the record is not signed")
	ErrOtherSigner  = errors.New("the record is signed by another key than the operators' audit key")
	ErrBadSignature = errors.New("the record's signature does not verify")
)

// CheckSignature reports whether a is signed by pub: nil when it is,
// ErrUnsigned, ErrOtherSigner or ErrBadSignature when not.
func (a *AuditRecord) CheckSignature(pub ed25519.PublicKey) error {
	switch {
	case a.sig == nil:
		return ErrUnsigned
	case a.Signer != signerHex(pub):
		return ErrOtherSigner
	case !ed25519.Verify(pub, append([]byte(auditSigContext), a.body...), a.sig):
		return ErrBadSignature
	}
	return nil
}
