package drill_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/internal/demo"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage/local"
)

type fixture struct {
	*repotest.Repo
	root string
	snap *repository.Snapshot
}

// sqliteFixture backs up a demo customer database twice.
func sqliteFixture(t *testing.T) *fixture {
	ctx := context.Background()
	root := t.TempDir()
	be, err := local.Open(filepath.Join(root, "repo"), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{})
	db := filepath.Join(root, "customers.db")
	if _, err := demo.Generate(ctx, db, 2000, 1); err != nil {
		t.Fatal(err)
	}
	var last *repository.Snapshot
	for i := range 2 {
		d, err := sqlite.Start(ctx, db, "")
		if err != nil {
			t.Fatal(err)
		}
		sum, err := backup.Run(ctx, r.Writer, d, backup.Options{Source: "shop", Engine: "sqlite", Format: sqlite.Format,
			Time: time.Now().Add(time.Duration(i-2) * time.Hour), Private: func() any { return engine.Report{Tables: d.Digests} }})
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		last = sum.Snapshot
	}
	return &fixture{Repo: r, root: root, snap: last}
}

func (f *fixture) drill(t *testing.T, opts drill.Options) *drill.Report {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(f.root, "state")
	}
	opts.TempDir = filepath.Join(f.root, "tmp")
	os.MkdirAll(opts.TempDir, 0o700)
	rep, err := drill.Run(context.Background(), f.Restorer, opts)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	f.nothingLeft(t, opts)
	return rep
}

// nothingLeft proves the drill removed its restored dump, scratch file and
// marker.
func (f *fixture) nothingLeft(t *testing.T, opts drill.Options) {
	t.Helper()
	for _, dir := range []string{opts.TempDir, opts.StateDir} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != dir {
				t.Errorf("the drill left %s behind", p)
			}
			return nil
		})
	}
}

// failed returns the failed checks' names and details.
func failed(rep *drill.Report) string {
	var b strings.Builder
	for _, r := range rep.Runs {
		for _, c := range r.Checks {
			if !c.Passed {
				fmt.Fprintf(&b, "%s: %s\n", c.Name, c.Detail)
			}
		}
	}
	return b.String()
}

func TestDrillPasses(t *testing.T) {
	f := sqliteFixture(t)
	rep := f.drill(t, drill.Options{Source: "shop", Sample: 1, Assertions: []drill.Assertion{
		{Name: "customers", SQL: "SELECT count(*) >= 2000 FROM customers", Expect: "true"},
		{Name: "no orphan orders", SQL: "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL", Expect: "0"},
	}})
	if !rep.Passed || len(rep.Runs) != 2 {
		t.Fatalf("drill of good snapshots failed:\n%s", failed(rep))
	}
	run := rep.Runs[0]
	if run.Snapshot != f.snap.ID().String() || len(run.Tables) != 3 || run.RTO <= 0 || run.RPO.Gap < 59*time.Minute || run.RPO.Age < time.Hour-time.Minute {
		t.Fatalf("run: %+v", run)
	}
	var names []string
	for _, p := range run.Phases {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "download and decrypt,load,verify,assertions" {
		t.Fatalf("phases %v", names)
	}
	ctx := context.Background()
	if err := drill.Save(ctx, f.Writer, rep); err != nil {
		t.Fatal(err)
	}
	list, err := drill.List(ctx, f.Writer) // auditors list drills with the writer key
	if err != nil || len(list) != 1 || list[0].ID != rep.ID || !list[0].Passed || list[0].Version != drill.RecordVersion {
		t.Fatalf("drills: %v %+v", err, list)
	}
	var checks []string
	for _, c := range list[0].Runs[0].Checks {
		checks = append(checks, c.Name)
	}
	if got := strings.Join(checks, ","); got != "chunks and stream digest,table digests recorded,load,tables,assertion 1,assertion 2,scratch removed" {
		t.Fatalf("summary checks %s", got)
	}
	if _, err := list[0].Report(f.Writer); !errors.Is(err, repository.ErrNeedIdentity) {
		t.Fatalf("the sealed report opened with the writer key: %v", err)
	}
	list, err = drill.List(ctx, f.Restorer)
	if err != nil {
		t.Fatal(err)
	}
	full, err := list[0].Report(f.Restorer)
	if err != nil || len(full.Runs) != 2 || len(full.Runs[0].Tables) != 3 || full.Runs[0].Target == "" || !strings.Contains(failedOrNot(full), "no orphan orders") {
		t.Fatalf("full report: %v %+v", err, full)
	}
}

// failedOrNot returns every check's name and detail.
func failedOrNot(rep *drill.Report) string {
	var b strings.Builder
	for _, r := range rep.Runs {
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "%s: %s\n", c.Name, c.Detail)
		}
	}
	return b.String()
}

