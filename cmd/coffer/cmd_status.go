package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/status"
)

func newStatusCmd(g *globals) *cobra.Command {
	var cfgPath, htmlPath string
	opts := status.Options{}
	cmd := &cobra.Command{
		Use:   "status [--config coffer.yaml] [--json] [--html FILE]",
		Short: "One screen: each source's newest snapshot against its schedule, drills, storage, WAL lag, audit head",
		Long: `status shows, per source, the newest snapshot and its age against the schedule,
the last drill's verdict and RTO, what its snapshots stored (and in the last 7
days), and for physical sources the age of the newest archived WAL file (the real
point-in-time RPO); then the audit log's head. It reads with the writer key.

It exits 1 when anything is overdue or failed, so that cron, Nagios or a
Kubernetes probe can run it:
  - a source's newest snapshot is older than the run its schedule (--config) last
    due, allowing --grace for the backup to finish; a source without a schedule,
    or without --config, may be --max-age old;
  - a source's last drill failed;
  - a physical source's newest archived WAL is older than --max-wal-age;
  - a snapshot or the audit log cannot be read.

--html FILE writes the same as one self-contained page with three plots: stored
bytes per night, RPO per night, RTO per drill.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if cfgPath != "" {
				c, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				opts.Config = c
			}
			repo, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			opts.Now = clock()()
			rep, err := status.Build(ctx, repo, opts)
			if err != nil {
				return err
			}
			if htmlPath != "" {
				err := atomicfile.Write(htmlPath, atomicfile.Options{Perm: 0o600}, func(w io.Writer) error { return status.HTML(w, rep) })
				if err != nil {
					return fmt.Errorf("status --html %s: %w", htmlPath, err)
				}
			}
			if g.json {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printStatus(cmd.OutOrStdout(), rep)
			}
			if !rep.OK {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: %s", count(len(rep.Problems), "problem"), termsafe.Lines(strings.Join(rep.Problems, "; ")))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "coffer.yaml: the sources, their schedules, which are physical")
	f.StringVar(&htmlPath, "html", "", "also write the status as an HTML page with plots to this file")
	f.DurationVar(&opts.MaxAge, "max-age", 26*time.Hour, "the oldest a newest snapshot may be without a schedule")
	f.DurationVar(&opts.Grace, "grace", time.Hour, "how long after its scheduled time a backup may take")
	f.DurationVar(&opts.MaxWALAge, "max-wal-age", 15*time.Minute, "the oldest the newest archived WAL file may be")
	return cmd
}

func printStatus(w io.Writer, rep *status.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSNAPSHOTS\tNEWEST\tAGE\tSCHEDULE\tSTORED\tLAST 7 DAYS\tLAST DRILL\tWAL LAG\tSTATE")
	for _, s := range rep.Sources {
		newest, age := "-", "-"
		if s.Newest != nil {
			newest = s.Newest.ID[:8] + " " + s.Newest.Time.Local().Format(time.DateTime)
			age = seconds(s.Newest.AgeSeconds)
		}
		drill := "-"
		if d := s.LastDrill; d != nil {
			drill = map[bool]string{true: "passed", false: "FAILED"}[d.Passed] + fmt.Sprintf(", RTO %.1fs", d.RTOSeconds)
		}
		wal := "-"
		if s.WALAgeSecond != nil {
			wal = seconds(*s.WALAgeSecond)
		}
		state := "ok"
		if len(s.Problems) > 0 {
			state = "PROBLEM"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termsafe.String(s.Source), s.Snapshots, newest, age, orDash(s.Schedule),
			bytesStr(s.StoredBytes), bytesStr(s.Stored7Days), drill, wal, state)
	}
	tw.Flush()
	if a := rep.Audit; a != nil {
		fmt.Fprintf(w, "\naudit log: %s, newest %s at %s\n", count(a.Records, "record"), termsafe.String(a.Event), a.Newest.Local().Format(time.DateTime))
	}
	if rep.OK {
		fmt.Fprintln(w, "\nall sources are up to date and their last drills passed")
		return
	}
	fmt.Fprintln(w)
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "problem:", termsafe.Lines(p))
	}
}

func seconds(s float64) string { return (time.Duration(s) * time.Second).Round(time.Second).String() }
