package drill

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/coffer-backup/coffer/repository"
)

// Save stores the report in the repository, under drills/, so auditors can
// list past drills. Writers can save; per-table digests are not in it.
func Save(ctx context.Context, repo *repository.Repo, r *Report) error {
	_, err := repo.SaveRecord(ctx, "drill", "drills", r)
	return err
}

// List returns the drill reports stored in the repository, newest first.
func List(ctx context.Context, repo *repository.Repo) ([]*Report, error) {
	var out []*Report
	err := repo.Records(ctx, "drill", "drills", func(id repository.ID, b []byte) error {
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return &repository.CorruptError{Object: "drills/" + id.String(), Reason: "malformed JSON", Err: err}
		}
		out = append(out, &r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, err
}
