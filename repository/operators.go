package repository

import (
	"context"
	"errors"

	"filippo.io/age"
)

// SetOperators re-encrypts the repository key, the writer key (of every
// generation still stored) and the masking key to a new
// set of operator recipients (names are their text, kept in config). Only
// the two small key objects and config are rewritten: data stays as it is.
// It needs the repository key (an operator's identity). The keys are
// written before config, so a crash between leaves working keys and a
// config whose operator list is stale, which the next call corrects.
func (r *Repo) SetOperators(ctx context.Context, recipients []age.Recipient, names []string) error {
	if r.data == nil {
		return ErrNeedIdentity
	}
	if len(recipients) == 0 {
		return errors.New("a repository needs at least one operator: add another before removing this one")
	}
	dataKey, ok := r.data.(*age.X25519Identity)
	if !ok {
		return errors.New("the repository key is not an X25519 identity")
	}
	mk, err := r.carryMasking(ctx)
	if err != nil {
		return err
	}
	// Every generation still stored: an earlier one's keys open the packs
	// not yet re-encrypted, and a removed operator must open none of them.
	for _, g := range append([]generation{{gen: r.cfg.Gen(), data: dataKey, wk: r.wk}}, r.old...) {
		if err := r.putKeys(ctx, g, recipients); err != nil {
			return err
		}
		if mk != nil {
			if err := r.putMasking(ctx, g, *mk, recipients); err != nil {
				return err
			}
		}
	}
	cfg := *r.cfg
	cfg.Operators = names
	return r.putConfig(ctx, &cfg)
}
