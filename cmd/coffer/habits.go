package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
)

// Habits of the tools operators know: the verbs and flags of restic,
// pgBackRest and pg_dump that mean something in coffer get pointed to what
// coffer calls them, instead of a bare "unknown".

// verbHints name, for each command, the other tools' verbs it answers.
var verbHints = map[string][]string{
	"snapshots": {"list", "info", "backups"},
	"stats":     {"info"},
	"forget":    {"expire", "delete"},
	"init":      {"stanza-create", "create"},
	"check":     {"verify"},
	"wal-push":  {"archive-push"},
	"wal-fetch": {"archive-get"},
	"key":       {"key-add", "passwd"},
}

// flagHints say, per command, what another tool's flag is in coffer.
var flagHints = map[string]map[string]string{
	"restore": {
		"target":   "--output FILE writes a file, --to URL loads a database, --pgdata DIR (with --target-time, --target-lsn…) restores a physical backup to a moment",
		"include":  "--part NAME restores one part (coffer ls lists them); pg_restore -t TABLE picks a table from the restored archive",
		"set":      "--source NAME picks the source whose latest snapshot is restored",
		"type":     "--target-time, --target-lsn, --target-name or --target-xid, with --pgdata DIR",
		"pg1-path": "--pgdata DIR",
	},
	"backup": {
		"stdin-filename": "--source NAME names the stream",
		"type":           "--physical takes a base backup; without it a backup is a logical dump",
		"host":           "the snapshot records this machine's host name",
		"stanza":         "--source NAME",
	},
	"forget": {
		"keep-full": "--keep-daily/--keep-weekly N… apply to base backups as to dumps",
		"group-by":  "snapshots are grouped by source and host",
	},
	"snapshots": {
		"set": "--source NAME",
	},
}

// hintFlagError adds the hint of an unknown flag to cobra's error.
func hintFlagError(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	if hint, ok := flagHints[cmd.Name()][name]; ok {
		return &userError{msg: fmt.Sprintf("%v: coffer %s has no --%s", err, cmd.Name(), name), object: "--" + name, remedy: hint, err: err}
	}
	return &userError{msg: err.Error(), object: "--" + name, remedy: fmt.Sprintf("coffer %s --help lists its flags", cmd.Name()), err: err}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print coffer's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if g.json {
				return printJSON(w, map[string]string{"version": version, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
			}
			_, err := fmt.Fprintf(w, "coffer %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

// addHabits wires the hints into root's commands.
func addHabits(root *cobra.Command, g *globals) {
	root.AddCommand(newVersionCmd(g), newStatusCmd(g))
	root.SetFlagErrorFunc(hintFlagError)
	root.SuggestionsMinimumDistance = 2
	for _, c := range root.Commands() {
		c.SuggestFor = append(c.SuggestFor, verbHints[c.Name()]...)
		if c.Name() == "restore" {
			// restic's dump: the snapshot to standard output.
			c.Aliases = append(c.Aliases, "dump")
		}
	}
}

// count says n things, in the singular for one: "1 pack", "3 packs".
func count[N int | int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
