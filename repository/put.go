package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/storage"
)

// Every object coffer names after its content (packs: the SHA-256 of the
// ciphertext; index, snapshots, locks, prune markers, audit records and
// drill records: the MAC of the plaintext) is stored with a conditional
// put, which never replaces a stored object. Finding the name taken is
// judged by what the name proves (see docs/format.md, "No overwrites").

// putPack stores a pack's ciphertext under its name, never over another
// object. A taken name is success: the name is the SHA-256 of ct, so an
// object stored under it holds exactly ct (finding a second preimage of
// SHA-256 is infeasible, and the name cannot be known before ct exists).
// This is the answer to a retried put whose first attempt was stored.
func (r *Repo) putPack(ctx context.Context, name string, ct []byte, opts storage.PutOptions) error {
	opts.NoOverwrite = true
	err := r.be.Put(ctx, name, ct, opts)
	if errors.Is(err, storage.ErrExists) {
		return nil
	}
	return err
}

// putSealed stores a sealed metadata object of kind, whose id is the MAC of
// its plaintext, under name, never over another object. A taken name is
// success only if the stored object authenticates as the same id: then it
// holds the same plaintext (its ciphertext differs, age encryption being
// randomised), as after a retried put or two hosts writing the same lock.
// Anything else under the name is refused, naming it, and left in place.
func (r *Repo) putSealed(ctx context.Context, kind, name string, id ID, ct []byte, opts storage.PutOptions) error {
	opts.NoOverwrite = true
	err := r.be.Put(ctx, name, ct, opts)
	if !errors.Is(err, storage.ErrExists) {
		return err
	}
	stored, rerr := readBounded(ctx, r.be, name, metaMax(kind))
	if rerr == nil {
		_, rerr = r.openMeta(ctx, kind, name, id, stored)
	}
	if rerr == nil {
		return nil
	}
	if isNotFound(rerr) {
		return fmt.Errorf("%s was reported as existing, then not found: retry; if it keeps happening, the store is inconsistent: %w", name, err)
	}
	return fmt.Errorf("%s already exists in %s and is not this %s (%v): coffer never replaces a stored object; "+
		"if nobody else writes this repository, treat it as tampering, keep the object for inspection and run `coffer check`: %w",
		name, r.be.Location(), kind, rerr, storage.ErrExists)
}
