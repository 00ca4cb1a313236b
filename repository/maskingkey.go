package repository

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
)

// The masking key is the operators' secret under which masked restores
// make their pseudonyms (package mask). It is stored per key generation
// beside the repository key, encrypted to the operators and to that
// generation's repository key, and authenticated
// with a key derived from that generation's repository key, which only
// operators hold: whoever controls the bucket can encrypt a key of their
// own to the operators' public recipients, but cannot make it verify. Key
// rotation and operator changes carry it unchanged, so pseudonyms stay the
// same across them (see docs/format.md, "Masking key").

// ErrNoMaskingKey is a repository that has no masking key yet.
var ErrNoMaskingKey = errors.New("the repository has no masking key yet")

// MaskingKeyObject names a generation's masking key object.
func MaskingKeyObject(gen int) string {
	if gen <= 1 {
		return "keys/masking.age"
	}
	return fmt.Sprintf("keys/g%d/masking.age", gen)
}

const maskingMagic = "coffer masking key v1"

// maskingMAC authenticates a masking key object's fields under a key that
// only the holder of data, a generation's repository identity, can derive.
func maskingMAC(data *age.X25519Identity, repoID string, gen int, key []byte) []byte {
	k := hmacSHA256([]byte(data.String()))
	k.Write([]byte("coffer masking key authentication"))
	m := hmacSHA256(k.Sum(nil))
	fmt.Fprintf(m, "%s\n%s\n%d\n%x\n", maskingMagic, repoID, gen, key)
	return m.Sum(nil)
}

func marshalMasking(data *age.X25519Identity, repoID string, gen int, key [32]byte) []byte {
	mac := maskingMAC(data, repoID, gen, key[:])
	return fmt.Appendf(nil, "%s\nrepository %s\ngeneration %d\nkey %x\nmac %x\n", maskingMagic, repoID, gen, key[:], mac)
}

func parseMasking(object string, b []byte, data *age.X25519Identity, repoID string, gen int) ([32]byte, error) {
	var key [32]byte
	corrupt := func(why string) error { return &CorruptError{Object: object, Reason: why} }
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 5 || lines[0] != maskingMagic {
		return key, corrupt("not a masking key object of a version this coffer reads")
	}
	want := []string{"repository " + repoID, fmt.Sprintf("generation %d", gen)}
	if lines[1] != want[0] || lines[2] != want[1] {
		return key, corrupt("it belongs to another repository or key generation")
	}
	k, err := hex.DecodeString(strings.TrimPrefix(lines[3], "key "))
	if err != nil || len(k) != 32 || !strings.HasPrefix(lines[3], "key ") {
		return key, corrupt("its key is not 64 hex digits")
	}
	mac, err := hex.DecodeString(strings.TrimPrefix(lines[4], "mac "))
	if err != nil || !hmac.Equal(mac, maskingMAC(data, repoID, gen, k)) {
		return key, corrupt("it is not authenticated by the repository key: someone other than an operator wrote it; " +
			"restore the object from a copy you trust, or remove it and make a new masking key (pseudonyms will then differ from earlier copies')")
	}
	copy(key[:], k)
	return key, nil
}

// MaskingKey returns the repository's masking key, decrypted with the
// operator's identity and authenticated; ErrNoMaskingKey when there is none.
func (r *Repo) MaskingKey(ctx context.Context) ([32]byte, error) {
	data, ok := r.data.(*age.X25519Identity)
	if r.data == nil || !ok {
		return [32]byte{}, ErrNeedIdentity
	}
	gen := r.cfg.Gen()
	name := MaskingKeyObject(gen)
	ct, err := readBounded(ctx, r.be, name, MaxSmallMeta)
	if isNotFound(err) {
		return [32]byte{}, ErrNoMaskingKey
	}
	if err != nil {
		return [32]byte{}, err
	}
	pt, err := decrypt(name, ct, data)
	if err != nil {
		return [32]byte{}, err
	}
	return parseMasking(name, pt, data, r.cfg.ID, gen)
}

// CreateMaskingKey makes the repository's masking key, encrypted to the
// operators. It refuses when one exists: replacing it would change every
// pseudonym.
func (r *Repo) CreateMaskingKey(ctx context.Context, operators []age.Recipient) ([32]byte, error) {
	var key [32]byte
	if _, err := r.MaskingKey(ctx); !errors.Is(err, ErrNoMaskingKey) {
		if err == nil {
			err = errors.New("the repository already has a masking key")
		}
		return key, err
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, err
	}
	data := r.data.(*age.X25519Identity)
	return key, r.putMasking(ctx, generation{gen: r.cfg.Gen(), data: data}, key, operators)
}

func (r *Repo) putMasking(ctx context.Context, g generation, key [32]byte, operators []age.Recipient) error {
	name := MaskingKeyObject(g.gen)
	// To the operators (so that age alone recovers it) and to the
	// generation's repository key, which every operator's restore holds.
	ct, err := encrypt(marshalMasking(g.data, r.cfg.ID, g.gen, key), append([]age.Recipient{g.data.Recipient()}, operators...)...)
	if err != nil {
		return fmt.Errorf("encrypt %s to the operators: %w", name, err)
	}
	return r.be.Put(ctx, name, ct, r.putOptions())
}

// carryMasking is the masking key to carry into rewritten key objects:
// nil when the repository has none.
func (r *Repo) carryMasking(ctx context.Context) (*[32]byte, error) {
	k, err := r.MaskingKey(ctx)
	if errors.Is(err, ErrNoMaskingKey) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the masking key, which a change of keys must carry: %w", err)
	}
	return &k, nil
}
