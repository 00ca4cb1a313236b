package repository

import "context"

// SetMaxIndexBlobs sets the bound on the blobs of the index objects prune
// writes, for tests; the returned function restores it.
func SetMaxIndexBlobs(n int) func() {
	old := maxIndexBlobs
	maxIndexBlobs = n
	return func() { maxIndexBlobs = old }
}

// SaveConsolidatedPrefix writes what a prune killed before its last index
// object leaves: every part of the consolidated index but the last, the
// one naming the superseded objects.
func (r *Repo) SaveConsolidatedPrefix(ctx context.Context) error {
	_, entries, err := r.indexEntries(ctx)
	if err != nil {
		return err
	}
	parts := splitPacks(entries, maxIndexBlobs)
	for _, p := range parts[:len(parts)-1] {
		if _, err := r.SaveIndex(ctx, &IndexFile{Packs: p}); err != nil {
			return err
		}
	}
	return nil
}
