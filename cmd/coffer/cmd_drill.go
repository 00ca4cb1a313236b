package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/repository"
)

type drillFlags struct {
	opts       drill.Options
	assertions string
	reportDir  string
	stateDir   string
	cleanup    bool
}

func newDrillCmd(g *globals) *cobra.Command {
	f := &drillFlags{}
	cmd := &cobra.Command{
		Use:   "drill [--source NAME] [--snapshot ID|latest] [--sample N] (--scratch URL | --ephemeral)",
		Short: "Restore a snapshot into a scratch database and prove every table",
		Long: `drill restores a snapshot (and, with --sample N, N random older ones) into a
scratch database, and checks that every chunk decrypts and matches its id, that
the stream matches its digest, that the dump loads, that every table has the row
count and digest recorded at backup time, and that the assertions of
--assertions FILE hold. It times each phase (RTO), measures the snapshot's age
and the gap between backups (RPO), writes a JSON and an HTML report to
--report-dir and into the repository (list them with coffer drills), and drops
the scratch database. The exit status is 0 only when every check passed.

Scratch: --scratch postgres://USER@HOST:PORT/ or mysql://USER@HOST:PORT/ creates
a database named coffer_drill_… there; --ephemeral starts a throwaway
PostgreSQL server (initdb, pg_ctl) on a free loopback port; SQLite snapshots are
restored into a temporary file. A drill that is killed leaves a marker in
--state-dir: the next drill, or coffer drill --cleanup, removes its leftovers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDrill(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.opts.Source, "source", "", "the source to drill")
	fl.StringVar(&f.opts.Snapshot, "snapshot", "latest", "the snapshot to drill")
	fl.IntVar(&f.opts.Sample, "sample", 0, "also drill N random older snapshots of the source")
	fl.StringVar(&f.opts.Scratch, "scratch", "", "server for the scratch database: postgres://… or mysql://…")
	fl.BoolVar(&f.opts.Ephemeral, "ephemeral", false, "PostgreSQL: start a throwaway server for the drill")
	fl.IntVarP(&f.opts.Jobs, "jobs", "j", 1, "parallel load jobs (pg_restore -j): helps databases with several large tables")
	fl.StringVar(&f.assertions, "assertions", "", "YAML file of SQL assertions on the restored data")
	fl.StringVar(&f.reportDir, "report-dir", ".", "where to write the JSON and HTML reports")
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where running drills leave their markers")
	fl.BoolVar(&f.cleanup, "cleanup", false, "only remove what killed drills left behind")
	return cmd
}

// defaultStateDir is $XDG_STATE_HOME/coffer/drills, or ~/.local/state/….
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "coffer", "drills")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "coffer-drills")
	}
	return filepath.Join(home, ".local", "state", "coffer", "drills")
}

func runDrill(cmd *cobra.Command, g *globals, f *drillFlags) error {
	ctx := cmd.Context()
	w := cmd.OutOrStdout()
	if f.cleanup {
		cleaned, err := drill.Cleanup(ctx, f.stateDir)
		for _, c := range cleaned {
			fmt.Fprintf(w, "drill %s: removed %s\n", c.Drill, c.Removed)
		}
		if err == nil && len(cleaned) == 0 {
			fmt.Fprintln(w, "nothing to clean up")
		}
		return err
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
	f.opts.StateDir, f.opts.Tool = f.stateDir, "coffer "+version
	f.opts.Host, _ = os.Hostname()
	rep, err := drill.Run(ctx, repo, f.opts)
	if err != nil {
		audit(ctx, repo, "drill", err, repository.AuditRecord{Source: f.opts.Source})
		return err
	}
	for _, run := range rep.Runs {
		verdict := "passed"
		if !run.Passed {
			verdict = "failed"
		}
		audit(ctx, repo, "drill", nil, repository.AuditRecord{Snapshot: run.Snapshot, Source: run.Source,
			Detail: map[string]string{"drill": rep.ID, "verdict": verdict, "scratch": run.Target, "rto": run.RTO.Round(time.Millisecond).String()}})
	}
	paths, werr := writeReports(f.reportDir, rep)
	serr := drill.Save(ctx, repo, rep)
	if g.json {
		if err := printJSON(w, rep); err != nil {
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
		return &exitError{code: 1, msg: "drill FAILED: see the failed checks above and the report"}
	}
	return nil
}

func writeReports(dir string, rep *drill.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "drill-"+rep.ID)
	jf, err := os.Create(base + ".json")
	if err != nil {
		return nil, err
	}
	err = printJSON(jf, rep)
	if cerr := jf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	hf, err := os.Create(base + ".html")
	if err != nil {
		return nil, err
	}
	err = drill.WriteHTML(hf, rep)
	if cerr := hf.Close(); err == nil {
		err = cerr
	}
	return []string{base + ".json", base + ".html"}, err
}

func printDrill(w io.Writer, rep *drill.Report, paths []string) {
	verdict := "PASSED"
	if !rep.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "drill %s %s\n", rep.ID, verdict)
	for _, run := range rep.Runs {
		fmt.Fprintf(w, "\nsnapshot %s (%s, %s, %s) into %s\n", run.Snapshot[:8], run.Source, run.Engine,
			run.SnapshotAt.Local().Format(time.DateTime), run.Target)
		for _, c := range run.Checks {
			mark := "ok  "
			if !c.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
		}
		var phases []string
		for _, p := range run.Phases {
			phases = append(phases, fmt.Sprintf("%s %s", p.Name, p.Duration.Round(time.Millisecond)))
		}
		fmt.Fprintf(w, "  RTO %s (%s)\n", run.RTO.Round(time.Millisecond), strings.Join(phases, ", "))
		fmt.Fprintf(w, "  RPO: snapshot age %s, gap between the two newest backups %s\n", run.RPO.Age.Round(time.Second), run.RPO.Gap.Round(time.Second))
	}
	for _, p := range paths {
		fmt.Fprintf(w, "report: %s\n", p)
	}
}
