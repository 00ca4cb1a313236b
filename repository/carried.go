package repository

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage"
)

// A key rotation seals every metadata object again, under its old name,
// to the new metadata key. Its name is the MAC of its plaintext under an
// earlier generation's MAC key, which the new writer key does not hold;
// so the rotation lists each such object with the SHA-256 of its
// plaintext in a carried list, which config names by its own SHA-256. An
// object is authentic when its name is its MAC under the current MAC key,
// or when the carried list names it with its plaintext's hash. Only
// config (which no writer may overwrite, and which the current MAC key
// authenticates) can change the list, so nothing an earlier generation's
// key holder writes later is accepted.

// carriedFile is the plaintext of a carried list.
type carriedFile struct {
	versioned
	Generation int `json:"generation"` // the generation that wrote it
	// Writer is the fingerprint of that generation's writer key: it binds
	// the list to the keys it was made for (and two attempts at one
	// rotation to different names).
	Writer string `json:"writer"`
	// Objects maps an object name to the SHA-256 (hex) of the plaintexts
	// it may hold: one, or two while a rotation seals it again.
	Objects map[string][]string `json:"objects"`
}

type carriedList struct {
	objects map[string][]string
}

// carriedObject is the name of the carried list whose plaintext has this
// SHA-256.
func carriedObject(sum string) string { return "keys/carried-" + sum }

// accepts reports whether the list names object with this plaintext.
func (c *carriedList) accepts(object string, plain []byte) bool {
	if c == nil {
		return false
	}
	sum := sha256.Sum256(plain)
	h := hex.EncodeToString(sum[:])
	return slices.ContainsFunc(c.objects[object], func(s string) bool { return hmac.Equal([]byte(s), []byte(h)) })
}

// carriedMu serializes the first reads of carried lists.
var carriedMu sync.Mutex

// carriedList returns the carried list config names (nil if none). It is
// read when first needed: an object whose name is not its MAC under the
// current keys, or a WAL object of an earlier generation. So opening a
// repository, and every wal-push, reads no list.
func (r *Repo) carriedList(ctx context.Context) (*carriedList, error) {
	carriedMu.Lock()
	defer carriedMu.Unlock()
	if r.carriedRead || r.cfg == nil || r.cfg.Carried == nil {
		return r.carried, nil
	}
	c, err := r.readCarried(ctx, r.cfg.Carried)
	if err != nil {
		return nil, fmt.Errorf("the list of objects the key rotations carried over: %w", err)
	}
	r.carried, r.carriedRead = c, true
	return c, nil
}

// setCarriedList is carriedList's value from now on.
func (r *Repo) setCarriedList(objects map[string][]string) {
	carriedMu.Lock()
	defer carriedMu.Unlock()
	r.carried, r.carriedRead = &carriedList{objects: objects}, true
}

// readCarried reads and checks the carried list ref names.
func (r *Repo) readCarried(ctx context.Context, ref *CarriedRef) (*carriedList, error) {
	ct, err := readBounded(ctx, r.be, ref.Object, MaxLargeMeta)
	if err != nil {
		return nil, err
	}
	compressed, err := decrypt(ref.Object, ct, r.wk.Metadata)
	if err != nil {
		return nil, &CorruptError{Object: ref.Object, Reason: "not encrypted to the current metadata key", Err: err}
	}
	plain, err := decompressMeta(compressed)
	if err != nil {
		return nil, &CorruptError{Object: ref.Object, Reason: "decompression refused", Err: err}
	}
	if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, &CorruptError{Object: ref.Object, Reason: "its content is not the one config names (altered)"}
	}
	var f carriedFile
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, &CorruptError{Object: ref.Object, Reason: "malformed JSON", Err: err}
	}
	if err := f.check(ref.Object); err != nil {
		return nil, err
	}
	if f.Generation != r.cfg.Gen() || f.Writer != r.wk.Fingerprint() {
		return nil, &CorruptError{Object: ref.Object, Reason: "it was made for other keys"}
	}
	return &carriedList{objects: f.Objects}, nil
}

// saveCarried stores a carried list and returns config's reference to it.
// A taken name counts as stored only if it holds this list.
func (r *Repo) saveCarried(ctx context.Context, objects map[string][]string) (*CarriedRef, error) {
	plain, err := json.Marshal(carriedFile{versioned: versioned{FormatVersion}, Generation: r.cfg.Gen(), Writer: r.wk.Fingerprint(), Objects: objects})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(plain)
	ref := &CarriedRef{SHA256: hex.EncodeToString(sum[:])}
	ref.Object = carriedObject(ref.SHA256)
	ct, err := encrypt(compressMeta(nil, plain), r.wk.Metadata.Recipient())
	if err != nil {
		return nil, err
	}
	opts := r.putOptions()
	opts.NoOverwrite = true
	if err := r.be.Put(ctx, ref.Object, ct, opts); errors.Is(err, storage.ErrExists) {
		if _, rerr := r.readCarried(ctx, ref); rerr != nil {
			return nil, fmt.Errorf("save the carried list: %s exists and is not this list (%v): %w", ref.Object, rerr, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("save the carried list: %w", err)
	}
	return ref, nil
}

// openMeta decrypts and authenticates a metadata object stored as object:
// its id must be the MAC of its plaintext, or the carried list must name
// it with its plaintext's hash.
func (r *Repo) openMeta(ctx context.Context, kind, object string, id ID, ciphertext []byte) ([]byte, error) {
	compressed, err := decrypt(object, ciphertext, r.metaIdentities()...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if !errors.As(err, &nm) {
			return nil, err
		}
		carried, lerr := r.carriedList(ctx)
		if lerr != nil {
			return nil, lerr
		}
		if carried != nil && carried.objects[object] != nil {
			if r.cfg.Carried.Pending {
				return nil, &CorruptError{Object: object, Reason: "sealed to an earlier generation of the repository's keys: a key rotation has not finished sealing it again; run `coffer key rotate` with an operator's identity to finish it", Err: err}
			}
			return nil, &CorruptError{Object: object, Reason: "not sealed to the current keys although the last key rotation sealed it again: it was replaced (forged with earlier keys, or restored from an old version)", Err: err}
		}
		return nil, &CorruptError{Object: object, Reason: "not encrypted to this repository's metadata key (written by another repository, or forged)", Err: err}
	}
	plaintext, err := decompressMeta(compressed)
	if err != nil {
		return nil, &CorruptError{Object: object, Reason: "decompression refused", Err: err}
	}
	if got := macID(r.wk.MACKey[:], kind, plaintext); hmac.Equal(got[:], id[:]) {
		return plaintext, nil
	}
	carried, err := r.carriedList(ctx)
	if err != nil {
		return nil, err
	}
	if carried.accepts(object, plaintext) {
		return plaintext, nil
	}
	return nil, &CorruptError{Object: object, Reason: fmt.Sprintf("%s is not authenticated by the writer key (forged, altered or renamed)", kind)}
}

// acceptsSum reports whether the list names object with a plaintext of
// this SHA-256 (hex).
func (c *carriedList) acceptsSum(object, h string) bool {
	if c == nil {
		return false
	}
	return slices.ContainsFunc(c.objects[object], func(s string) bool { return hmac.Equal([]byte(s), []byte(h)) })
}
