package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/repository"
)

func newPruneCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Delete stored data that no snapshot needs",
		Long: `prune deletes the packs that no snapshot references (after forget, or left by
an interrupted backup). It is safe while backups run on other hosts: it marks
what it will delete, waits until every backup that started before the mark has
finished, and deletes on this run or a later one (docs/format.md, "Locks and
prune markers"). It needs only the writer key. With S3 Object Lock, objects
still under retention are left and listed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPrune(cmd, g, dryRun) },
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "show what would be deleted and how much space it frees")
	return cmd
}

func runPrune(cmd *cobra.Command, g *globals, dryRun bool) error {
	repo, err := g.openRepo(cmd.Context(), false)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	rep, err := repo.Prune(cmd.Context(), repository.PruneOptions{DryRun: dryRun, Host: host})
	if !dryRun && (err != nil || rep.Swept) {
		rec := repository.AuditRecord{Detail: map[string]string{}}
		if rep != nil {
			rec.Detail["deleted_packs"], rec.Detail["deleted_bytes"] = fmt.Sprint(rep.Deleted), fmt.Sprint(rep.DeletedBytes)
		}
		audit(cmd.Context(), repo, "prune", err, rec)
	}
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), rep)
	}
	printPrune(cmd, rep, dryRun)
	return nil
}

func printPrune(cmd *cobra.Command, rep *repository.PruneReport, dryRun bool) {
	w := cmd.OutOrStdout()
	switch {
	case rep.Candidates == 0:
		fmt.Fprintln(w, "nothing to prune: every stored pack is needed by a snapshot")
	case dryRun:
		fmt.Fprintf(w, "would delete %d packs, freeing %s (nothing was changed)\n", rep.Candidates, bytesStr(rep.CandidateBytes))
	case !rep.Swept:
		fmt.Fprintf(w, "marked %d packs for deletion; they go once these backups, which started before the mark, have finished (run prune again):\n  %s\n",
			rep.Candidates, strings.Join(rep.WaitingFor, "\n  "))
	default:
		fmt.Fprintf(w, "deleted %d packs, freed %s", rep.Deleted, bytesStr(rep.DeletedBytes))
		if rep.Kept > 0 {
			fmt.Fprintf(w, "; kept %d that a backup finished meanwhile came to use", rep.Kept)
		}
		fmt.Fprintln(w)
	}
	if rep.StaleLocks > 0 {
		fmt.Fprintf(w, "removed %d stale locks of backups that died\n", rep.StaleLocks)
	}
	if len(rep.Locked) > 0 {
		fmt.Fprintf(w, "%d objects are still under retention (Object Lock) and were left; a later prune deletes them:\n  %s\n",
			len(rep.Locked), strings.Join(rep.Locked, "\n  "))
	}
}
