package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
)

// A repository's keys have generations: `coffer key rotate` makes a new
// repository key, metadata key and MAC key (generation N+1) and keeps the
// earlier generations' keys stored until nothing encrypted to them is
// left (see docs/format.md, "Key rotation").

// KeyObjects returns the names of a generation's two key objects.
// Generation 1 keeps the names of repositories made before rotation.
func KeyObjects(gen int) (repository, writer string) {
	if gen <= 1 {
		return RepositoryKeyObject, WriterKeyObject
	}
	return fmt.Sprintf("keys/g%d/repository.age", gen), fmt.Sprintf("keys/g%d/writer.age", gen)
}

// generation is an earlier generation's keys, as an operator holds them
// while packs or private parts encrypted to them remain.
type generation struct {
	gen  int
	data *age.X25519Identity // the repository identity
	wk   *WriterKey
}

// dataIdentities returns the repository identities that decrypt data:
// the current generation's first.
func (r *Repo) dataIdentities() []age.Identity {
	ids := []age.Identity{r.data}
	for _, g := range r.old {
		ids = append(ids, g.data)
	}
	return ids
}

// metaIdentities returns the identities that decrypt metadata: the
// current writer key's, then (with an operator's identity) the earlier
// generations', for objects a rotation has not sealed again yet.
func (r *Repo) metaIdentities() []age.Identity {
	ids := []age.Identity{r.wk.Metadata}
	for _, g := range r.old {
		ids = append(ids, g.wk.Metadata)
	}
	return ids
}

// keyOpener decrypts the repository's key objects with operator identities.
type keyOpener struct {
	ctx       context.Context
	r         *Repo
	ids       []age.Identity
	operators []string
}

func (o keyOpener) open(name string) ([]byte, error) {
	ct, err := readBounded(o.ctx, o.r.be, name, MaxSmallMeta)
	if err != nil {
		return nil, err
	}
	pt, err := decrypt(name, ct, o.ids...)
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return nil, &WrongIdentityError{Object: name, Operators: o.operators, Err: err}
	}
	return pt, err
}

// generation decrypts generation gen's keys. wk, when set, is used
// instead of the stored writer key.
func (o keyOpener) generation(gen int, wk *WriterKey) (*generation, error) {
	repoObj, writerObj := KeyObjects(gen)
	keyText, err := o.open(repoObj)
	if err != nil {
		return nil, err
	}
	data, err := age.ParseX25519Identity(strings.TrimSpace(string(keyText)))
	if err != nil {
		return nil, &CorruptError{Object: repoObj, Reason: "not an age identity"}
	}
	given := wk != nil
	if !given {
		b, err := o.open(writerObj)
		if err != nil {
			return nil, err
		}
		if wk, err = ParseWriterKey(b, writerObj); err != nil {
			return nil, err
		}
	}
	if wk.Recipient.String() != data.Recipient().String() {
		if given && gen > 1 {
			return nil, &RotatedError{Repository: o.r.cfg.ID, Generation: gen, Fingerprint: wk.Fingerprint()}
		}
		return nil, &CorruptError{Object: writerObj, Reason: "its recipient does not match " + repoObj}
	}
	if wk.RepositoryID != o.r.cfg.ID {
		return nil, &CorruptError{Object: writerObj, Reason: "it belongs to another repository"}
	}
	return &generation{gen: gen, data: data, wk: wk}, nil
}

// previous decrypts the keys of the earlier generations config lists.
// They must share the current writer key's chunk secrets: a rotation
// keeps the chunk-id key and the polynomial, so that chunk ids stay
// valid across generations.
func (o keyOpener) previous() ([]generation, error) {
	var out []generation
	for _, gen := range o.r.cfg.Previous {
		g, err := o.generation(gen, nil)
		if err != nil {
			return nil, fmt.Errorf("generation %d of the repository's keys: %w", gen, err)
		}
		if g.wk.ChunkIDKey != o.r.wk.ChunkIDKey || g.wk.Polynomial != o.r.wk.Polynomial {
			_, obj := KeyObjects(gen)
			return nil, &CorruptError{Object: obj, Reason: "its chunk secrets differ from the current writer key's"}
		}
		out = append(out, *g)
	}
	return out, nil
}

// PreviousFingerprints returns the fingerprints of the writer keys of the
// earlier generations still stored (an operator's open only).
func (r *Repo) PreviousFingerprints() []string {
	var out []string
	for _, g := range r.old {
		out = append(out, g.wk.Fingerprint())
	}
	return out
}
