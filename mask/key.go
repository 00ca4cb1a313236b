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

// prf is a keyed pseudo-random function (HMAC-SHA256) for one purpose (a
// kind of pseudonym, the tag that recognises them, canary records): a
// separate key is derived per purpose, so that two purposes never share
// outputs. It keeps its keyed hash to reuse: not safe for concurrent use.
type prf struct {
	key  []byte
	h    hash.Hash
	buf  []byte
	in   []byte // the input of stream, reused
	st   stream // reused by every call of stream
	memo *memo  // pseudonyms of recent values, made on first use
}

func (k Key) derive(purpose string) *prf {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("coffer mask v1\x00" + purpose))
	key := m.Sum(nil)
	return &prf{key: key, h: hmac.New(sha256.New, key)}
}

// sum is the PRF of in.
func (p *prf) sum(in []byte) []byte {
	p.h.Reset()
	p.h.Write(in)
	p.buf = p.h.Sum(p.buf[:0])
	return p.buf
}

// stream is the pseudo-random sequence of one input: the PRF of the input
// and the attempt, then as many SHA-256 blocks of it and a counter as are
// needed (a fixed construction, so pseudonyms never change with releases).
type stream struct {
	seed [32]byte
	blk  [32]byte // the current SHA-256 block
	buf  []byte   // what is left of seed or blk
	ctr  uint32
	tmp  [36]byte
}

// stream returns the stream of in and attempt. It is the prf's own, valid
// until the next call.
func (p *prf) stream(in string, attempt int) *stream {
	s := &p.st
	s.ctr = 0
	p.in = binary.BigEndian.AppendUint32(append(p.in[:0], in...), uint32(attempt))
	p.h.Reset()
	p.h.Write(p.in)
	p.buf = p.h.Sum(p.buf[:0])
	copy(s.seed[:], p.buf)
	s.buf = s.seed[:]
	return s
}

func (s *stream) refill() {
	copy(s.tmp[:32], s.seed[:])
	binary.BigEndian.PutUint32(s.tmp[32:], s.ctr)
	s.ctr++
	s.blk = sha256.Sum256(s.tmp[:])
	s.buf = s.blk[:]
}

func (s *stream) next() byte {
	if len(s.buf) == 0 {
		s.refill()
	}
	b := s.buf[0]
	s.buf = s.buf[1:]
	return b
}

// intn returns a number in [0, n) from 4 bytes, with negligible bias for
// the small n used here.
func (s *stream) intn(n int) int {
	v := uint32(s.next())<<24 | uint32(s.next())<<16 | uint32(s.next())<<8 | uint32(s.next())
	return int(v % uint32(n))
}
