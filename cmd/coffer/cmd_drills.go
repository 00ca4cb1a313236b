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
	return &cobra.Command{
		Use:   "drills",
		Short: "List past restore drills and their verdicts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := g.openRepo(cmd.Context(), false)
			if err != nil {
				return err
			}
			reps, err := drill.List(cmd.Context(), repo)
			if err != nil {
				return err
			}
			if g.json {
				if reps == nil {
					reps = []*drill.Report{}
				}
				return printJSON(cmd.OutOrStdout(), reps)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DRILL\tTIME\tHOST\tVERDICT\tSNAPSHOTS\tRTO\tRPO (AGE)")
			for _, r := range reps {
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
}
