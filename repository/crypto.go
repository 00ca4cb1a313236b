package repository

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"io"

	"filippo.io/age"
)

func hmacSHA256(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

// encrypt returns plaintext as an age file to recipients.
func encrypt(plaintext []byte, recipients ...age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decrypt opens an age file. object names it in errors.
func decrypt(object string, ciphertext []byte, identities ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ciphertext), identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, err
		}
		return nil, &CorruptError{Object: object, Reason: "cannot decrypt", Err: err}
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, &CorruptError{Object: object, Reason: "decryption failed (truncated or altered)", Err: err}
	}
	return out, nil
}

// sealMeta encodes a metadata object: the name is its MAC, the content
// zstd-compressed and encrypted to the metadata recipient.
func (wk *WriterKey) sealMeta(kind string, plaintext []byte) (ID, []byte, error) {
	id := macID(wk.MACKey[:], kind, plaintext)
	ct, err := encrypt(compressMeta(nil, plaintext), wk.Metadata.Recipient())
	return id, ct, err
}
