package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

// repackFlags are prune's --repack and --max-unused.
type repackFlags struct {
	repack    bool
	maxUnused string
}

func (f *repackFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.repack, "repack", false, "also rewrite packs mostly unreferenced (needs an operator identity)")
	cmd.Flags().StringVar(&f.maxUnused, "max-unused", "10%", "with --repack: rewrite live packs more than this share of which no snapshot references")
}

// share parses --max-unused ("10%", "10" or "0.5%") as a share in (0, 1).
func (f *repackFlags) share() (float64, error) {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f.maxUnused), "%"))
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p < 0 || p >= 100 {
		return 0, fmt.Errorf("prune: --max-unused %q: give a percentage from 0%% to below 100%%, e.g. 10%%", f.maxUnused)
	}
	if p == 0 {
		return 1e-9, nil // any unreferenced byte at all
	}
	return p / 100, nil
}

func repacked(rep *repository.PruneReport) bool {
	return rep != nil && rep.Repack != nil && rep.Repack.Rewritten > 0
}

// printRepack says what repacking did or would free.
func printRepack(w io.Writer, rep *repository.PruneReport, asked, dryRun bool) {
	rp := rep.Repack
	switch {
	case rp == nil:
		if asked {
			fmt.Fprintln(w, "repack: this run finished an earlier prune's sweep; run prune --repack again to repack")
		}
		return
	case rp.Packs == 0:
		if asked {
			fmt.Fprintln(w, "repack: no live pack has more unreferenced data than --max-unused")
		}
		return
	case rp.Rewritten > 0:
		fmt.Fprintf(w, "repacked %s into %s of %s, leaving out %s that no snapshot references; the old packs are deleted with the candidates above\n",
			count(rp.Rewritten, "pack"), count(rp.Written, "new pack"), bytesStr(rp.WrittenBytes), bytesStr(rp.UnusedBytes))
	case asked && rp.NeedsIdentity:
		fmt.Fprintf(w, "repack: %s %s that no snapshot references; repacking needs an operator identity (COFFER_IDENTITY_FILE): nothing was repacked\n",
			livePacksHold(rp.Packs), bytesStr(rp.UnusedBytes))
	case asked && dryRun:
		fmt.Fprintf(w, "would repack %s, freeing about %s (nothing was changed)\n", count(rp.Packs, "pack"), bytesStr(rp.UnusedBytes))
	case !asked:
		fmt.Fprintf(w, "%s %s that no snapshot references: prune --repack (with an operator identity) would free it\n",
			livePacksHold(rp.Packs), bytesStr(rp.UnusedBytes))
	}
	printObjects(w, rp.Locked, "packs are under retention (Object Lock) and were not repacked: rewriting them would add bytes that cannot be freed yet")
	printObjects(w, rp.Damaged, "packs failed verification and were left as they are; run check --read-data")
}

// printObjects says how many names there are and what of them, then
// lists them, one a line, made safe for a terminal.
func printObjects(w io.Writer, names []string, what string) {
	if len(names) > 0 {
		fmt.Fprintf(w, "%d %s:\n  %s\n", len(names), what, strings.Join(termsafe.Strings(names), "\n  "))
	}
}

func livePacksHold(n int) string {
	if n == 1 {
		return "1 live pack holds"
	}
	return count(n, "live pack") + " hold"
}
