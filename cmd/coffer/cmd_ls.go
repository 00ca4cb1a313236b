package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/engine"
)

func newLsCmd(g *globals) *cobra.Command {
	var source string
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT|latest [--source NAME]",
		Short: "List the tables of a database snapshot with their row counts",
		Long: `ls shows the tables recorded in a database snapshot, with row counts and
digests. They are encrypted to the repository key: it needs an operator
identity (COFFER_IDENTITY_FILE).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := g.openRepo(cmd.Context(), true)
			if err != nil {
				return err
			}
			snap, err := repo.FindSnapshot(cmd.Context(), args[0], source)
			if err != nil {
				return err
			}
			if len(snap.Private) == 0 {
				return fmt.Errorf("snapshot %s is a %s backup: it records no tables", snap.ID().Short(), snap.Engine)
			}
			var rep engine.Report
			if err := repo.OpenPrivate(snap, &rep); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), rep.Tables)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "ROWS\tTABLE\t")
			for _, t := range rep.Tables {
				fmt.Fprintf(tw, "%d\t%s\t\n", t.Rows, t.Table)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest: only this source's snapshots")
	return cmd
}
