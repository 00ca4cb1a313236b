package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/coffer-backup/coffer/auditlog"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

// auditStatePath is where an operator's machine keeps the audit heads it
// verified and the audit key it pinned: beside its identity file, or ""
// when there is no identity file. (Separate from the trust file of pinned
// writer keys, which lives beside the identity too.)
func auditStatePath() string {
	id := os.Getenv("COFFER_IDENTITY_FILE")
	if id == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(id), "coffer-audit-heads.json")
}

// pinAuditKey returns this machine's pin for repo's log, pinning the
// operators' audit key at first use. A pin of another key moves to the
// key now only when the log's rotation records prove that holders of the
// pinned key made the change (auditlog.Pin.AcceptKey); else it is refused.
// recs are the log's records, or nil to load them when needed.
func pinAuditKey(ctx context.Context, st *auditlog.State, repo *repository.Repo, path string, recs []*repository.AuditRecord) (*auditlog.Pin, error) {
	pub, err := repo.AuditPublicKey()
	if err != nil {
		return nil, err
	}
	key := hex.EncodeToString(pub)
	now := time.Now().UTC()
	pin := st.Repositories[repo.Config().ID]
	if pin == nil {
		pin = &auditlog.Pin{AuditKey: key, KeyPinned: now}
		st.Repositories[repo.Config().ID] = pin
		return pin, nil
	}
	if pin.AuditKey == key {
		return pin, nil
	}
	if recs == nil {
		if recs, _, err = repo.AuditLog(ctx); err != nil {
			return nil, err
		}
	}
	pinned, when := pin.AuditKey, pin.KeyPinned
	if err := pin.AcceptKey(recs, pub, now); err != nil {
		return nil, fmt.Errorf("the operators' audit key of repository %s is now %.16s…, but this machine pinned %.16s… on %s (%s), and the audit log does not prove the change (%v): if an operator rotated the keys, the rotation's audit record is missing or not endorsed by the key you pinned; otherwise the repository key (keys/repository.age) was replaced: do not trust this repository until you know why",
			repo.Config().ID, key, pinned, when.Local().Format(time.DateTime), path, err)
	}
	fmt.Fprintf(os.Stderr, "note: the operators' audit key of repository %s was rotated from %.16s… to %.16s…, and the audit log proves that the key this machine pinned endorsed the change: accepting the new key\n",
		repo.Config().ID, pinned, key)
	return pin, nil
}

// maxWritten bounds the records remembered between two verifications.
const maxWritten = 1000

// noteWritten remembers, on an operator's machine, a record it appended,
// so that `audit verify` notices if it disappears. Failures are warnings.
func noteWritten(ctx context.Context, repo *repository.Repo, rec *repository.AuditRecord) {
	path := auditStatePath()
	if path == "" || !repo.CanRead() {
		return
	}
	err := func() error {
		st, err := auditlog.LoadState(path)
		if err != nil {
			return err
		}
		pin, err := pinAuditKey(ctx, st, repo, path, nil)
		if err != nil {
			return err
		}
		pin.Written = append(pin.Written, auditlog.Written{ID: rec.ID().String(), Event: rec.Event, Time: rec.Time})
		if n := len(pin.Written); n > maxWritten {
			pin.Written = pin.Written[n-maxWritten:] // bounded between verifications
		}
		return st.Save(path)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: the audit state of this machine: %s\n", termsafe.Lines(err.Error()))
	}
}
