package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

type restoreDBJSON struct {
	Snapshot string               `json:"snapshot"`
	Target   string               `json:"target"`
	Bytes    int64                `json:"size_bytes"`
	Load     float64              `json:"load_seconds"`
	Verify   float64              `json:"verify_seconds"`
	Verified bool                 `json:"verified"`
	Tables   []engine.TableResult `json:"tables"`
	Notes    []string             `json:"notes"`
}

func restoreToDatabase(cmd *cobra.Command, g *globals, repo *repository.Repo, snap *repository.Snapshot, to string, topts restore.TargetOptions, opts restore.DBOptions, mr *maskRun) error {
	target, err := restore.ParseTarget(to, topts)
	if err != nil {
		return err
	}
	sum, err := restore.ToDatabase(cmd.Context(), repo, snap, target, opts)
	var mismatch *restore.MismatchError
	isMismatch := errors.As(err, &mismatch)
	ok := err == nil && (!opts.Verify || engine.AllMatch(sum.Tables))
	detail := targetDetail(target, topts, opts.Verify && ok)
	if mr != nil {
		md, merr := mr.auditDetail(target.String(), snap.ID().String(), time.Now())
		if merr != nil {
			return merr
		}
		maps.Copy(detail, md)
	}
	audit(cmd.Context(), repo, "restore", err, repository.AuditRecord{Snapshot: snap.ID().String(), Source: snap.Source, Detail: detail})
	if err != nil && !isMismatch {
		if sum != nil {
			printNotes(cmd.ErrOrStderr(), sum.Notes)
		}
		return err
	}
	if g.json {
		notes := sum.Notes
		if notes == nil {
			notes = []string{}
		}
		if err := printJSON(cmd.OutOrStdout(), restoreDBJSON{Snapshot: snap.ID().String(), Target: target.String(),
			Bytes: sum.Bytes, Load: sum.Load.Seconds(), Verify: sum.Verify.Seconds(), Verified: opts.Verify && ok, Tables: sum.Tables, Notes: notes}); err != nil {
			return err
		}
	} else {
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "restored snapshot %s (%s) into %s in %s\n", snap.ID().Short(), bytesStr(sum.Bytes), termsafe.String(target.String()), sum.Load.Round(time.Millisecond))
		if opts.Verify {
			printTables(w, sum.Tables)
		}
		printNotes(w, sum.Notes)
	}
	if isMismatch {
		return &exitError{code: 1, msg: err.Error()}
	}
	if !ok {
		return &exitError{code: 1, msg: fmt.Sprintf("%s does not match snapshot %s: the restored data differs from what was backed up", target, snap.ID().Short())}
	}
	return nil
}

// targetDetail is what the audit log records about a restore into a
// database: where, and every choice that gave the snapshot more power.
func targetDetail(t restore.Target, o restore.TargetOptions, verified bool) map[string]string {
	d := map[string]string{"to": t.String(), "verified": fmt.Sprint(verified)}
	if o.Clean {
		d["clean"] = "true"
	}
	if o.DropOld {
		d["drop_old"] = "true"
	}
	if o.Force {
		d["force"] = "true"
	}
	if o.Globals != "" {
		d["globals"] = o.Globals
	}
	if o.Owner != "" {
		d["owner"] = o.Owner
	}
	if o.TrustSnapshot {
		d["trust_snapshot"] = "true"
	}
	return d
}

// printNotes prints what a load did besides loading data, one line each.
func printNotes(w io.Writer, notes []string) {
	for _, n := range notes {
		fmt.Fprintln(w, "note:", termsafe.String(n))
	}
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
		fmt.Fprintf(tw, "%s\t%d\t%s\n", termsafe.String(t.Table), t.WantRows, termsafe.String(verdict))
	}
	tw.Flush()
}
