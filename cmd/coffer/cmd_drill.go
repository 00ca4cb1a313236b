package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

type drillFlags struct {
	opts       drill.Options
	assertions string
	reportDir  string
	stateDir   string
	cleanup    bool
	targetTime string
	mask       string
	events     bool
}

func newDrillCmd(g *globals) *cobra.Command {
	f := &drillFlags{}
	cmd := &cobra.Command{
		Use:   "drill [--source NAME] [--snapshot ID|latest] [--sample N] (--scratch URL | --ephemeral | --pitr [--target-time T])",
		Short: "Restore a snapshot into a scratch database and prove every table",
		Long: `drill restores a snapshot (and, with --sample N, N random older ones) into a
scratch database, and checks that every chunk decrypts and matches its id, that
the stream matches its digest, that the dump loads, that every table has the row
count and digest recorded at backup time, and that the assertions of
--assertions FILE hold. It times each phase (RTO), measures the snapshot's age
and the gap between backups (RPO), writes a JSON and an HTML report to
--report-dir and into the repository (list them with coffer drills), and drops
the scratch database. The exit status is 0 only when every check passed.
While it runs, each phase is shown on standard error when that is a terminal;
--json --events prints them as JSON lines instead (docs/json.md).

Scratch: --scratch postgres://USER@HOST:PORT/ or mysql://USER@HOST:PORT/ creates
a database named coffer_drill_… there; --ephemeral starts a throwaway
PostgreSQL server (initdb, postgres) that listens on no TCP port, only on a Unix
socket in a private directory (0700), with a random password; when coffer runs
as root, that server runs as a system user made for the drill and removed after
it (as an ordinary user, it runs as you). SQLite snapshots are restored into a
temporary file. The snapshot is loaded as data: see docs/threat-model.md.

--assertions FILE is a YAML list; each entry is a query on the restored data
that returns one value, and the value it must return:

  - name: customers has more than 1000 rows
    sql: SELECT count(*) > 1000 FROM customers
    expect: true
  - name: every order has its customer
    sql: SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL
    expect: 0

--pitr drills point-in-time recovery of PostgreSQL: it restores the newest
physical base backup of the source (the newest taken before --target-time, if
given) and the archived WAL into an ephemeral server, recovers to the target
(or to the end of the archive) and checks that every chunk and WAL file matched
its MAC, that the archive holds every segment from the backup's start to the
target, that recovery replayed past the backup's end and no commit after the
target, that pg_amcheck finds no corruption, every table's row count and the
assertions (run in --pitr-database). RTO is split into fetch, recovery and
checks; RPO is the age of the newest archived WAL segment. The base backup's
own server configuration is never used.

A drill that is killed leaves a marker in --state-dir (a directory of yours,
mode 0700; by default $XDG_STATE_HOME/coffer/drills or
~/.local/state/coffer/drills): the next drill, or coffer drill --cleanup,
removes its leftovers — only coffer_drill_… databases on the --scratch server
and coffer-drill-…/pgephemeral-… directories in the temporary directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDrill(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.opts.Source, "source", "", "the source to drill")
	fl.StringVar(&f.mask, "mask", "", "drill a masked restore under the rules in this file: the scratch copy is masked and verified as restore --mask verifies it")
	fl.StringVar(&f.opts.Snapshot, "snapshot", "latest", "the snapshot to drill")
	fl.IntVar(&f.opts.Sample, "sample", 0, "also drill N random older snapshots of the source")
	fl.StringVar(&f.opts.Scratch, "scratch", "", "server for the scratch database: postgres://… or mysql://…")
	fl.BoolVar(&f.opts.Ephemeral, "ephemeral", false, "PostgreSQL: start a throwaway server for the drill")
	fl.IntVarP(&f.opts.Jobs, "jobs", "j", 1, "parallel load jobs (pg_restore -j): helps databases with several large tables")
	fl.StringVar(&f.assertions, "assertions", "", "YAML file of SQL assertions on the restored data")
	fl.StringVar(&f.reportDir, "report-dir", ".", "where to write the JSON and HTML reports")
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where running drills leave their markers: a directory of yours, mode 0700")
	fl.BoolVar(&f.cleanup, "cleanup", false, "only remove what killed drills left behind")
	fl.BoolVar(&f.opts.PITR, "pitr", false, "PostgreSQL: drill point-in-time recovery from a physical base backup and the WAL archive")
	fl.StringVar(&f.targetTime, "target-time", "", "with --pitr: recover to this time (RFC 3339, e.g. 2026-12-01T14:05:00Z)")
	fl.StringVar(&f.opts.Superuser, "pitr-superuser", "", "with --pitr: the backed-up cluster's superuser (the one initdb made), which the drill logs in as (default: the one the base backup recorded, else postgres)")
	fl.StringVar(&f.opts.Database, "pitr-database", "postgres", "with --pitr: the database the assertions run in")
	fl.BoolVar(&f.events, "events", false, "with --json: print each phase as it starts and ends, as JSON lines, before the report (its last line)")
	return cmd
}

// defaultStateDir is $XDG_STATE_HOME/coffer/drills, or
// $HOME/.local/state/coffer/drills; "" with neither (cron, containers):
// then the drill refuses to run without --state-dir, rather than use a
// shared directory such as /tmp, where another user could plant markers.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "coffer", "drills")
	}
	if home := os.Getenv("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "coffer", "drills")
	}
	return ""
}

func runDrill(cmd *cobra.Command, g *globals, f *drillFlags) error {
	ctx := cmd.Context()
	w := cmd.OutOrStdout()
	if f.stateDir == "" {
		return fmt.Errorf("drill: no state directory for the drill's markers: neither XDG_STATE_HOME nor HOME is set; give --state-dir DIR, a directory of yours with mode 0700 (never a shared one such as /tmp)")
	}
	if f.cleanup {
		res, err := drill.Cleanup(ctx, drill.CleanupOptions{StateDir: f.stateDir, TempDir: f.opts.TempDir, Scratch: f.opts.Scratch})
		if res != nil && g.json {
			if perr := printCleanupJSON(w, res); perr != nil {
				return perr
			}
		} else if res != nil {
			for _, c := range res.Removed {
				if c.Drill == "" {
					fmt.Fprintf(w, "removed %s\n", termsafe.String(c.Removed))
				} else {
					fmt.Fprintf(w, "drill %s: removed %s\n", c.Drill, termsafe.String(c.Removed))
				}
			}
			for _, msg := range res.Ignored {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", termsafe.Lines(msg))
			}
			if err == nil && len(res.Removed) == 0 {
				fmt.Fprintln(w, "nothing to clean up")
			}
		}
		return err
	}
	if f.targetTime != "" {
		t, err := time.Parse(time.RFC3339Nano, f.targetTime)
		if err != nil || !f.opts.PITR {
			return fmt.Errorf("drill: --target-time %q: give an RFC 3339 time such as 2026-12-01T14:05:00Z, with --pitr", f.targetTime)
		}
		f.opts.TargetTime = t
	}
	if f.assertions != "" {
		var err error
		if f.opts.Assertions, err = drill.LoadAssertions(f.assertions); err != nil {
			return err
		}
	}
	repo, err := g.openRepo(ctx, true)
	if err != nil {
		return err
	}
	if f.mask != "" && f.opts.PITR {
		return errors.New("drill: --mask drills masked logical restores, not --pitr")
	}
	if f.mask != "" {
		if f.opts.Mask, _, err = loadMasking(ctx, repo, f.mask); err != nil {
			return err
		}
	}
	if f.opts.Events, err = drillEvents(g, f.events, w); err != nil {
		return err
	}
	f.opts.StateDir, f.opts.Tool = f.stateDir, "coffer "+version
	f.opts.Host, _ = os.Hostname()
	rep, err := drill.Run(ctx, repo, f.opts)
	if err != nil {
		audit(ctx, repo, "drill", err, repository.AuditRecord{Source: f.opts.Source})
		return err
	}
	for _, msg := range rep.Warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", termsafe.Lines(msg))
	}
	for _, run := range rep.Runs {
		verdict := "passed"
		if !run.Passed {
			verdict = "failed"
		}
		// The scratch target is left out: the audit log is readable with the
		// writer key, the target only in the sealed report.
		audit(ctx, repo, "drill", nil, repository.AuditRecord{Snapshot: run.Snapshot, Source: run.Source,
			Detail: map[string]string{"drill": rep.ID, "verdict": verdict, "rto_seconds": secondsStr(run.RTO.Round(time.Millisecond))}})
	}
	paths, werr := writeReports(f.reportDir, rep)
	serr := drill.Save(ctx, repo, rep)
	if g.json {
		print := printJSON
		if f.events {
			print = printJSONLine // the last of the JSON lines
		}
		if err := print(w, toDrillJSON(rep)); err != nil {
			return err
		}
	} else {
		printDrill(w, rep, paths)
	}
	if werr != nil {
		return fmt.Errorf("drill: write the report: %w", werr)
	}
	if serr != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the report could not be stored in the repository: %v\n", serr)
	}
	if !rep.Passed {
		return &exitError{code: 1, msg: "drill FAILED: see the failed checks above and the report", object: "drill " + rep.ID,
			remedy: "see the failed checks and the report"}
	}
	return nil
}

// writeReports writes the JSON and HTML reports, mode 0600: they name the
// drill's tables and row counts.
func writeReports(dir string, rep *drill.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "drill-"+rep.ID)
	if err := atomicfile.Write(base+".json", atomicfile.Options{Perm: 0o600}, func(w io.Writer) error { return printJSON(w, toDrillJSON(rep)) }); err != nil {
		return nil, err
	}
	err := atomicfile.Write(base+".html", atomicfile.Options{Perm: 0o600}, func(w io.Writer) error { return drill.WriteHTML(w, rep) })
	return []string{base + ".json", base + ".html"}, err
}

func printDrill(w io.Writer, rep *drill.Report, paths []string) {
	verdict := "PASSED"
	if !rep.Passed {
		verdict = "FAILED"
	}
	// A report may come from storage (coffer drills --full), where a writer
	// could have stored any text: every string is escaped.
	fmt.Fprintf(w, "drill %s %s\n", termsafe.String(rep.ID), verdict)
	for _, d := range rep.Damaged {
		fmt.Fprintf(w, "  FAIL snapshot unreadable: %s\n", termsafe.Lines(d))
	}
	for _, run := range rep.Runs {
		// Names in a report come from the snapshot (source, tables): data,
		// never terminal control sequences.
		fmt.Fprintf(w, "\nsnapshot %s (%s, %s, %s) into %s\n", termsafe.String(run.Snapshot[:min(8, len(run.Snapshot))]), termsafe.String(run.Source), termsafe.String(run.Engine),
			run.SnapshotAt.Local().Format(time.DateTime), termsafe.String(run.Target))
		for _, c := range run.Checks {
			mark := "ok  "
			if !c.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s\n", mark, termsafe.String(c.Name), termsafe.Lines(c.Detail))
		}
		var phases []string
		for _, p := range run.Phases {
			phases = append(phases, fmt.Sprintf("%s %s", termsafe.String(p.Name), p.Duration.Round(time.Millisecond)))
		}
		fmt.Fprintf(w, "  RTO %s (%s)\n", run.RTO.Round(time.Millisecond), strings.Join(phases, ", "))
		if run.Engine == "postgres-physical" {
			fmt.Fprintf(w, "  RPO: newest archived WAL segment age %s\n", run.RPO.Age.Round(time.Second))
		} else {
			fmt.Fprintf(w, "  RPO: snapshot age %s, gap between the two newest backups %s\n", run.RPO.Age.Round(time.Second), run.RPO.Gap.Round(time.Second))
		}
	}
	for _, p := range paths {
		fmt.Fprintf(w, "report: %s\n", p)
	}
}
