package repository

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"filippo.io/age"
	"github.com/restic/chunker"
)

const writerKeyHeader = "coffer writer key v1"

// WriterKey is the secret a backup host holds: enough to add chunks and
// snapshots and to read metadata, not enough to read data.
type WriterKey struct {
	RepositoryID string               // 32 hex digits
	Recipient    *age.X25519Recipient // the repository key's public half
	Metadata     *age.X25519Identity  // encrypts and decrypts metadata objects
	ChunkIDKey   [32]byte
	MACKey       [32]byte
	Polynomial   chunker.Pol
}

// NewWriterKey generates a writer key for a repository whose data is
// encrypted to recipient.
func NewWriterKey(repositoryID string, recipient *age.X25519Recipient) (*WriterKey, error) {
	meta, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return nil, err
	}
	wk := &WriterKey{RepositoryID: repositoryID, Recipient: recipient, Metadata: meta, Polynomial: pol}
	if _, err := rand.Read(wk.ChunkIDKey[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(wk.MACKey[:]); err != nil {
		return nil, err
	}
	return wk, nil
}

// Marshal encodes the key in the text form of docs/format.md.
func (wk *WriterKey) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, writerKeyHeader)
	fmt.Fprintf(&b, "repository: %s\n", wk.RepositoryID)
	fmt.Fprintf(&b, "recipient: %s\n", wk.Recipient)
	fmt.Fprintf(&b, "metadata-identity: %s\n", wk.Metadata)
	fmt.Fprintf(&b, "chunk-id-key: %x\n", wk.ChunkIDKey)
	fmt.Fprintf(&b, "mac-key: %x\n", wk.MACKey)
	fmt.Fprintf(&b, "polynomial: %016x\n", uint64(wk.Polynomial))
	return b.Bytes()
}

// Fingerprint identifies the key without revealing it: 32 hex digits of
// SHA-256 over its encoding, in groups of four.
func (wk *WriterKey) Fingerprint() string {
	sum := sha256.Sum256(wk.Marshal())
	h := hex.EncodeToString(sum[:16])
	var parts []string
	for i := 0; i < len(h); i += 4 {
		parts = append(parts, h[i:i+4])
	}
	return strings.Join(parts, "-")
}

// MatchesFingerprint reports whether fp (with or without dashes, any case)
// is this key's fingerprint.
func (wk *WriterKey) MatchesFingerprint(fp string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", "")) }
	return hmac.Equal([]byte(norm(fp)), []byte(norm(wk.Fingerprint())))
}

// ChunkHasher returns a new hasher of chunk ids.
func (wk *WriterKey) ChunkHasher() *ChunkHasher {
	return &ChunkHasher{h: hmacSHA256(wk.ChunkIDKey[:])}
}

// ParseWriterKey decodes a writer key file. source names the file in errors.
func ParseWriterKey(data []byte, source string) (*WriterKey, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("writer key %s: %s: it is not a coffer writer key, or it is damaged (use the file `coffer init` wrote, or decrypt keys/writer.age with an operator identity)", source, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != writerKeyHeader {
		return nil, bad("first line is not %q", writerKeyHeader)
	}
	fields := map[string]string{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, bad("malformed line")
		}
		fields[name] = strings.TrimSpace(value)
	}
	wk := &WriterKey{RepositoryID: fields["repository"]}
	if len(wk.RepositoryID) != 32 {
		return nil, bad("repository id missing or malformed")
	}
	var err error
	if wk.Recipient, err = age.ParseX25519Recipient(fields["recipient"]); err != nil {
		return nil, bad("recipient: %v", err)
	}
	if wk.Metadata, err = age.ParseX25519Identity(fields["metadata-identity"]); err != nil {
		return nil, bad("metadata-identity is malformed")
	}
	if err := parseKey32(fields["chunk-id-key"], &wk.ChunkIDKey); err != nil {
		return nil, bad("chunk-id-key: %v", err)
	}
	if err := parseKey32(fields["mac-key"], &wk.MACKey); err != nil {
		return nil, bad("mac-key: %v", err)
	}
	pol, err := strconv.ParseUint(fields["polynomial"], 16, 64)
	if err != nil || !chunker.Pol(pol).Irreducible() {
		return nil, bad("polynomial is missing or not irreducible")
	}
	wk.Polynomial = chunker.Pol(pol)
	return wk, nil
}

func parseKey32(s string, dst *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("want 64 hex digits")
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err
}
