package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var dir string
	var customers int
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Back up, change, back up again and restore a synthetic customer database",
		Long: `demo runs coffer's main job on built-in synthetic data, with nothing but this
binary: it creates a SQLite customer database (customers, orders, payments), a
local repository with a fresh age identity, backs the database up, changes 1 %
of its rows, backs it up again, restores the first night into a new database
and proves each table equal to what was backed up, then drills both snapshots
and writes the drill's HTML report.

Everything happens in --dir (kept, so you can try the other commands on it) or
in a temporary directory that is removed at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keep := dir != ""
			if !keep {
				var err error
				if dir, err = os.MkdirTemp("", "coffer-demo-"); err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return fmt.Errorf("demo: %s is not empty: give a new or empty directory", dir)
			}
			res, err := demo.Run(cmd.Context(), demo.Options{Dir: dir, Customers: customers, Out: cmd.OutOrStdout(), Tool: "coffer " + version})
			if err != nil {
				return err
			}
			if !res.Verified {
				return errors.New("demo: the restored database does not match the backup")
			}
			w := cmd.OutOrStdout()
			if keep {
				fmt.Fprintf(w, "\nTry it yourself:\n  export COFFER_REPO=%s COFFER_IDENTITY_FILE=%s COFFER_WRITER_KEY_FILE=%s\n  coffer snapshots\n  coffer ls latest\n  coffer check --read-data\n  coffer drills\n",
					filepath.Join(dir, "repo"), filepath.Join(dir, "operator.txt"), filepath.Join(dir, "writer.key"))
			} else {
				fmt.Fprintln(w, "\n(all of it was in a temporary directory, now removed: pass --dir DIR to keep it and explore)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "work in this directory and keep it (default: a temporary one, removed)")
	cmd.Flags().IntVar(&customers, "customers", 20000, "customers to generate")
	return noJSON(cmd, "it is a guided tour for a person")
}
