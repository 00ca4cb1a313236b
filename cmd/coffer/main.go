// Command coffer makes encrypted, deduplicated backups of databases and
// streams, restores them, and proves them with restore drills.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
)

// version is the tool's version, recorded in every snapshot.
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	err := newRootCmd().ExecuteContext(ctx)
	stopProfile()
	stop()
	if err != nil {
		// Error messages carry names from snapshots and servers (tables,
		// databases, sources): they are escaped, on a terminal or not
		// (a log is read on a terminal later), keeping their line breaks.
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "coffer:", termsafe.Lines(ee.msg))
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "coffer:", termsafe.Lines(err.Error()))
		os.Exit(1)
	}
}

// exitError ends the command with a given status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "coffer",
		Short: "Encrypted, deduplicated backups of customer databases, with restore drills",
		Long: `coffer backs up databases and streams into an encrypted repository (a local
directory or an S3 bucket). The backup host holds only a writer key: it can add
backups but never read them. Operators restore with their age identity.

Environment:
  COFFER_REPO                  repository: a path, file:///path or s3://BUCKET/PREFIX
  COFFER_S3_ENDPOINT           S3 endpoint URL (e.g. http://127.0.0.1:9000); AWS when unset
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION   S3 credentials
  COFFER_WRITER_KEY_FILE       the writer key file (backup hosts, maintainers)
  COFFER_IDENTITY_FILE         an operator's age identity file (restore, check --read-data)
  COFFER_IDENTITY_PASSPHRASE_FILE  passphrase of a protected identity file (else asked on the terminal)
  COFFER_TRUST_FILE            where an operator's pins live (default: the identity file's path + ".trust")
  COFFER_WRITER_FINGERPRINT    pin the writer key restorers accept (machines without state; wins over the trust file)`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringVarP(&g.repo, "repo", "r", "", "repository (default $COFFER_REPO)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for machines")
	root.AddCommand(newInitCmd(g), newBackupCmd(g), newSnapshotsCmd(g), newRestoreCmd(g), newCheckCmd(g), newLsCmd(g), newForgetCmd(g), newPruneCmd(g), newUnlockCmd(g), newStatsCmd(g), newDrillCmd(g), newDrillsCmd(g), newAuditCmd(g), newPolicyCmd(g), newKeyCmd(g), newDaemonCmd(), newScheduleCmd(), newConfigCmd(), newDemoCmd(), newWALPushCmd(g), newWALFetchCmd(g), newWALStatusCmd(g), newTraceCmd(g), newClassifyCmd(g))
	return root
}
