package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var source, output, to string
	var clean, verify bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest [--source NAME] [--output FILE | --to DATABASE]",
		Short: "Restore a snapshot to a file, standard output or a database",
		Long: `restore writes a snapshot's stream to --output FILE, or to standard output.
Every chunk is checked against its id and the whole stream against the digest
recorded at backup time. A file is written under a temporary name and renamed
only when the stream is complete and verified; an existing file is never
overwritten.

--to loads a database snapshot into a database (sqlite:PATH, mysql://…,
postgres://…), creating it when missing and refusing a
non-empty target unless --clean, and then compares every table's row count and
digest with those recorded at backup time. Needs an operator identity
(COFFER_IDENTITY_FILE).`,
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
			prog := newProgress(os.Stderr, "restore")
			opts := restore.Options{Progress: prog.restore}
			if to != "" {
				if output != "" {
					return fmt.Errorf("restore: give --output or --to, not both")
				}
				err := restoreToDatabase(cmd, g, repo, snap, to, restore.TargetOptions{Clean: clean, Jobs: jobs}, restore.DBOptions{Options: opts, Verify: verify})
				prog.done()
				return err
			}
			var sum *restore.Summary
			if output == "" || output == "-" {
				bw := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
				sum, err = restore.Run(ctx, repo, snap, bw, opts)
				if err == nil {
					err = bw.Flush()
				}
			} else {
				sum, err = restoreToFile(output, func(w io.Writer) (*restore.Summary, error) {
					return restore.Run(ctx, repo, snap, w, opts)
				})
			}
			prog.done()
			where := output
			if where == "" || where == "-" {
				where = "stdout"
			}
			audit(ctx, repo, "restore", err, repository.AuditRecord{Snapshot: snap.ID().String(), Source: snap.Source, Detail: map[string]string{"to": where}})
			if err != nil {
				if output == "" || output == "-" {
					return fmt.Errorf("%w\nthe output written so far is incomplete or wrong: discard it", err)
				}
				return err
			}
			if output != "" && output != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "restored snapshot %s (%s) to %s in %s\n", snap.ID().Short(),
					bytesStr(sum.Bytes), output, sum.Duration.Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with latest or a short id: only this source's snapshots")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (default: standard output)")
	cmd.Flags().StringVar(&to, "to", "", "load into this database: sqlite:PATH, mysql://USER@HOST:PORT/DB, postgres://USER@HOST:PORT/DB")
	cmd.Flags().BoolVar(&clean, "clean", false, "with --to: replace a target that is not empty")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 1, "with --to: parallel load jobs (pg_restore -j): helps databases with several large tables")
	cmd.Flags().BoolVar(&verify, "verify", true, "with --to: compare per-table digests after loading")
	return cmd
}

// restoreToFile runs fn into a temporary file beside path, which takes
// path's name only once complete; on failure nothing is left behind.
func restoreToFile(path string, fn func(io.Writer) (*restore.Summary, error)) (*restore.Summary, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("restore: %s already exists: choose another --output or remove it first", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var sum *restore.Summary
	err := atomicfile.Write(path, atomicfile.Options{NoReplace: true}, func(w io.Writer) error {
		var err error
		sum, err = fn(w)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w\nnothing was written to %s", err, path)
	}
	return sum, nil
}
