package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/termsafe"
)

func newDrillsCmd(g *globals) *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   "drills [--full]",
		Short: "List past restore drills and their verdicts",
		Long: `drills lists the drills stored in the repository, newest first: verdict, time,
host, snapshots, RTO and RPO, and (with --json) which checks passed. The writer
key is enough for that summary: it names no table, row count, digest, assertion,
scratch target or warning.

--full shows each drill's whole report, as coffer drill printed it (with --json,
as its JSON report file): it is sealed to the repository key, so it needs an
operator's identity (COFFER_IDENTITY_FILE). Drills stored before reports were
sealed (record version 1) carry their whole report readable with the writer key;
see docs/format.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			repo, err := g.openRepo(ctx, full)
			if err != nil {
				return err
			}
			stored, err := drill.List(ctx, repo)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if full {
				reps := []*drill.Report{}
				out := []drillJSON{}
				for _, s := range stored {
					r, err := s.Report(repo)
					if err != nil {
						return fmt.Errorf("drill %s: %w", termsafe.String(s.ID), err)
					}
					reps = append(reps, r)
					out = append(out, toDrillJSON(r))
				}
				if g.json {
					return printJSON(w, out)
				}
				for i, r := range reps {
					if i > 0 {
						fmt.Fprintln(w)
					}
					printDrill(w, r, nil)
					for _, msg := range r.Warnings {
						fmt.Fprintf(w, "warning: %s\n", termsafe.Lines(msg))
					}
				}
				return nil
			}
			if g.json {
				out := []drillJSON{}
				for _, s := range stored {
					out = append(out, toDrillSummaryJSON(s))
				}
				return printJSON(w, out)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DRILL\tTIME\tHOST\tVERDICT\tSNAPSHOTS\tRTO\tRPO (AGE)")
			for _, r := range stored {
				verdict := "passed"
				if !r.Passed {
					verdict = "FAILED"
				}
				var rto, age time.Duration
				var snaps []string
				for _, run := range r.Runs {
					rto = max(rto, run.RTO)
					age = max(age, run.RPO.Age)
					snaps = append(snaps, termsafe.String(run.Snapshot[:min(8, len(run.Snapshot))]+" "+run.Source))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termsafe.String(r.ID), r.Started.Local().Format(time.DateTime), termsafe.String(r.Host), verdict,
					fmt.Sprint(snaps), rto.Round(time.Millisecond), age.Round(time.Second))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "show each drill's whole report (needs an operator's identity)")
	return cmd
}
