package mask

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
)

// KeySize is the size of a masking key.
const KeySize = 32

// Key is a repository's masking key: every pseudonym is a keyed function of
// the original value under it, so the same value gives the same pseudonym
// in every table, every night, and no one without the key can compute or
// invert one.
type Key [KeySize]byte

// NewKey makes a random masking key.
func NewKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// ParseKey reads a key from its hex form.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeySize {
		return k, errors.New("not a masking key (64 hex digits)")
	}
	copy(k[:], b)
	return k, nil
}

// String is the key's hex form.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Fingerprint names the key without revealing it.
func (k Key) Fingerprint() string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("coffer masking key fingerprint"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// prf is a keyed pseudo-random function for one purpose (a kind of
// pseudonym, the tag that recognises them, canaries): a separate key is
// derived per purpose, so that two purposes never share outputs.
type prf struct{ key []byte }

func (k Key) derive(purpose string) prf {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("coffer mask v1\x00" + purpose))
	return prf{key: m.Sum(nil)}
}

// stream is the pseudo-random bytes of one input, as many as asked.
type stream struct {
	m   hash.Hash
	in  []byte
	ctr uint32
	buf []byte
}

func (p prf) stream(in []byte, attempt int) *stream {
	s := &stream{m: hmac.New(sha256.New, p.key)}
	s.in = binary.BigEndian.AppendUint32(append([]byte(nil), in...), uint32(attempt))
	return s
}

func (s *stream) next() byte {
	if len(s.buf) == 0 {
		s.m.Reset()
		s.m.Write(s.in)
		s.m.Write(binary.BigEndian.AppendUint32(nil, s.ctr))
		s.ctr++
		s.buf = s.m.Sum(nil)
	}
	b := s.buf[0]
	s.buf = s.buf[1:]
	return b
}

// uint64 returns 8 bytes as a number.
func (s *stream) uint64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(s.next())
	}
	return v
}

// intn returns a number in [0, n), with negligible bias for the small n
// used here.
func (s *stream) intn(n int) int { return int(s.uint64() % uint64(n)) }

// sum is the PRF of in, whole.
func (p prf) sum(in []byte) []byte {
	m := hmac.New(sha256.New, p.key)
	m.Write(in)
	return m.Sum(nil)
}
