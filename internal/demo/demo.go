// Package demo runs coffer's main job end to end on built-in data: a
// synthetic SQLite customer database is backed up into a local repository,
// changed as a day would change it, backed up again, the first night's
// snapshot restored into a new database and verified table by table, and
// both snapshots drilled.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/dustin/go-humanize"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage/local"
)

// Options configure the demo.
type Options struct {
	Dir       string    // where everything goes; it must be empty or missing
	Customers int       // rows of the customers table
	Out       io.Writer // the story, a few lines
	Tool      string    // recorded in snapshots
}

// Result is what the demo proved.
type Result struct {
	Night1, Night2 *backup.Summary
	Restore        *restore.DBSummary
	Drill          *drill.Report
	Verified       bool
}

// Run runs the demo in opts.Dir.
func Run(ctx context.Context, opts Options) (*Result, error) {
	p := func(format string, args ...any) { fmt.Fprintf(opts.Out, format+"\n", args...) }
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(opts.Dir, "customers.db")
	counts, err := Generate(ctx, dbPath, opts.Customers, 2026)
	if err != nil {
		return nil, err
	}
	st, _ := os.Stat(dbPath)
	p("database   %s: %d customers, %d orders, %d payments (%s), synthetic", dbPath, counts.Customers, counts.Orders, counts.Payments, size(st.Size()))

	writer, restorer, err := initRepo(ctx, opts.Dir)
	if err != nil {
		return nil, err
	}
	p("repository %s: data encrypted to a new age key; the backup side holds the writer key only", filepath.Join(opts.Dir, "repo"))

	res := &Result{}
	if res.Night1, err = backupDB(ctx, writer, dbPath, opts.Tool, "night 1"); err != nil {
		return nil, err
	}
	p("night 1    snapshot %s: %s read, %s stored (compressed, encrypted) in %s", res.Night1.Snapshot.ID().Short(),
		size(res.Night1.BytesRead), size(res.Night1.BytesStored), res.Night1.Duration.Round(time.Millisecond))

	changed, err := Change(ctx, dbPath, 0.01, 7)
	if err != nil {
		return nil, err
	}
	if res.Night2, err = backupDB(ctx, writer, dbPath, opts.Tool, "night 2"); err != nil {
		return nil, err
	}
	n2 := res.Night2
	p("day        %d rows changed (1%% of customers updated, as many new orders)", changed)
	p("night 2    snapshot %s: %s read, %s stored: %.0f%% of the database was already in the repository", n2.Snapshot.ID().Short(),
		size(n2.BytesRead), size(n2.BytesStored), 100*(1-float64(n2.BytesNew)/float64(max(1, n2.BytesRead))))

	target := filepath.Join(opts.Dir, "restored-night1.db")
	tgt, err := restore.ParseTarget("sqlite:"+target, restore.TargetOptions{})
	if err != nil {
		return nil, err
	}
	snap, err := restorer.LoadSnapshot(ctx, res.Night1.Snapshot.ID())
	if err != nil {
		return nil, err
	}
	// A mismatch is the demo's finding, told below table by table; any
	// other failure ends it.
	var mismatch *restore.MismatchError
	if res.Restore, err = restore.ToDatabase(ctx, restorer, snap, tgt, restore.DBOptions{Verify: true}); err != nil && !errors.As(err, &mismatch) {
		return nil, err
	}
	p("restore    night 1 into %s in %s, every chunk and the whole stream checked", target, res.Restore.Load.Round(time.Millisecond))
	for _, t := range res.Restore.Tables {
		verdict := "rows and digest equal the backup"
		if !t.Match {
			verdict = "MISMATCH: " + t.Reason
		}
		p("verify     %-10s %7d rows  %s", t.Table, t.WantRows, verdict)
	}
	res.Verified = engine.AllMatch(res.Restore.Tables)
	if res.Drill, err = drillBoth(ctx, restorer, opts); err != nil {
		return nil, err
	}
	run := res.Drill.Runs[0]
	verdict := "PASSED: both snapshots restored into scratch databases, every chunk and table proved"
	if !res.Drill.Passed {
		verdict = "FAILED: see the report"
	}
	p("drill      %s; RTO %s (report: drill-report.html)", verdict, run.RTO.Round(time.Millisecond))
	res.Verified = res.Verified && res.Drill.Passed
	return res, nil
}

// drillBoth drills the latest snapshot and the one before, and writes the
// HTML report into the demo directory.
func drillBoth(ctx context.Context, repo *repository.Repo, opts Options) (*drill.Report, error) {
	tmp := filepath.Join(opts.Dir, "drill-tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	host, _ := os.Hostname()
	rep, err := drill.Run(ctx, repo, drill.Options{Source: "demo-customers", Sample: 1, TempDir: tmp, Host: host, Tool: opts.Tool})
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(opts.Dir, "drill-report.html"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return rep, drill.WriteHTML(f, rep)
}

func size(n int64) string { return humanize.IBytes(uint64(n)) }

// initRepo creates a local repository with a fresh operator identity, and
// writes the keys into dir so the user can go on with the CLI.
func initRepo(ctx context.Context, dir string) (writer, restorer *repository.Repo, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, nil, err
	}
	be, err := local.Open(filepath.Join(dir, "repo"), true)
	if err != nil {
		return nil, nil, err
	}
	r, err := repository.Init(ctx, be, repository.InitOptions{
		Operators: []age.Recipient{id.Recipient()}, OperatorNames: []string{id.Recipient().String()}})
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.txt"), []byte(id.String()+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "writer.key"), r.WriterKey().Marshal(), 0o600); err != nil {
		return nil, nil, err
	}
	if writer, err = repository.OpenWriter(ctx, be, r.WriterKey()); err != nil {
		return nil, nil, err
	}
	restorer, err = repository.OpenRestorer(ctx, be, []age.Identity{id}, repository.OpenOptions{})
	return writer, restorer, err
}

func backupDB(ctx context.Context, repo *repository.Repo, path, tool, tag string) (*backup.Summary, error) {
	d, err := sqlite.Start(ctx, path, "")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	host, _ := os.Hostname()
	return backup.Run(ctx, repo, d, backup.Options{
		Source: "demo-customers", Host: host, Tags: []string{"demo", tag}, Engine: "sqlite", Format: sqlite.Format,
		ServerVersion: "SQLite " + d.Version, Databases: []string{d.Database}, Tool: tool,
		Private: func() any { return engine.Report{Tables: d.Digests} },
	})
}
