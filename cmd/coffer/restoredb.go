package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

type restoreDBJSON struct {
	Snapshot string               `json:"snapshot"`
	Target   string               `json:"target"`
	Bytes    int64                `json:"bytes"`
	Load     float64              `json:"load_seconds"`
	Verify   float64              `json:"verify_seconds"`
	Verified bool                 `json:"verified"`
	Tables   []engine.TableResult `json:"tables"`
}

func restoreToDatabase(cmd *cobra.Command, g *globals, repo *repository.Repo, snap *repository.Snapshot, to string, topts restore.TargetOptions, opts restore.DBOptions) error {
	target, err := restore.ParseTarget(to, topts)
	if err != nil {
		return err
	}
	sum, err := restore.ToDatabase(cmd.Context(), repo, snap, target, opts)
	ok := err == nil && (!opts.Verify || engine.AllMatch(sum.Tables))
	audit(cmd.Context(), repo, "restore", err, repository.AuditRecord{Snapshot: snap.ID().String(), Source: snap.Source,
		Detail: map[string]string{"to": target.String(), "verified": fmt.Sprint(opts.Verify && ok)}})
	if err != nil {
		return err
	}
	if g.json {
		if err := printJSON(cmd.OutOrStdout(), restoreDBJSON{Snapshot: snap.ID().String(), Target: target.String(),
			Bytes: sum.Bytes, Load: sum.Load.Seconds(), Verify: sum.Verify.Seconds(), Verified: opts.Verify && ok, Tables: sum.Tables}); err != nil {
			return err
		}
	} else {
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "restored snapshot %s (%s) into %s in %s\n", snap.ID().Short(), bytesStr(sum.Bytes), target, sum.Load.Round(time.Millisecond))
		if opts.Verify {
			printTables(w, sum.Tables)
		}
	}
	if !ok {
		return &exitError{code: 1, msg: fmt.Sprintf("%s does not match snapshot %s: the restored data differs from what was backed up", target, snap.ID().Short())}
	}
	return nil
}

// printTables prints a per-table comparison.
func printTables(w io.Writer, tables []engine.TableResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tVERIFIED")
	for _, t := range tables {
		verdict := "ok"
		if !t.Match {
			verdict = "MISMATCH: " + t.Reason
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Table, t.WantRows, verdict)
	}
	tw.Flush()
}
