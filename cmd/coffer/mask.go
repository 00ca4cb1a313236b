package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/coffer-backup/coffer/mask"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

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
