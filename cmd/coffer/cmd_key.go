package main

import (
	"fmt"
	"slices"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/agekeys"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key list | add RECIPIENT | remove RECIPIENT | trust [--yes] | rotate | reencrypt | export-writer FILE",
		Short: "List, add or remove the operators who can decrypt the repository; trust its keys",
		Long: `The repository key and the writer key are stored encrypted to the operators'
age recipients. add and remove re-encrypt those two small objects to the new set
of operators (data is not touched) and need an operator's identity
(COFFER_IDENTITY_FILE). Every change is recorded in the audit log.

Removing an operator stops them from decrypting the keys stored from now on; an
operator who kept a copy of the repository key could still read the data, so
follow a removal with ` + "`coffer key rotate --reencrypt`" + `: new keys for everything
stored from then on, and everything stored before rewritten to them.

key trust shows the writer key fingerprint this machine pinned for the repository
and the one it has now, and pins the new one (see coffer key trust --help).`,
	}
	cmd.AddCommand(newKeyTrustCmd(g), newKeyRotateCmd(g), newKeyReencryptCmd(g), newKeyExportWriterCmd(g))
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the operators' recipients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := g.openRepo(cmd.Context(), false)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), operatorsJSON{Operators: repo.Config().Operators})
			}
			for _, o := range repo.Config().Operators {
				fmt.Fprintln(cmd.OutOrStdout(), termsafe.String(o))
			}
			return nil
		},
	})
	change := func(use, short string, edit func(ops []string, r string) ([]string, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				repo, err := g.openRepo(cmd.Context(), true)
				if err != nil {
					return err
				}
				names, err := edit(slices.Clone(repo.Config().Operators), args[0])
				if err != nil {
					return err
				}
				rs, err := parseRecipients(names)
				if err != nil {
					return err
				}
				err = repo.SetOperators(cmd.Context(), rs, names)
				audit(cmd.Context(), repo, "key-change", err, repository.AuditRecord{Detail: map[string]string{"change": use[:3] + " " + args[0]}})
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(cmd.OutOrStdout(), operatorsJSON{Operators: names})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "the repository and writer keys are now encrypted to %d operator(s)\n", len(names))
				if use[:3] == "rem" {
					fmt.Fprintln(cmd.OutOrStdout(), "the removed operator may have kept the keys: run `coffer key rotate --reencrypt --writer-key-out FILE` so that they read nothing stored")
				}
				return nil
			},
		}
	}
	cmd.AddCommand(change("add RECIPIENT", "Let another operator decrypt the repository", func(ops []string, r string) ([]string, error) {
		if slices.Contains(ops, r) {
			return nil, fmt.Errorf("key add: %s is already an operator", r)
		}
		return append(ops, r), nil
	}), change("remove RECIPIENT", "Stop an operator from decrypting the keys stored from now on", func(ops []string, r string) ([]string, error) {
		i := slices.Index(ops, r)
		if i < 0 {
			return nil, fmt.Errorf("key remove: %s is not an operator (coffer key list)", r)
		}
		if len(ops) == 1 {
			return nil, fmt.Errorf("key remove: %s is the only operator: add another first, or nobody could restore", r)
		}
		return slices.Delete(ops, i, i+1), nil
	}))
	return cmd
}

// operatorsJSON is what key list, add and remove print with --json.
type operatorsJSON struct {
	Operators []string `json:"operators"`
}

func parseRecipients(names []string) ([]age.Recipient, error) {
	var rs []age.Recipient
	for _, n := range names {
		r, err := agekeys.ParseRecipient(n, pluginUI())
		if err != nil {
			return nil, fmt.Errorf("operator recipient %s: %w", n, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}
