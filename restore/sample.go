package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/mysql"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/repository"
)

// Sample streams a database snapshot and returns, per table and column,
// its declared type and up to limit values, for classification. The
// stream is verified as a restore verifies it. PostgreSQL, MariaDB/MySQL
// and SQLite snapshots.
func Sample(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, limit int) ([]engine.ColumnSample, error) {
	if snap.Engine != "postgres" && snap.Engine != "mysql" && snap.Engine != "sqlite" || len(snap.Private) == 0 {
		return nil, fmt.Errorf("snapshot %s is a %s backup: classify reads database snapshots (PostgreSQL, MariaDB/MySQL, SQLite)", snap.ID().Short(), snap.Engine)
	}
	var rep engine.Report
	if err := repo.OpenPrivate(snap, &rep); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		_, err := Run(gctx, repo, snap, pw, Options{})
		pw.CloseWithError(err)
		return err
	})
	var out []engine.ColumnSample
	g.Go(func() error {
		var err error
		if snap.Engine == "sqlite" { // one file, no parts
			out, err = sqlite.SampleFile(gctx, pr, "", limit)
		} else {
			err = engine.Split(pr, rep.Parts, func(p engine.Part, r io.Reader) error {
				var s []engine.ColumnSample
				var err error
				switch {
				case p.Name == postgres.GlobalsPart:
					_, err = io.Copy(io.Discard, r)
				case snap.Engine == "mysql":
					s, err = mysql.SampleDump(r, strings.TrimSuffix(p.Name, ".sql"), limit)
				default:
					s, err = postgres.SampleArchive(r, p.Name, limit)
				}
				out = append(out, s...)
				return err
			})
		}
		pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("classify snapshot %s: %w", snap.ID().Short(), err)
	}
	return out, nil
}
