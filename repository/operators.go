package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/age"
)

// SetOperators re-encrypts the repository key and the writer key to a new
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
	for _, obj := range []struct {
		name  string
		plain []byte
	}{{RepositoryKeyObject, []byte(dataKey.String() + "\n")}, {WriterKeyObject, r.wk.Marshal()}} {
		ct, err := encrypt(obj.plain, recipients...)
		if err != nil {
			return fmt.Errorf("encrypt %s to the operators: %w", obj.name, err)
		}
		if err := r.be.Put(ctx, obj.name, ct, r.putOptions()); err != nil {
			return err
		}
	}
	cfg := *r.cfg
	cfg.Operators = names
	cfg.MAC = cfg.computeMAC(r.wk)
	b, _ := json.MarshalIndent(&cfg, "", "  ")
	if err := r.be.Put(ctx, ConfigObject, append(b, '\n'), r.putOptions()); err != nil {
		return err
	}
	r.cfg = &cfg
	return nil
}
