package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/restore"
)

type lsJSON struct {
	Snapshot string               `json:"snapshot"`
	Parts    []lsPartJSON         `json:"parts"`
	Tables   []engine.TableDigest `json:"tables"`
}

// lsPartJSON is a part of the stream, in the names of docs/json.md (the
// snapshot stores it as engine.Part).
type lsPartJSON struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset_bytes"`
	Size   int64  `json:"size_bytes"`
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
				out := lsJSON{Snapshot: snap.ID().String(), Parts: []lsPartJSON{}, Tables: rep.Tables}
				for _, p := range parts {
					out.Parts = append(out.Parts, lsPartJSON{Name: p.Name, Offset: p.Offset, Size: p.Size})
				}
				if out.Tables == nil {
					out.Tables = []engine.TableDigest{}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			// Sizes and counts right-aligned, names left-aligned.
			if len(parts) > 0 {
				sizes := make([]string, len(parts))
				for i, p := range parts {
					sizes[i] = bytesStr(p.Size)
				}
				width := columnWidth("SIZE", sizes)
				fmt.Fprintf(w, "%*s  PART\n", width, "SIZE")
				for i, p := range parts {
					fmt.Fprintf(w, "%*s  %s\n", width, sizes[i], termsafe.String(p.Name))
				}
				fmt.Fprintln(w)
			}
			rows := make([]string, len(rep.Tables))
			for i, t := range rep.Tables {
				rows[i] = strconv.FormatInt(t.Rows, 10)
			}
			width := columnWidth("ROWS", rows)
			fmt.Fprintf(w, "%*s  TABLE\n", width, "ROWS")
			for i, t := range rep.Tables {
				if _, err := fmt.Fprintf(w, "%*s  %s\n", width, rows[i], termsafe.String(t.Table)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest: only this source's snapshots")
	return cmd
}

// columnWidth is the width of a column with this header and these cells.
func columnWidth(header string, cells []string) int {
	w := len(header)
	for _, c := range cells {
		w = max(w, len(c))
	}
	return w
}
