package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newCheckCmd(g *globals) *cobra.Command {
	var readData bool
	var subset string
	cmd := &cobra.Command{
		Use:   "check [--read-data [--subset N%]]",
		Short: "Verify the repository's structure, and with --read-data its contents",
		Long: `check verifies that every index and snapshot is intact and authentic and that
every chunk a snapshot needs is stored (the writer key is enough). With
--read-data it also downloads, decrypts and verifies every pack (or a random
--subset of them), which needs an operator identity. Every damaged or missing
object is listed by name, and the exit status is 1 when there is one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			frac, err := parseSubset(subset)
			if err != nil {
				return err
			}
			if frac > 0 && !readData {
				return fmt.Errorf("check: --subset needs --read-data")
			}
			repo, err := g.openRepo(cmd.Context(), readData)
			if err != nil {
				return err
			}
			prog := newProgress(os.Stderr, "check")
			rep, err := repo.Check(cmd.Context(), repository.CheckOptions{ReadData: readData, Subset: frac, Progress: prog.check})
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
				return &exitError{code: 1, msg: fmt.Sprintf("check found %d problem(s): restore what you can from a good copy, and see docs/format.md", len(rep.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "download, decrypt and verify the data (needs COFFER_IDENTITY_FILE)")
	cmd.Flags().StringVar(&subset, "subset", "", "with --read-data, read only this share of the packs, e.g. 10%")
	return cmd
}

func printCheck(cmd *cobra.Command, rep *repository.CheckReport) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%d snapshots, %d index files, %d packs", rep.Snapshots, rep.IndexFiles, rep.Packs)
	if rep.PacksRead > 0 {
		fmt.Fprintf(w, ", %d packs read and verified", rep.PacksRead)
	}
	fmt.Fprintln(w)
	if n := len(rep.Unreferenced); n > 0 {
		fmt.Fprintf(w, "%d packs are not in any index (left by an interrupted backup; coffer prune removes them)\n", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "error: %s: %s\n", termsafe.String(p.Object), termsafe.Lines(p.Reason))
	}
	if rep.OK() {
		fmt.Fprintln(w, "no errors were found")
	}
}

// parseSubset reads "10%" or "0.1" as a fraction in (0, 1].
func parseSubset(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err == nil && strings.HasSuffix(s, "%") {
		v /= 100
	}
	if err != nil || v <= 0 || v > 1 {
		return 0, fmt.Errorf("check: --subset %q: give a percentage such as 10%% (more than 0, at most 100)", s)
	}
	return v, nil
}