// TestDrillRecordV1 lists a drill record in the layout written before
// reports were sealed (the whole Report, version 1, sealed to the metadata
// key like any record): it is listed, summarized, and its report is what
// was stored.
func TestDrillRecordV1(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	at := time.Date(2026, 3, 2, 14, 5, 9, 0, time.UTC)
	old := &drill.Report{Version: 1, ID: "20260302t140509_a1b2c3", Started: at, Finished: at.Add(time.Minute), Host: "ops1", Tool: "coffer 0.1.0", Passed: true,
		Runs: []drill.SnapshotRun{{Snapshot: f.snap.ID().String(), Source: "shop", Engine: "sqlite", Target: "sqlite:/tmp/x", Passed: true, RTO: time.Second,
			Checks: []drill.Check{{Name: "tables", Passed: true, Detail: "all 3 tables"}, {Name: "assertion: secret name", Passed: true, Detail: "SELECT 1 = 1"}},
			Tables: []drill.TableCheck{{TableResult: engine.TableResult{Table: "customers", Match: true}}}}}}
	if _, err := f.Writer.SaveRecord(ctx, "drill", "drills", old); err != nil {
		t.Fatal(err)
	}
	list, err := drill.List(ctx, f.Writer)
	if err != nil || len(list) != 1 || list[0].Version != 1 || list[0].ID != old.ID || len(list[0].Runs) != 1 {
		t.Fatalf("v1 record: %v %+v", err, list)
	}
	if c := list[0].Runs[0].Checks; len(c) != 2 || c[1].Name != "assertion 1" {
		t.Fatalf("v1 summary checks %+v", c)
	}
	rep, err := list[0].Report(f.Writer)
	if err != nil || rep.Runs[0].Tables[0].Table != "customers" || rep.Runs[0].Target != "sqlite:/tmp/x" {
		t.Fatalf("v1 report: %v %+v", err, rep)
	}
}

func TestDrillFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, f *fixture) drill.Options
		check  string // the failed check
		want   string // in its detail
	}{
		{"flipped byte", func(t *testing.T, f *fixture) drill.Options {
			p := f.pack(t)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
			return drill.Options{}
		}, "chunks and stream digest", "damaged"},
		{"deleted chunk", func(t *testing.T, f *fixture) drill.Options {
			os.Remove(f.pack(t))
			return drill.Options{}
		}, "chunks and stream digest", "data/"},
		{"changed row", func(t *testing.T, f *fixture) drill.Options {
			return drill.Options{AfterLoad: func(ctx context.Context, db *sql.DB) error {
				_, err := db.ExecContext(ctx, "UPDATE customers SET phone = '+1-555-0000-0000' WHERE id = 42")
				return err
			}}
		}, "tables", "customers: same row count, different contents"},
		{"assertion", func(t *testing.T, f *fixture) drill.Options {
			return drill.Options{Assertions: []drill.Assertion{{Name: "a million customers", SQL: "SELECT count(*) FROM customers", Expect: "1000000"}}}
		}, "assertion: a million customers", "want 1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sqliteFixture(t)
			opts := tc.break_(t, f)
			opts.Source = "shop"
			rep := f.drill(t, opts)
			if rep.Passed {
				t.Fatal("the drill passed")
			}
			found := false
			for _, c := range rep.Runs[0].Checks {
				if c.Name == tc.check && !c.Passed && strings.Contains(c.Detail, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no failed check %q mentioning %q:\n%s", tc.check, tc.want, failed(rep))
			}
		})
	}
}

// pack returns the path of the pack holding the snapshot's first chunk.
func (f *fixture) pack(t *testing.T) string {
	idx, err := f.Writer.LoadIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, _, ok, _ := idx.Lookup(repotest.Chunks(t, f.Writer, f.snap)[0])
	if !ok {
		t.Fatal("chunk not indexed")
	}
	return filepath.Join(f.root, "repo", repository.PackName(p.ID))
}

// TestDrillTruncatedDump: a dump tool that exited 0 after writing half its
// output produced a snapshot; the drill must fail it.
func TestDrillTruncatedDump(t *testing.T) {
	ctx := context.Background()
	f := sqliteFixture(t)
	db := filepath.Join(f.root, "customers.db")
	d, err := sqlite.Start(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	half := io.LimitReader(d, d.Size/2)
	if _, err := backup.Run(ctx, f.Writer, half, backup.Options{Source: "shop", Engine: "sqlite", Format: sqlite.Format,
		Private: func() any { return engine.Report{Tables: d.Digests} }}); err != nil {
		t.Fatal(err)
	}
	rep := f.drill(t, drill.Options{Source: "shop"})
	if rep.Passed {
		t.Fatal("the drill of a truncated dump passed")
	}
	if !strings.Contains(failed(rep), "load") && !strings.Contains(failed(rep), "tables") {
		t.Fatalf("the report does not name the load or the tables:\n%s", failed(rep))
	}
	t.Logf("truncated dump:\n%s", failed(rep))
}

func TestAssertionsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(p, []byte("- name: customers\n  sql: SELECT count(*) > 10 FROM customers\n  expect: true\n"), 0o600)
	as, err := drill.LoadAssertions(p)
	if err != nil || len(as) != 1 || as[0].Expect != "true" {
		t.Fatalf("%v %+v", err, as)
	}
	os.WriteFile(p, []byte("- name: x\n  sqll: SELECT 1\n"), 0o600)
	if _, err := drill.LoadAssertions(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("a misspelt key: %v", err)
	}
}
