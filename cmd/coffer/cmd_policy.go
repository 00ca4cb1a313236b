package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage/location"
)

func newPolicyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "policy writer|maintainer|restorer",
		Short: "Print the minimal S3 bucket policy for a role",
		Long: `policy prints the IAM policy a role needs on the repository's bucket and
prefix (from --repo or COFFER_REPO), and nothing more: the writer (backup host)
can add data but not read or delete it, the maintainer can forget and prune but
not read data, the restorer can read everything and record what it did.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: repository.Roles,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := g.repoURL()
			if err != nil {
				return err
			}
			if !strings.HasPrefix(addr, "s3://") {
				return fmt.Errorf("policy: %s is not an S3 repository (s3://BUCKET/PREFIX)", addr)
			}
			bucket, prefix, err := location.ParseS3(addr)
			if err != nil {
				return err
			}
			p, err := repository.BucketPolicy(args[0], bucket, prefix)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p)
			return nil
		},
	}
}
