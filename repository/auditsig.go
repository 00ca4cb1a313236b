package repository

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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

// auditKey is the operators' audit signing key (AuditKeyOf the repository
// identity); writers have none.
func (r *Repo) auditKey() (ed25519.PrivateKey, error) {
	x, ok := r.data.(*age.X25519Identity)
	if !ok || x == nil {
		return nil, ErrNeedIdentity
	}
	return AuditKeyOf(x), nil
}

// AuditKeyOf derives the operators' audit signing key from the repository
// identity id. Only operators hold the repository key, so every operator
// can sign and no writer-key holder can: seed = HMAC-SHA256(key = the
// identity's text "AGE-SECRET-KEY-1…", message = auditKeyLabel).
func AuditKeyOf(id *age.X25519Identity) ed25519.PrivateKey {
	m := hmac.New(sha256.New, []byte(id.String()))
	m.Write([]byte(auditKeyLabel))
	return ed25519.NewKeyFromSeed(m.Sum(nil))
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

// rotationContext prefixes the new audit key in a rotation's endorsement.
const rotationContext = "coffer audit key rotation v1\n"

// rotationMessage is what the previous audit key signs to endorse the next
// one, given as lowercase hex.
func rotationMessage(nextHex string) []byte {
	return []byte(rotationContext + nextHex + "\n")
}

// IsRotation reports whether a records a key rotation: a key-change whose
// detail says "change": "rotate". CheckRotation says whether it is valid.
func (a *AuditRecord) IsRotation() bool {
	return a.Event == "key-change" && a.Detail["change"] == "rotate"
}

// RotationDetail is the Detail of the key-change record a rotation
// appends, signed by the new audit key: the rotation's generation, both
// audit public keys, and the endorsement, oldKey's signature of the new
// key (docs/format.md, "Signed audit records and heads").
func RotationDetail(oldKey ed25519.PrivateKey, newPub ed25519.PublicKey, generation int) map[string]string {
	next := signerHex(newPub)
	return map[string]string{
		"change":             "rotate",
		"generation":         strconv.Itoa(generation),
		"previous_audit_key": signerHex(oldKey.Public().(ed25519.PublicKey)),
		"audit_key":          next,
		"endorsement":        base64.StdEncoding.EncodeToString(ed25519.Sign(oldKey, rotationMessage(next))),
	}
}

// RotationError reports a key rotation record that does not prove the
// change it claims.
type RotationError struct {
	Record string // the record's name, audit/TIME-ID
	Reason string
}

func (e *RotationError) Error() string {
	return fmt.Sprintf("the key rotation recorded in %s %s", e.Record, e.Reason)
}

// CheckRotation checks a key rotation record: both audit keys well formed
// and distinct, the endorsement a signature of the new key by the previous
// one, and the record itself signed by the new key. It returns the two
// keys, or a *RotationError.
func CheckRotation(a *AuditRecord) (prev, next ed25519.PublicKey, err error) {
	fail := func(reason string) (ed25519.PublicKey, ed25519.PublicKey, error) {
		return nil, nil, &RotationError{Record: a.name, Reason: reason}
	}
	if !a.IsRotation() {
		return fail("is not a key rotation")
	}
	d := a.Detail
	if prev = parseAuditKey(d["previous_audit_key"]); prev == nil {
		return fail("has no valid previous_audit_key (64 lowercase hex)")
	}
	if next = parseAuditKey(d["audit_key"]); next == nil {
		return fail("has no valid audit_key (64 lowercase hex)")
	}
	if prev.Equal(next) {
		return fail("names the same audit key before and after")
	}
	if g, err := strconv.Atoi(d["generation"]); err != nil || g < 1 || strconv.Itoa(g) != d["generation"] {
		return fail("has no valid generation (a positive decimal number)")
	}
	sig, err := base64.StdEncoding.DecodeString(d["endorsement"])
	if err != nil || !ed25519.Verify(prev, rotationMessage(d["audit_key"]), sig) {
		return fail("is not endorsed by the previous audit key: its endorsement is not that key's signature of the new one, so it was forged")
	}
	switch err := a.CheckSignature(next); {
	case errors.Is(err, ErrUnsigned):
		return fail("is not signed")
	case err != nil:
		return fail("is not signed by the new audit key it names")
	}
	return prev, next, nil
}

// parseAuditKey parses an audit public key in the lowercase hex that
// records use, or returns nil.
func parseAuditKey(s string) ed25519.PublicKey {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize || hex.EncodeToString(b) != s {
		return nil
	}
	return ed25519.PublicKey(b)
}
