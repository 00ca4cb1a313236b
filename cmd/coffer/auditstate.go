package main

import (
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
// operators' audit key at first use. A pin of another key is refused: the
// repository key was replaced.
func pinAuditKey(st *auditlog.State, repo *repository.Repo, path string) (*auditlog.Pin, error) {
	pub, err := repo.AuditPublicKey()
	if err != nil {
		return nil, err
	}
	key := hex.EncodeToString(pub)
	pin := st.Repositories[repo.Config().ID]
	if pin == nil {
		pin = &auditlog.Pin{AuditKey: key, KeyPinned: time.Now().UTC()}
		st.Repositories[repo.Config().ID] = pin
		return pin, nil
	}
	if pin.AuditKey != key {
		return nil, fmt.Errorf("the operators' audit key of repository %s is now %.16s…, but this machine pinned %.16s… on %s (%s): the repository key (keys/repository.age) was replaced; do not trust this repository until you know why, and after a deliberate key rotation remove the repository's entry from that file",
			repo.Config().ID, key, pin.AuditKey, pin.KeyPinned.Local().Format(time.DateTime), path)
	}
	return pin, nil
}

// maxWritten bounds the records remembered between two verifications.
const maxWritten = 1000

// noteWritten remembers, on an operator's machine, a record it appended,
// so that `audit verify` notices if it disappears. Failures are warnings.
func noteWritten(repo *repository.Repo, rec *repository.AuditRecord) {
	path := auditStatePath()
	if path == "" || !repo.CanRead() {
		return
	}
	err := func() error {
		st, err := auditlog.LoadState(path)
		if err != nil {
			return err
		}
		pin, err := pinAuditKey(st, repo, path)
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
