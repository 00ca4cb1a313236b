package auditlog

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coffer-backup/coffer/repository"
)

// span is one audit key's time in use: the records before the rotation
// record named until (by name order) and after the rotation to it.
type span struct {
	key   ed25519.PublicKey
	until string // the rotation record that replaced it; "" for the key in use now
}

// signatures is what checkSignatures found.
type signatures struct {
	spans    []span // the key in use now first, then each key it replaced
	signed   int    // records whose signature verified under the key of their time
	first    int    // index of the first of them, or -1
	problems []repository.Problem
}

// checkSignatures checks every signed record against the audit key of its
// time: key for the records after the last rotation. Walking the records
// backwards (by name), a rotation record signed by the key in use after it
// whose endorsement verifies (repository.CheckRotation) makes its previous
// key the one for the records before it. A rotation signed so but not
// endorsed is forged: the records before it stay held to the later key.
func checkSignatures(recs []*repository.AuditRecord, key ed25519.PublicKey) *signatures {
	s := &signatures{spans: []span{{key: key}}, first: -1}
	add := func(object, format string, args ...any) {
		s.problems = append(s.problems, repository.Problem{Object: object, Reason: fmt.Sprintf(format, args...)})
	}
	at := make([]ed25519.PublicKey, len(recs))
	cur := key
	for i := len(recs) - 1; i >= 0; i-- {
		a := recs[i]
		at[i] = cur
		if !a.IsRotation() || a.CheckSignature(cur) != nil {
			continue // a rotation signed otherwise fails the check below
		}
		prev, _, err := repository.CheckRotation(a)
		if err != nil {
			reason := err.Error()
			if re := (*repository.RotationError)(nil); errors.As(err, &re) {
				reason = re.Reason
			}
			add(a.Name(), "claims a rotation of the operators' audit key from %.16s… but %s; the records before it are held to the key after it", a.Detail["previous_audit_key"], reason)
			continue
		}
		s.spans = append(s.spans, span{key: prev, until: a.Name()})
		cur = prev
	}
	for i, a := range recs {
		if !a.Signed() {
			continue
		}
		switch err := a.CheckSignature(at[i]); {
		case err == nil:
			s.signed++
			if s.first < 0 {
				s.first = i
			}
		case errors.Is(err, repository.ErrOtherSigner):
			add(a.Name(), "%s", s.otherSigner(a, at[i]))
		default:
			add(a.Name(), "its operator signature does not verify: the record was forged or altered")
		}
	}
	return s
}

// otherSigner explains a record signed by another key than want, the
// audit key of its time.
func (s *signatures) otherSigner(a *repository.AuditRecord, want ed25519.PublicKey) string {
	for _, sp := range s.spans {
		if hex.EncodeToString(sp.key) != a.Signer {
			continue
		}
		if sp.until != "" && a.Name() > sp.until {
			return fmt.Sprintf("is signed by the audit key %.16s…, which the rotation %s replaced before it was written: someone who kept the old repository key (a removed operator?) wrote it", a.Signer, sp.until)
		}
		return fmt.Sprintf("is signed by the audit key %.16s…, which came into use only after it: it was forged, or written with a wrong clock", a.Signer)
	}
	return fmt.Sprintf("is signed by key %.16s…, not by the operators' audit key %.16s…: forged, or the repository key was replaced", a.Signer, hex.EncodeToString(want))
}

// keys returns the audit keys accepted, as hex: the key in use now first.
func (s *signatures) keys() []string {
	var out []string
	for _, sp := range s.spans {
		out = append(out, hex.EncodeToString(sp.key))
	}
	return out
}

// RotationChain checks that recs prove a change of the operators' audit
// key from from to to: walking back from to, valid rotation records
// (each signed by the later key and endorsed by the earlier) lead to from,
// and every signed record verifies under the key of its time. It returns
// the keys replaced on the way, oldest (from) first.
func RotationChain(recs []*repository.AuditRecord, from, to ed25519.PublicKey) ([]ed25519.PublicKey, error) {
	if from.Equal(to) {
		return nil, nil
	}
	s := checkSignatures(recs, to)
	i := slices.IndexFunc(s.spans, func(sp span) bool { return sp.key.Equal(from) })
	if i < 0 {
		return nil, fmt.Errorf("no endorsed rotation record leads from audit key %.16s… to %.16s…", hex.EncodeToString(from), hex.EncodeToString(to))
	}
	if len(s.problems) > 0 {
		p := s.problems[0]
		return nil, fmt.Errorf("%s: %s", p.Object, p.Reason)
	}
	var replaced []ed25519.PublicKey
	for j := i; j > 0; j-- {
		replaced = append(replaced, s.spans[j].key)
	}
	return replaced, nil
}

// AcceptKey checks key, the operators' audit key now, against the pin. The
// pinned key is accepted; another only when RotationChain proves, from
// recs, that holders of the pinned key rotated to it. Then the pin moves
// to key: the keys replaced go to PreviousKeys and KeyPinned becomes now.
func (p *Pin) AcceptKey(recs []*repository.AuditRecord, key ed25519.PublicKey, now time.Time) error {
	k := hex.EncodeToString(key)
	if p.AuditKey == k {
		return nil
	}
	pinned, err := hex.DecodeString(p.AuditKey)
	if err != nil || len(pinned) != ed25519.PublicKeySize {
		return fmt.Errorf("the pinned audit key %q is not an Ed25519 public key: the audit state is damaged", p.AuditKey)
	}
	replaced, err := RotationChain(recs, pinned, key)
	if err != nil {
		return err
	}
	for _, r := range replaced {
		if h := hex.EncodeToString(r); !slices.Contains(p.PreviousKeys, h) {
			p.PreviousKeys = append(p.PreviousKeys, h)
		}
	}
	p.AuditKey, p.KeyPinned = k, now
	return nil
}
