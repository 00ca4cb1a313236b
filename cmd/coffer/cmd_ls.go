package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/restore"
)

type lsJSON struct {
	Parts  []engine.Part        `json:"parts"`
	Tables []engine.TableDigest `json:"tables"`
}

func newLsCmd(g *globals) *cobra.Command {
	var source string
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT|latest [--source NAME]",
		Short: "List the parts and tables of a database snapshot, with sizes and row counts",
		Long: `ls shows what a database snapshot holds: the parts of its stream (the globals
and each database's dump, which restore --output --part NAME writes on their
own) with their sizes, and the tables with their row counts (--json: and
digests). They are encrypted to the repository key: it needs an operator
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
			parts, err := restore.Parts(repo, snap)
			if err != nil {
				return err
			}
			if g.json {
				out := lsJSON{Parts: parts, Tables: rep.Tables}
				if out.Parts == nil {
					out.Parts = []engine.Part{}
				}
				if out.Tables == nil {
					out.Tables = []engine.TableDigest{}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			if len(parts) > 0 {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "SIZE\tPART\t")
				for _, p := range parts {
					fmt.Fprintf(tw, "%s\t%s\t\n", bytesStr(p.Size), termsafe.String(p.Name))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(w)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "ROWS\tTABLE\t")
			for _, t := range rep.Tables {
				fmt.Fprintf(tw, "%d\t%s\t\n", t.Rows, termsafe.String(t.Table))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest: only this source's snapshots")
	return cmd
}
