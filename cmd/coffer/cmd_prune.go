package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newPruneCmd(g *globals) *cobra.Command {
	var dryRun bool
	var tempGrace time.Duration
	var rp repackFlags
	cmd := &cobra.Command{
		Use:   "prune [--dry-run] [--repack [--max-unused 10%]]",
		Short: "Delete stored data that no snapshot needs",
		Long: `prune deletes the packs that no snapshot references (after forget, or left by
an interrupted backup). It is safe while backups run on other hosts: it marks
what it will delete, waits until every backup that started before the mark has
finished, and deletes on this run or a later one (docs/format.md, "Locks and
prune markers"). A backup's lock is stale when the storage last dated it more
than 30 minutes ago (no host's clock is trusted), or at once when its process
died on this host. It needs only the writer key. With S3 Object Lock, objects
still under retention are left and listed. In a local repository it also removes
the temporary files (.tmp-*) of writers killed mid-write, once older than
--temp-grace by the file system's clock and held by no running writer.

--repack also rewrites the packs more than --max-unused of which no snapshot
references: their live chunks, each verified, go into new packs, and the old
packs are deleted like unreferenced ones, once no backup that might reuse them
runs. It needs an operator's identity (COFFER_IDENTITY_FILE); without one, prune
says how much a repack would free. Packs under Object Lock retention are left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPrune(cmd, g, dryRun, tempGrace, rp) },
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "show what would be deleted and how much space it frees")
	cmd.Flags().DurationVar(&tempGrace, "temp-grace", repository.DefaultTempGrace, "local repositories: remove temporary files of killed writers once this old")
	rp.register(cmd)
	return cmd
}

func runPrune(cmd *cobra.Command, g *globals, dryRun bool, tempGrace time.Duration, rp repackFlags) error {
	maxUnused, err := rp.share()
	if err != nil {
		return err
	}
	repo, err := g.openRepo(cmd.Context(), false)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if tempGrace <= 0 {
		return fmt.Errorf("prune: --temp-grace %s: give a positive duration, e.g. 1h", tempGrace)
	}
	rep, err := repo.Prune(cmd.Context(), repository.PruneOptions{DryRun: dryRun, Host: host, TempGrace: tempGrace, Now: clock(),
		Repack: rp.repack, MaxUnused: maxUnused})
	if !dryRun && (err != nil || rep.Swept || rep.TempFiles > 0 || repacked(rep)) {
		rec := repository.AuditRecord{Detail: map[string]string{}}
		if rep != nil {
			rec.Detail["deleted_packs"], rec.Detail["deleted_bytes"] = fmt.Sprint(rep.Deleted), fmt.Sprint(rep.DeletedBytes)
			if rep.DeletedLists > 0 {
				rec.Detail["deleted_lists"] = fmt.Sprint(rep.DeletedLists)
			}
			if rep.TempFiles > 0 {
				rec.Detail["temp_files_removed"] = fmt.Sprint(rep.TempFiles)
			}
			if rp := rep.Repack; rp != nil && rp.Rewritten > 0 {
				rec.Detail["repacked_packs"], rec.Detail["repack_written_bytes"] = fmt.Sprint(rp.Rewritten), fmt.Sprint(rp.WrittenBytes)
			}
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
	printRepack(cmd.OutOrStdout(), rep, rp.repack, dryRun)
	return nil
}

func printPrune(cmd *cobra.Command, rep *repository.PruneReport, dryRun bool) {
	w := cmd.OutOrStdout()
	lists := ""
	if rep.CandidateLists > 0 {
		lists = fmt.Sprintf(" and %d chunk lists", rep.CandidateLists)
	}
	switch {
	case rep.Candidates == 0 && rep.CandidateLists == 0:
		fmt.Fprintln(w, "nothing to prune: every stored pack is needed by a snapshot")
	case dryRun:
		fmt.Fprintf(w, "would delete %s%s, freeing %s (nothing was changed)\n", count(rep.Candidates, "pack"), lists, bytesStr(rep.CandidateBytes))
	case !rep.Swept:
		fmt.Fprintf(w, "marked %s%s for deletion; they go once these backups, which started before the mark, have finished (run prune again):\n  %s\n",
			count(rep.Candidates, "pack"), lists, strings.Join(termsafe.Strings(rep.WaitingFor), "\n  "))
	default:
		fmt.Fprintf(w, "deleted %s, freed %s", count(rep.Deleted, "pack"), bytesStr(rep.DeletedBytes))
		if rep.Kept > 0 {
			fmt.Fprintf(w, "; kept %d that a backup finished meanwhile came to use", rep.Kept)
		}
		if rep.CandidateLists > 0 {
			fmt.Fprintf(w, "; deleted %d chunk lists", rep.DeletedLists)
		}
		if rep.KeptLists > 0 {
			fmt.Fprintf(w, ", kept %d that a backup finished meanwhile came to use", rep.KeptLists)
		}
		fmt.Fprintln(w)
	}
	if rep.WALCandidates > 0 {
		if dryRun {
			fmt.Fprintf(w, "would delete %d WAL files older than the oldest base backup\n", rep.WALCandidates)
		} else {
			fmt.Fprintf(w, "deleted %d of %d WAL files older than the oldest base backup\n", rep.WALDeleted, rep.WALCandidates)
		}
	}
	if rep.TempFiles > 0 {
		verb := "removed"
		if dryRun {
			verb = "would remove"
		}
		fmt.Fprintf(w, "%s %d temporary files (%s) of writers killed mid-write\n", verb, rep.TempFiles, bytesStr(rep.TempBytes))
	}
	if rep.StaleLocks > 0 {
		fmt.Fprintf(w, "removed %d stale locks (not refreshed for 30 minutes by the storage's clock) of backups that died\n", rep.StaleLocks)
	}
	for _, d := range termsafe.Strings(rep.DeadLocks) {
		fmt.Fprintf(w, "removed the lock of a dead process on this host: %s\n", d)
	}
	if len(rep.Foreign) > 0 {
		fmt.Fprintf(w, "%d objects are not coffer's and were left alone (remove them if you know them):\n  %s\n",
			len(rep.Foreign), strings.Join(termsafe.Strings(rep.Foreign), "\n  "))
	}
	if len(rep.Locked) > 0 {
		fmt.Fprintf(w, "%d objects are still under retention (Object Lock) and were left; a later prune deletes them:\n  %s\n",
			len(rep.Locked), strings.Join(termsafe.Strings(rep.Locked), "\n  "))
	}
}
