package auditlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/repository"
)

// operatorEvents are the events only an operator (the repository key) can
// perform: their records must be signed once signing has begun.
var operatorEvents = map[string]bool{"init": true, "restore": true, "drill": true, "key-change": true}

// OperatorEvent reports whether event is one only an operator performs.
func OperatorEvent(event string) bool { return operatorEvents[event] }

// Input is what Verify checks.
type Input struct {
	Records   []*repository.AuditRecord // Repo.AuditLog's records, in name order
	Problems  []repository.Problem      // Repo.AuditLog's problems
	Snapshots []*repository.Snapshot    // every snapshot, to cross-check the heads they saw
	// Key is the operators' audit key; nil without an identity, in which
	// case signatures cannot be checked.
	Key ed25519.PublicKey
	// Pin is this machine's state for the repository; nil when it has
	// none (no identity, or never verified).
	Pin *Pin
}

// Report is what Verify found and proved.
type Report struct {
	Records  int                  `json:"records"`
	Problems []repository.Problem `json:"problems"`
	// Previous is the head verified before; nil on a first verification.
	Previous *Head `json:"previous,omitempty"`
	// Since is the number of records after Previous.
	Since int `json:"since"`
	// SignaturesChecked is false without the operators' audit key.
	SignaturesChecked bool `json:"signatures_checked"`
	// AuditKey is the operators' audit key the signatures were checked
	// against (hex), when they were.
	AuditKey string `json:"audit_key,omitempty"`
	// AuditKeys are the audit keys accepted (hex): AuditKey first, then
	// each key an endorsed rotation replaced, for the records before it.
	AuditKeys []string `json:"audit_keys,omitempty"`
	// Rotations is the number of endorsed key rotations in the log.
	Rotations int `json:"rotations"`
	// Signed is the number of records whose operator signature verified
	// (or, without the key, that carry one).
	Signed int `json:"signed"`
	// Legacy is the number of unsigned operator records accepted because
	// they were written before signing began.
	Legacy int `json:"legacy"`
	// Written is the number of records this machine wrote since Previous,
	// all found.
	Written int `json:"written"`
	// Witnessed is the number of snapshots that name the head they saw.
	Witnessed int `json:"witnessed"`
	// Head is the log's head now (nil when the log is empty): the next
	// Previous once the report has no problems.
	Head *Head `json:"head,omitempty"`
}

// Verify checks the audit log against the pinned head, the records this
// machine wrote, the operators' signatures and the snapshots' witnessed
// heads. It reports every problem; a log without problems is intact as far
// as Report says.
func Verify(in Input) *Report {
	rep := &Report{Records: len(in.Records), Problems: append([]repository.Problem{}, in.Problems...), SignaturesChecked: in.Key != nil}
	if in.Key != nil {
		rep.AuditKey = hex.EncodeToString(in.Key)
	}
	add := func(object, format string, args ...any) {
		rep.Problems = append(rep.Problems, repository.Problem{Object: object, Reason: fmt.Sprintf(format, args...)})
	}
	recs := in.Records
	byID := map[string]*repository.AuditRecord{}
	for _, a := range recs {
		byID[a.ID().String()] = a
	}
	headIdx := checkHead(in, rep, add)

	// Signatures: records that carry one must verify under the audit key
	// of their time; operator actions after the first signed record, or
	// after the pinned head, must carry one.
	firstSigned := -1
	if in.Key == nil {
		for _, a := range recs {
			if a.Signed() {
				rep.Signed++
			}
		}
	} else {
		s := checkSignatures(recs, in.Key)
		rep.Problems = append(rep.Problems, s.problems...)
		rep.Signed, firstSigned = s.signed, s.first
		rep.AuditKeys, rep.Rotations = s.keys(), len(s.spans)-1
	}
	if in.Key != nil {
		for i, a := range recs {
			if a.Signed() || !OperatorEvent(a.Event) {
				continue
			}
			if (firstSigned >= 0 && i > firstSigned) || (headIdx >= 0 && i > headIdx) {
				add(a.Name(), "claims a %s by %s@%s at %s but is not signed by the operators' audit key: a writer-key holder forged it (or an operator ran a coffer that does not sign: upgrade it)",
					a.Event, a.Actor, a.Host, a.Time.Format(time.RFC3339))
				continue
			}
			rep.Legacy++
		}
	}

	if in.Pin != nil {
		for _, w := range in.Pin.Written {
			if byID[w.ID] == nil {
				add("audit/…-"+w.ID, "the %s record this machine wrote at %s is gone: it was deleted", w.Event, w.Time.Local().Format(time.DateTime))
				continue
			}
			rep.Written++
		}
	}

	backups := map[string]bool{}
	for _, a := range recs {
		if a.Event == "backup" && a.Snapshot != "" {
			backups[a.Snapshot] = true
		}
	}
	for _, s := range in.Snapshots {
		if s.AuditHead == "" {
			continue // written before snapshots witnessed the log
		}
		rep.Witnessed++
		name := "snapshots/" + s.ID().String()
		if byID[s.AuditHead] == nil {
			add(name, "was written at %s when audit record %.8s was the newest; that record is gone: records were deleted", s.Time.Local().Format(time.DateTime), s.AuditHead)
		}
		if !backups[s.ID().String()] {
			add(name, "has no backup record in the audit log: it was deleted (or the backup could not append it, which that backup's output said)")
		}
	}

	if n := len(recs); n > 0 {
		last := recs[n-1]
		rep.Head = &Head{ID: last.ID().String(), Name: last.Name(), Count: n, Hash: hashNames(recs)}
	}
	return rep
}

// checkHead checks the pinned head: it and everything before it unchanged,
// and every later record descending from it. It returns the head's index
// in the records, or -1.
func checkHead(in Input, rep *Report, add func(object, format string, args ...any)) int {
	if in.Pin == nil || in.Pin.Head == nil {
		return -1
	}
	h, recs := in.Pin.Head, in.Records
	rep.Previous = h
	when := h.Verified.Local().Format(time.DateTime)
	idx, before := -1, 0
	for i, a := range recs {
		if a.Name() <= h.Name {
			before++
		}
		if a.Name() == h.Name && a.ID().String() == h.ID {
			idx = i
		}
	}
	if idx < 0 {
		add(h.Name, "the newest record when you verified on %s is gone (%d of the %d records up to it remain): records were deleted, or the log was wiped or rolled back", when, before, h.Count)
		return -1
	}
	if idx+1 != h.Count || hashNames(recs[:idx+1]) != h.Hash {
		add(h.Name, "the %d records up to the one you verified on %s are now %d, or have other names: records before it were inserted, deleted or replaced", h.Count, when, idx+1)
	}
	rep.Since = len(recs) - idx - 1
	extends := map[string]bool{h.ID: true}
	headPrev := recs[idx].Prev
	for _, a := range recs[idx+1:] {
		// A record appended at the same moment as the head names the
		// head's predecessor: the fork that concurrent appends make.
		if extends[a.Prev] || (headPrev != "" && a.Prev == headPrev) {
			extends[a.ID().String()] = true
			continue
		}
		add(a.Name(), "is newer than the record you verified on %s but does not descend from it (it names %.8s): the log was forked or rewritten", when, a.Prev)
	}
	return idx
}

// hashNames is the hex SHA-256 of the records' names, each followed by a
// newline.
func hashNames(recs []*repository.AuditRecord) string {
	h := sha256.New()
	for _, a := range recs {
		h.Write([]byte(a.Name() + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
