package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage/location"
)

func newPolicyCmd(g *globals) *cobra.Command {
	ifNoneMatch := "auto"
	cmd := &cobra.Command{
		Use:   "policy writer|maintainer|restorer|copier|copy-source|recovery",
		Short: "Print the minimal S3 bucket policy for a role",
		Long: `policy prints the IAM policy a role needs on the repository's bucket and
prefix (from --repo or COFFER_REPO), and nothing more: the writer (backup host)
can add data but not read or delete it, the maintainer can forget and prune but
not read data, the restorer can read everything and record what it did. For
coffer copy, copy-source reads every object of the source and holds a lock
there, and copier adds objects at an initialised destination as a writer does
(plus drill records, WAL and copy records), deleting nothing but its own locks.
recovery is coffer undelete's: it reads every version and copies old versions
back over the current objects (its puts carry no If-None-Match), and hides
newer objects behind delete markers, but may not delete a version.

Every object a role writes is named after its content and coffer never replaces
one. With --if-none-match require, the policy allows PutObject only with the
If-None-Match header (condition key s3:if-none-match), so even a compromised
backup host cannot overwrite a pack. AWS S3 supports the key; MinIO's policy
engine rejects it (as of the pinned release), so auto requires it only for AWS
endpoints. Without it a role with PutObject can overwrite objects: keep the
bucket versioned or under Object Lock (coffer init warns when it is neither).`,
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
			var require bool
			switch ifNoneMatch {
			case "require":
				require = true
			case "omit":
			case "auto":
				require = awsEndpoint(os.Getenv("COFFER_S3_ENDPOINT"))
			default:
				return fmt.Errorf("policy: --if-none-match %q: use auto, require or omit", ifNoneMatch)
			}
			p, err := repository.BucketPolicy(args[0], bucket, prefix, repository.PolicyOptions{IfNoneMatch: require})
			if err != nil {
				return err
			}
			if !require {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: this policy does not require If-None-Match (s3:if-none-match), so the role can overwrite objects it may put: "+
					"keep the bucket versioned or under Object Lock; pass --if-none-match require if the server's policy engine supports the key (AWS S3 does)")
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), policyJSON{Role: args[0], Bucket: bucket, Prefix: prefix, IfNoneMatch: require, Policy: json.RawMessage(p)})
			}
			fmt.Fprintln(cmd.OutOrStdout(), p)
			return nil
		},
	}
	cmd.Flags().StringVar(&ifNoneMatch, "if-none-match", ifNoneMatch, "require conditional puts in the policy: auto (only for AWS endpoints), require or omit")
	return cmd
}

// policyJSON is what policy prints with --json: the IAM policy document
// under "policy".
type policyJSON struct {
	Role        string          `json:"role"`
	Bucket      string          `json:"bucket"`
	Prefix      string          `json:"prefix"`
	IfNoneMatch bool            `json:"if_none_match"`
	Policy      json.RawMessage `json:"policy"`
}

// awsEndpoint reports whether the S3 endpoint is AWS's (empty means AWS),
// whose policy engine knows the s3:if-none-match condition key.
func awsEndpoint(ep string) bool {
	if ep == "" {
		return true
	}
	if i := strings.Index(ep, "://"); i >= 0 {
		ep = ep[i+3:]
	}
	host, _, _ := strings.Cut(ep, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	return host == "amazonaws.com" || strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}
