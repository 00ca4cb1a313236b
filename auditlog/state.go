// Package auditlog verifies a repository's audit log against what an
// operator's machine saw before: the head it last verified, the records it
// wrote, the operators' audit key it pinned, and the heads that snapshots
// witnessed. The record format itself is the repository package's.
package auditlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// Head is the newest audit record an operator verified, with what came
// before it: Count records up to and including it (in name order), whose
// names hash to Hash.
type Head struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Count    int       `json:"count"`
	Hash     string    `json:"hash"` // hex SHA-256 of the names, each followed by "\n"
	Verified time.Time `json:"verified"`
}

// Written is a record this machine appended since its last verification.
type Written struct {
	ID    string    `json:"id"`
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
}

// Pin is what an operator's machine keeps about one repository's log.
type Pin struct {
	AuditKey  string    `json:"audit_key"` // hex Ed25519 public key, pinned at first use or moved by a proven rotation
	KeyPinned time.Time `json:"key_pinned"`
	// PreviousKeys are the keys this pin held before rotations moved it
	// (hex, oldest first).
	PreviousKeys  []string  `json:"previous_audit_keys,omitempty"`
	FirstVerified time.Time `json:"first_verified,omitzero"`
	Head          *Head     `json:"head,omitempty"`
	Written       []Written `json:"written,omitempty"`
}

// State is the local audit state file: one Pin per repository id.
type State struct {
	Version      int             `json:"version"`
	Repositories map[string]*Pin `json:"repositories"`
}

// LoadState reads the state file at path; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: 1, Repositories: map[string]*Pin{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the audit state %s: %w", path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the audit state %s is damaged (%v): restore it from a backup of this machine; removing it makes the next `coffer audit verify` a first verification, which proves less", path, err)
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("the audit state %s has version %d, newer than this coffer understands: upgrade coffer", path, s.Version)
	}
	if s.Repositories == nil {
		s.Repositories = map[string]*Pin{}
	}
	return &s, nil
}

// Save writes the state to path atomically, mode 0600.
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save the audit state: %w", err)
	}
	err = atomicfile.Write(path, atomicfile.Options{Perm: 0o600}, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("save the audit state %s: %w", path, err)
	}
	return nil
}
