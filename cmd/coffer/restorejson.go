package main

import (
	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// restoreFileJSON is what restore --output (or to standard output) prints
// with --json.
type restoreFileJSON struct {
	Snapshot string  `json:"snapshot"`
	Source   string  `json:"source"`
	Output   string  `json:"output"`         // the file, or "-" for standard output
	Part     string  `json:"part,omitempty"` // the part written; "" for the whole stream
	Size     int64   `json:"size_bytes"`
	Duration float64 `json:"duration_seconds"`
	// DigestChecked says whether the stream's digest was checked (only
	// the whole stream has one); every chunk is always checked.
	DigestChecked bool `json:"digest_checked"`
}

// printRestoreJSON prints the result of a restore to a file, on standard
// output; or on standard error when standard output holds the stream.
func printRestoreJSON(cmd *cobra.Command, snap *repository.Snapshot, output string, part *engine.Part, sum *restore.Summary) error {
	res := restoreFileJSON{Snapshot: snap.ID().String(), Source: snap.Source, Output: output, Size: sum.Bytes,
		Duration: sum.Duration.Seconds(), DigestChecked: part == nil}
	if part != nil {
		res.Part = part.Name
	}
	if output == "" || output == "-" {
		// One line, among what else standard error may carry (warnings).
		res.Output = "-"
		return printJSONLine(cmd.ErrOrStderr(), res)
	}
	return printJSON(cmd.OutOrStdout(), res)
}
