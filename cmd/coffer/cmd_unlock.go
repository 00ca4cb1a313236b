package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newUnlockCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "unlock [--remove-all]",
		Short: "Remove the locks of backups that died",
		Long: `unlock removes stale locks: those the storage last dated more than 30 minutes
ago (by the storage's clock, not this host's), and at once those of processes
that died on this host. Locks of running backups stay. Prune does the same
before it runs, so unlock is needed only to see and clear locks by hand.

--remove-all removes every lock, including those of running backups. A backup
whose lock is removed fails rather than write its snapshot, but a prune running
meanwhile may delete packs a backup about to write its snapshot reuses: use it
only when you know that no backup runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := g.openRepo(cmd.Context(), false)
			if err != nil {
				return err
			}
			if all {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: --remove-all removes the locks of running backups too; they will fail, and a prune meanwhile may delete what they use")
			}
			rep, err := repo.Unlock(cmd.Context(), repository.UnlockOptions{All: all})
			if err != nil {
				return err
			}
			if g.json {
				if rep.Removed == nil {
					rep.Removed = []string{}
				}
				return printJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			for _, s := range termsafe.Strings(rep.Removed) {
				fmt.Fprintf(w, "removed lock of %s\n", s)
			}
			for _, s := range termsafe.Strings(rep.Kept) {
				fmt.Fprintf(w, "kept lock of %s: it is live\n", s)
			}
			fmt.Fprintf(w, "%d locks removed, %d live locks kept\n", len(rep.Removed), len(rep.Kept))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "remove-all", false, "remove every lock, also those of running backups")
	return cmd
}
