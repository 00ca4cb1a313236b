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
			fmt.Fprintf(w, "\n%d snapshots holding %s, stored in %s (%.1f× smaller: deduplication and compression)\n",
				st.Snapshots, bytesStr(st.Logical), bytesStr(st.Stored), st.DedupRatio)
			fmt.Fprintf(w, "%d distinct chunks (%s before compression) in %d packs\n", st.Chunks, bytesStr(st.ChunkBytes), st.Packs)
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
