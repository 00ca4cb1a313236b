// Command coffer makes encrypted, deduplicated backups of databases and
// streams, restores them, and proves them with restore drills.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
)

// version is the tool's version, recorded in every snapshot.
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	g := &globals{}
	cmd, err := newRootCmd(g).ExecuteContextC(ctx)
	stopProfile()
	interrupted := ctx.Err() != nil
	stop()
	if err == nil {
		return
	}
	report := printError
	if g.json || jsonFlagGiven(os.Args[1:]) {
		report = printErrorJSON
	}
	if interrupted {
		// Ctrl-C or SIGTERM: say what it left, not "context canceled" or
		// the failure of a child that the signal stopped.
		report("interrupted: "+interruptedResult(cmd.Name()), nil)
		os.Exit(130)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			report(ee.msg, err)
		}
		os.Exit(ee.code)
	}
	// cobra indents its suggestions with a tab, which termsafe would
	// show escaped.
	report(strings.ReplaceAll(err.Error(), "\n\t", "\n  "), err)
	os.Exit(1)
}

// printError prints an error for a person. Error messages carry names from
// snapshots and servers (tables, databases, sources): they are escaped, on
// a terminal or not (a log is read on a terminal later), keeping their line
// breaks.
func printError(msg string, _ error) {
	fmt.Fprintln(os.Stderr, "coffer:", termsafe.Lines(msg))
}

// printErrorJSON prints an error as one line of JSON on standard error
// (standard output may be a restore's data). JSON escapes every control
// character, so the names in it are safe on a terminal too.
func printErrorJSON(msg string, err error) {
	printJSONLine(os.Stderr, describe(msg, err))
}

// jsonFlagGiven reports whether --json was given, for errors that come
// before cobra has parsed the flags (an unknown flag or command).
func jsonFlagGiven(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// interruptedResult says what an interrupted command left behind.
func interruptedResult(command string) string {
	switch command {
	case "backup":
		return "no snapshot was written (what was stored is removed by the next prune)"
	case "restore", "dump":
		return "the restore did not finish: no output file and no database was replaced (standard output holds a partial stream)"
	case "drill":
		return "the drill did not finish and recorded no verdict; its scratch copies are dropped (else by the next drill or coffer drill --cleanup)"
	case "prune", "forget":
		return "stopped between steps: the repository is consistent; run it again"
	}
	return "stopped before the end"
}

// exitError ends the command with a given status.
type exitError struct {
	code           int
	msg            string
	err            error  // the cause, if any, for the object and remedy of --json
	object, remedy string // for --json, when err gives none
}

func (e *exitError) Error() string       { return e.msg }
func (e *exitError) Unwrap() error       { return e.err }
func (e *exitError) ErrorObject() string { return e.object }
func (e *exitError) ErrorRemedy() string { return e.remedy }

func newRootCmd(g *globals) *cobra.Command {
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
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           version,
		PersistentPreRunE: refuseJSON(g),
	}
	root.PersistentFlags().StringVarP(&g.repo, "repo", "r", "", "repository (default $COFFER_REPO)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for machines")
	root.AddCommand(newInitCmd(g), newBackupCmd(g), newSnapshotsCmd(g), newRestoreCmd(g), newCheckCmd(g), newLsCmd(g), newForgetCmd(g), newPruneCmd(g), newUnlockCmd(g), newStatsCmd(g), newDrillCmd(g), newDrillsCmd(g), newAuditCmd(g), newPolicyCmd(g), newKeyCmd(g), newDaemonCmd(), newScheduleCmd(g), newConfigCmd(g), newDemoCmd(), newWALPushCmd(g), newWALFetchCmd(g), newWALStatusCmd(g), newCopyCmd(g), newTraceCmd(g), newClassifyCmd(g))
	root.AddCommand(newUndeleteCmd(g))
	addHabits(root, g)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			noJSON(c, "it prints help")
		case "completion":
			noJSON(c, "it prints shell scripts")
		}
	}
	return root
}
