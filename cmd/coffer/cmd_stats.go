package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newStatsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show snapshots per source, sizes, deduplication and locked bytes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := g.openRepo(cmd.Context(), false)
			if err != nil {
				return err
			}
			st, err := repo.Stats(cmd.Context())
			if err != nil {
				return err
			}
			wal, err := repo.SummarizeWAL(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), struct {
					*repository.Stats
					WAL *repository.WALSummary `json:"wal_archive"`
				}{st, wal})
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tSNAPSHOTS\tLOGICAL SIZE\tSTORED\tONLY THIS SOURCE")
			for _, s := range st.Sources {
				stored, unique := "-", "-"
				if st.PerSource {
					stored, unique = bytesStr(s.Stored), bytesStr(s.Unique)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", termsafe.String(s.Source), s.Snapshots, bytesStr(s.Logical), stored, unique)
			}
			tw.Flush()
			fmt.Fprintf(w, "\n%s holding %s, stored in %s\n", count(st.Snapshots, "snapshot"), bytesStr(st.Logical), bytesStr(st.Stored))
			fmt.Fprintf(w, "%s (%s before compression) in %s, %s\n", count(st.Chunks, "distinct chunk"), bytesStr(st.ChunkBytes), count(st.Packs, "pack"), bytesStr(st.PackBytes))
			fmt.Fprintf(w, "deduplication %s, compression %s\n", factor(st.Dedup), factor(st.Compression))
			if st.Stored > st.Logical {
				fmt.Fprintln(w, "(more is stored than the snapshots hold: on little data, the metadata and encryption weigh more than the savings)")
			}
			if wal.Files > 0 {
				fmt.Fprintf(w, "WAL archive: %d files, %s stored, segments %s to %s; newest archived %s ago (the point-in-time RPO)\n",
					wal.Files, bytesStr(wal.Bytes), wal.First, wal.Last, time.Since(wal.Newest).Round(time.Second))
			}
			fmt.Fprintf(w, "%s unreferenced inside packs that hold live chunks (what a repack would free); %s in packs no snapshot needs (what prune deletes)\n",
				bytesStr(st.Unreferenced), bytesStr(st.UnreferencedPacks))
			if st.LockedBytes > 0 {
				fmt.Fprintf(w, "%s of packs under Object Lock retention\n", bytesStr(st.LockedBytes))
			}
			return nil
		},
	}
}

// factor prints a saving factor: 3.2×, or - when there is nothing to
// compare.
func factor(f float64) string {
	switch {
	case f == 0:
		return "-"
	case f < 1:
		return fmt.Sprintf("%.2f×", f)
	}
	return fmt.Sprintf("%.1f×", f)
}
