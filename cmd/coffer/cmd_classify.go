package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/classify"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/restore"
)

// classifySample is how many values of each column classify looks at.
const classifySample = 2000

func newClassifyCmd(g *globals) *cobra.Command {
	var source, out string
	cmd := &cobra.Command{
		Use:   "classify SNAPSHOT|latest [--source NAME] [--output rules.yaml] [--json]",
		Short: "Propose a masking rule for every column of a database snapshot",
		Long: `classify reads a database snapshot (PostgreSQL, MariaDB/MySQL, SQLite) and
proposes, per column, a sensitivity class (payment, contact, identity, free text,
none) and a masking rule, from the column's name and from a sample of its values (e-mail and phone shapes, card numbers with a
valid Luhn digit, IBANs, dates of birth, free text holding e-mails or phones), with
the share of sampled values that matched. --output writes the proposals as a rules
file (default: fail) for restore --mask; review it and keep it in version control.
Needs an operator identity (COFFER_IDENTITY_FILE).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, err := g.openRepo(ctx, true)
			if err != nil {
				return err
			}
			snap, err := repo.FindSnapshot(ctx, args[0], source)
			if err != nil {
				return err
			}
			cols, err := restore.Sample(ctx, repo, snap, classifySample)
			if err != nil {
				return err
			}
			ps := make([]classify.Proposal, len(cols))
			for i, c := range cols {
				ps[i] = classify.Propose(classify.Column{Table: c.Table, Name: c.Column, Type: c.Type, Values: c.Values})
			}
			if out != "" {
				err := atomicfile.Write(out, atomicfile.Options{NoReplace: true}, func(w io.Writer) error {
					return classify.WriteRules(w, snap.ID().Short(), ps)
				})
				if err != nil {
					return fmt.Errorf("classify: write %s: %w", out, err)
				}
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			w := cmd.OutOrStdout()
			for _, p := range ps {
				share := ""
				if p.Share > 0 {
					share = fmt.Sprintf(" (%.0f%% of sampled values)", 100*p.Share)
				}
				fmt.Fprintf(w, "%s.%s\t%s\t%s\t%s%s\n", termsafe.String(p.Table), termsafe.String(p.Name), p.Class, p.Rule, p.Reason, share)
			}
			if out != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote the proposed rules to %s: review them before restore --mask\n", termsafe.String(out))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest or a short id: only this source's snapshots")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the proposals as a rules file (refused if it exists)")
	return cmd
}
