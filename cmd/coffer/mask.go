package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/coffer-backup/coffer/mask"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// maskRun is what a masked restore adds to a restore into a database.
type maskRun struct {
	masking  *restore.Masking
	key      mask.Key
	detail   map[string]string // for the audit record
	canaries []mask.Canary
	label    string // --for
}

// auditDetail is what the restore's audit record says of the masking: the
// rules, the key's fingerprint, and the canaries sealed under the masking
// key (only operators can read them).
func (m *maskRun) auditDetail(target, snapshot string, now time.Time) (map[string]string, error) {
	d := maps.Clone(m.detail)
	if len(m.canaries) == 0 {
		return d, nil
	}
	sealed, err := mask.SealRecord(m.key, &mask.CanaryRecord{For: m.label, Target: target, Snapshot: snapshot, Time: now.UTC(), Canaries: m.canaries})
	if err != nil {
		return nil, err
	}
	d["canaries"] = fmt.Sprint(len(m.canaries))
	d["canaries_sealed"] = sealed
	return d, nil
}

// loadMasking reads a rules file and the repository's masking key, making
// the key (encrypted to the operators) the first time one is needed.
func loadMasking(ctx context.Context, repo *repository.Repo, path string) (*restore.Masking, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("masking rules: %w", err)
	}
	rules, err := mask.Parse(path, b)
	if err != nil {
		return nil, nil, err
	}
	key, err := maskingKey(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(b)
	detail := map[string]string{"mask": path, "mask_rules_sha256": hex.EncodeToString(sum[:]), "masking_key": mask.Key(key).Fingerprint()}
	return &restore.Masking{Rules: rules, Key: key}, detail, nil
}

func maskingKey(ctx context.Context, repo *repository.Repo) (mask.Key, error) {
	key, err := repo.MaskingKey(ctx)
	if errors.Is(err, repository.ErrNoMaskingKey) {
		rs, perr := parseRecipients(repo.Config().Operators)
		if perr != nil {
			return mask.Key{}, perr
		}
		key, err = repo.CreateMaskingKey(ctx, rs)
		if err != nil {
			return mask.Key{}, fmt.Errorf("make the repository's masking key: %w", err)
		}
	}
	return mask.Key(key), err
}

// masking prepares a masked restore: rules, key, canaries.
func (o *restoreOptions) masking(ctx context.Context, repo *repository.Repo) (*maskRun, error) {
	m, detail, err := loadMasking(ctx, repo, o.mask)
	if err != nil {
		return nil, err
	}
	mr := &maskRun{masking: m, key: m.Key, detail: detail, label: o.canaryFor}
	if o.canaries > 0 {
		if m.Rules.Canaries == nil {
			return nil, fmt.Errorf("restore: --canaries: %s has no canaries section: add one with the table, the e-mail domain you watch and the phone range (docs/masking.md)", o.mask)
		}
		used, err := plantedCanaries(ctx, repo, m.Key)
		if err != nil {
			return nil, err
		}
		if mr.canaries, err = mask.NewCanaries(m.Rules.Canaries, o.canaries, used); err != nil {
			return nil, fmt.Errorf("restore: --canaries: %w", err)
		}
	}
	return mr, nil
}

// plantedCanaries are the canaries of every earlier masked copy, from the
// audit log, so that a new copy's are none of them.
func plantedCanaries(ctx context.Context, repo *repository.Repo, key mask.Key) ([]mask.Canary, error) {
	recs, _, err := repo.AuditLog(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore: --canaries: read the audit log for the canaries of earlier copies: %w", err)
	}
	var used []mask.Canary
	for _, cr := range canaryRecords(key, recs) {
		used = append(used, cr.Canaries...)
	}
	return used, nil
}

// canaryRecords opens the canary records of the audit log's masked
// restores, with the restore record each came in (nil record: none).
func canaryRecords(key mask.Key, recs []*repository.AuditRecord) map[*repository.AuditRecord]*mask.CanaryRecord {
	out := map[*repository.AuditRecord]*mask.CanaryRecord{}
	for _, r := range recs {
		if r.Event != "restore" || r.Outcome != "ok" || r.Detail["mask"] == "" {
			continue
		}
		out[r] = nil
		if s := r.Detail["canaries_sealed"]; s != "" {
			if cr, err := mask.OpenRecord(key, s); err == nil {
				out[r] = cr
			}
		}
	}
	return out
}
