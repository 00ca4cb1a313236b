package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

func newWALPushCmd(g *globals) *cobra.Command {
	var parallel int
	cmd := &cobra.Command{
		Use:   "wal-push [--parallel N] PATH",
		Short: "Archive one WAL file (PostgreSQL's archive_command = 'coffer wal-push %p')",
		Long: `wal-push stores the WAL file at PATH (relative to the data directory, as
PostgreSQL passes %p) compressed and encrypted to the repository key. It needs
the writer key only (COFFER_WRITER_KEY_FILE) and exits 0 only once the file is
stored. Archiving a file again with the same content succeeds; a file archived
before with other content is refused, so PostgreSQL keeps it and retries.

With --parallel N, it also stores up to N-1 of the next files PostgreSQL has
marked ready (pg_wal/archive_status/*.ready) at the same time, so that a busy
server is not held back by one upload at a time; when PostgreSQL then asks for
those, wal-push finds them stored and returns at once. Its exit status is that
of PATH alone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := filepath.Base(args[0])
			if !repository.ValidWALName(file) {
				return fmt.Errorf("wal-push: %q is not a WAL file PostgreSQL archives (archive_command = 'coffer wal-push %%p')", args[0])
			}
			repo, err := g.openRepo(cmd.Context(), false)
			if err != nil {
				return err
			}
			ahead := readyAfter(args[0], parallel-1)
			eg, ctx := errgroup.WithContext(cmd.Context())
			for _, p := range ahead {
				eg.Go(func() error {
					// Best effort: PostgreSQL archives each of these itself.
					if content, err := readWALFile(p); err == nil {
						repo.PushWAL(ctx, filepath.Base(p), content)
					}
					return nil
				})
			}
			content, err := readWALFile(args[0])
			if err == nil {
				_, err = repo.PushWAL(cmd.Context(), file, content)
			}
			eg.Wait()
			return err
		},
	}
	cmd.Flags().IntVar(&parallel, "parallel", 1, "store up to this many WAL files at once (the next ready ones ahead)")
	return noJSON(cmd, "it is PostgreSQL's archive_command and prints nothing; its exit status is the answer")
}

// readyAfter returns up to n WAL files that PostgreSQL marked ready for
// archiving after the one at path, oldest first (paths beside path).
func readyAfter(path string, n int) []string {
	if n <= 0 {
		return nil
	}
	dir, file := filepath.Dir(path), filepath.Base(path)
	ready, _ := filepath.Glob(filepath.Join(dir, "archive_status", "*.ready"))
	var out []string
	for _, r := range ready { // Glob sorts
		name := strings.TrimSuffix(filepath.Base(r), ".ready")
		if name > file && repository.ValidWALName(name) && !strings.HasSuffix(name, ".partial") {
			out = append(out, filepath.Join(dir, name))
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// readWALFile reads a WAL file PostgreSQL hands to archive_command, refusing
// anything larger than a WAL segment can be.
func readWALFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wal-push: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, repository.MaxWALFile+1))
	if err != nil {
		return nil, fmt.Errorf("wal-push: read %s: %w", path, err)
	}
	if len(b) > repository.MaxWALFile {
		return nil, fmt.Errorf("wal-push: %s is larger than any WAL segment", path)
	}
	return b, nil
}

func newWALFetchCmd(g *globals) *cobra.Command {
	return noJSON(&cobra.Command{
		Use:   "wal-fetch FILE PATH",
		Short: "Restore one archived WAL file to PATH (restore_command = 'coffer wal-fetch %f %p')",
		Long: `wal-fetch writes the archived WAL file FILE to PATH, after decrypting it and
checking it against what wal-push stored under its name. It needs an
operator's identity. It exits 1 when FILE is not in the archive (as PostgreSQL
expects at the end of the archive) and 2 when its stored copy fails the checks:
then recovery stops rather than replay wrong WAL.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := g.openRepo(cmd.Context(), true)
			if err != nil {
				return err
			}
			content, err := repo.FetchWAL(cmd.Context(), args[0])
			if errors.Is(err, storage.ErrNotFound) {
				return &exitError{code: 1, msg: err.Error(), err: err}
			}
			if err != nil {
				return &exitError{code: 2, msg: err.Error(), err: err}
			}
			return atomicfile.Write(args[1], atomicfile.Options{}, func(w io.Writer) error {
				_, err := w.Write(content)
				return err
			})
		},
	}, "it is PostgreSQL's restore_command and prints nothing; its exit status is the answer")
}

func newWALStatusCmd(g *globals) *cobra.Command {
	var pg string
	cmd := &cobra.Command{
		Use:   "wal-status --postgres URL",
		Short: "Show a server's WAL archiving: the last file archived, when, failures, and the queue",
		Long: `wal-status reads pg_stat_archiver and the archiver's queue (the WAL files
marked ready and not yet archived) of the server. It exits non-zero when the
last archiving attempt failed. The daemon reads it every minute for sources
with physical: true and exports it as metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pg == "" {
				return errors.New("wal-status: give the server: --postgres URL")
			}
			st, err := postgres.Archiver(cmd.Context(), pg)
			if err != nil {
				return err
			}
			failing := st.LastFailed != "" && st.FailedTime.After(st.LastTime)
			if g.json {
				if err := printJSON(cmd.OutOrStdout(), st); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				if st.LastArchived == "" {
					fmt.Fprintln(w, "last archived:  nothing yet")
				} else {
					fmt.Fprintf(w, "last archived:  %s, %s ago\n", termsafe.String(st.LastArchived), time.Since(st.LastTime).Round(time.Second))
				}
				fmt.Fprintf(w, "archived:       %d files, %d failures\n", st.Archived, st.Failed)
				if st.Ready >= 0 {
					fmt.Fprintf(w, "waiting:        %d files\n", st.Ready)
				}
			}
			if failing {
				return fmt.Errorf("wal-status: archiving of %s failed at %s, after the last success: see the server's log for archive_command's error", termsafe.String(st.LastFailed), st.FailedTime.Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pg, "postgres", "", "the server (postgres://USER@HOST:PORT/DB or a socket address)")
	return cmd
}
