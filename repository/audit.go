package repository

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// AuditRecord is one event in the repository's audit log: who did what,
// from which host, with which snapshot, to where. Records form a chain:
// each names the id of the record before it, and an id is the record's
// MAC, so editing or removing a record that has a successor is detected.
// A record written with an operator's identity is also signed with the
// operators' audit key (version 2), which no writer-key holder has.
type AuditRecord struct {
	Version  int               `json:"version"`
	Time     time.Time         `json:"time"`
	Event    string            `json:"event"` // init, backup, restore, drill, forget, prune, check
	Actor    string            `json:"actor"` // the operating-system user
	Host     string            `json:"host"`
	Outcome  string            `json:"outcome"` // ok, failed
	Snapshot string            `json:"snapshot,omitempty"`
	Source   string            `json:"source,omitempty"`
	Detail   map[string]string `json:"detail,omitempty"` // e.g. target, deleted, verdict
	Prev     string            `json:"prev"`             // id of the previous record; empty for the first
	// Signer is the operators' audit key (hex Ed25519 public key) that
	// signed a version 2 record; empty in unsigned (version 1) records.
	Signer string `json:"signer,omitempty"`

	id   ID
	name string
	body []byte // version 2: the signed JSON
	sig  []byte // version 2: its signature
}

// ID returns the record's id.
func (a *AuditRecord) ID() ID { return a.id }

// Name returns the record's object name, audit/TIME-ID.
func (a *AuditRecord) Name() string { return a.name }

// Signed reports whether the record carries an operator signature (it may
// still fail CheckSignature).
func (a *AuditRecord) Signed() bool { return a.sig != nil }

// auditName is the record's object name: its time, so that the newest
// record is the last name listed, and its id, which authenticates it.
func auditName(t time.Time, id ID) string {
	return fmt.Sprintf("audit/%020d-%s", t.UnixNano(), id)
}

func parseAuditName(name string) (int64, ID, error) {
	rest := strings.TrimPrefix(name, "audit/")
	ts, hexID, ok := strings.Cut(rest, "-")
	var n int64
	if _, err := fmt.Sscanf(ts, "%d", &n); err != nil || !ok {
		return 0, ID{}, fmt.Errorf("not an audit record name")
	}
	id, err := ParseID(hexID)
	return n, id, err
}

// AppendAudit adds a record after the newest one. Two processes appending
// at once may both name the same predecessor; VerifyAudit accepts such a
// fork and still detects edits and removals.
func (r *Repo) AppendAudit(ctx context.Context, a *AuditRecord) error {
	names, err := r.auditNames(ctx)
	if err != nil {
		return err
	}
	a.Time = r.clock().UTC()
	if a.Prev == "" && len(names) > 0 {
		_, prev, _ := parseAuditName(names[len(names)-1])
		a.Prev = prev.String()
	}
	plain, err := r.encodeAudit(a)
	if err != nil {
		return err
	}
	id, ct, err := r.wk.sealMeta("audit", plain)
	if err != nil {
		return err
	}
	a.id, a.name = id, auditName(a.Time, id)
	if err := r.putSealed(ctx, "audit", a.name, id, ct, r.putOptions()); err != nil {
		return fmt.Errorf("append to the audit log: %w", err)
	}
	return nil
}

// AuditHead returns the id of the newest audit record, or the zero ID when
// the log is empty. A backup records it in its snapshot.
func (r *Repo) AuditHead(ctx context.Context) (ID, error) {
	names, err := r.auditNames(ctx)
	if err != nil || len(names) == 0 {
		return ID{}, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		if _, id, err := parseAuditName(names[i]); err == nil {
			return id, nil
		}
	}
	return ID{}, nil
}

func (r *Repo) auditNames(ctx context.Context) ([]string, error) {
	var names []string
	err := r.be.List(ctx, "audit/", func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the audit log in %s: %w", r.be.Location(), err)
	}
	sort.Strings(names)
	return names, nil
}

// AuditLog returns the records, oldest first, and the problems found:
// records that fail authentication or whose predecessor is missing.
func (r *Repo) AuditLog(ctx context.Context) ([]*AuditRecord, []Problem, error) {
	names, err := r.auditNames(ctx)
	if err != nil {
		return nil, nil, err
	}
	var recs []*AuditRecord
	var problems []Problem
	byID := map[string]*AuditRecord{}
	for _, name := range names {
		a, err := r.loadAudit(ctx, name)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				return nil, nil, err
			}
			problems = append(problems, Problem{Object: name, Reason: ce.Reason + ": the record was altered or forged"})
			continue
		}
		recs = append(recs, a)
		byID[a.id.String()] = a
	}
	for i, a := range recs {
		switch {
		case a.Prev == "" && i > 0:
			problems = append(problems, Problem{Object: a.name, Reason: "names no previous record but is not the first: the log was rewritten"})
		case a.Prev != "" && byID[a.Prev] == nil:
			problems = append(problems, Problem{Object: a.name, Reason: fmt.Sprintf("names previous record %s, which is missing or was altered: a record was removed or edited", a.Prev[:8])})
		}
	}
	return recs, problems, nil
}

func (r *Repo) loadAudit(ctx context.Context, name string) (*AuditRecord, error) {
	ts, id, err := parseAuditName(name)
	if err != nil {
		return nil, &CorruptError{Object: name, Reason: "its name is not an audit record's"}
	}
	ct, err := readBounded(ctx, r.be, name, MaxSmallMeta)
	if err != nil {
		return nil, err
	}
	plain, err := r.openMeta(ctx, "audit", name, id, ct)
	if err != nil {
		return nil, err
	}
	a, err := decodeAudit(name, plain)
	if err != nil {
		return nil, err
	}
	if a.Time.UnixNano() != ts {
		return nil, &CorruptError{Object: name, Reason: "its name's time differs from its content's"}
	}
	a.id, a.name = id, name
	return a, nil
}

// signerHex is how a record names the key that signed it.
func signerHex(pub ed25519.PublicKey) string { return hex.EncodeToString(pub) }
