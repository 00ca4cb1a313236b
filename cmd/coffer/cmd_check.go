package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newCheckCmd(g *globals) *cobra.Command {
	var readData bool
	var subset string
	cmd := &cobra.Command{
		Use:   "check [--read-data [--subset N% | --subset n/t]]",
		Short: "Verify the repository's structure, and with --read-data its contents",
		Long: `check verifies that every index and snapshot is intact and authentic and that
every chunk a snapshot needs is stored (the writer key is enough). With
--read-data it also downloads, decrypts and verifies every pack, which needs
an operator identity, or a --subset of them: a random share (10%: at least
one pack), or slice n/t (packs sorted by id, the pack at position i from 0 in
slice i mod t + 1), so that runs of 1/t, 2/t ... t/t read every pack once.
It always says how many packs it read, of how many, and how many of those
were damaged. Every damaged or missing object is listed by name, and the
exit status is 1 when there is one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sub, err := repository.ParseSubset(subset)
			if err != nil {
				return fmt.Errorf("check: %w", err)
			}
			if subset != "" && !readData {
				return fmt.Errorf("check: --subset needs --read-data")
			}
			repo, err := g.openRepo(cmd.Context(), readData)
			if err != nil {
				return err
			}
			if g.asOf.IsZero() {
				warnBucket(cmd, repo.Backend(), false)
			}
			prog := newProgress(os.Stderr, "check")
			rep, err := repo.Check(cmd.Context(), repository.CheckOptions{ReadData: readData, Subset: sub, Progress: prog.check})
			prog.done()
			if err != nil {
				return err
			}
			if g.json {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printCheck(cmd, rep)
			}
			if !rep.OK() {
				remedy := "restore what you can from a good copy, and see docs/format.md"
				return &exitError{code: 1, msg: fmt.Sprintf("check found %d problem(s): %s", len(rep.Problems), remedy),
					object: rep.Problems[0].Object, remedy: remedy}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "download, decrypt and verify the data (needs COFFER_IDENTITY_FILE)")
	addAsOfFlag(cmd, g, "check")
	cmd.Flags().StringVar(&subset, "subset", "", "with --read-data, read only these packs: a share such as 10% (at least one), or slice n/t such as 1/5")
	return cmd
}

func printCheck(cmd *cobra.Command, rep *repository.CheckReport) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s, %s, %s\n", count(rep.Snapshots, "snapshot"), count(rep.IndexFiles, "index file"), count(rep.Packs, "pack"))
	if rep.ReadData {
		fmt.Fprintf(w, "read %d of %s", rep.PacksRead, count(rep.Packs, "pack"))
		if rep.Subset != "" {
			fmt.Fprintf(w, " (subset %s: %d chosen)", termsafe.String(rep.Subset), rep.PacksChosen)
		}
		switch {
		case rep.PacksDamaged > 0:
			fmt.Fprintf(w, ": %d damaged, %d verified\n", rep.PacksDamaged, rep.PacksRead-rep.PacksDamaged)
		case rep.PacksRead > 0:
			fmt.Fprintln(w, ": all verified")
		default:
			fmt.Fprintln(w, ": no pack's data was verified")
		}
	}
	if n := len(rep.Unreferenced); n > 0 {
		fmt.Fprintf(w, "%d packs are not in any index (left by an interrupted backup; coffer prune removes them)\n", n)
	}
	if n := len(rep.UnreferencedLists); n > 0 {
		fmt.Fprintf(w, "%d chunk lists are named by no snapshot (left by forgotten snapshots or an interrupted backup; coffer prune removes them)\n", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "error: %s: %s\n", termsafe.String(p.Object), termsafe.Lines(p.Reason))
	}
	if rep.OK() {
		fmt.Fprintln(w, "no errors were found")
	}
}
