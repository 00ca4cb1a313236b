// Package repository owns coffer's storage format: the config, the keys, chunk
// ids, packs, the index and snapshots. docs/format.md specifies it; this
// package is its only implementation.
package repository

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// ID names a chunk, a pack, an index or a snapshot: 32 bytes shown as 64 hex
// digits.
type ID [32]byte

// String returns the full lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, as shown to people.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zeros.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a 64-digit hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ChunkHasher computes chunk ids. It is not safe for concurrent use; make one
// per goroutine with WriterKey.ChunkHasher.
type ChunkHasher struct{ h hash.Hash }

// Sum returns the id of a chunk's plaintext.
func (c *ChunkHasher) Sum(data []byte) ID {
	c.h.Reset()
	c.h.Write(data)
	var id ID
	c.h.Sum(id[:0])
	return id
}

func sha256ID(data []byte) ID { return ID(sha256.Sum256(data)) }

func macID(key []byte, kind string, plaintext []byte) ID {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{'\n'})
	m.Write(plaintext)
	var id ID
	m.Sum(id[:0])
	return id
}
