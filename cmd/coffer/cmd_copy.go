package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/replicate"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

type copyOptions struct {
	to        string
	sources   []string
	snapshots []string
	lockMode  string
	lockDays  int
}

func newCopyCmd(g *globals) *cobra.Command {
	o := &copyOptions{}
	cmd := &cobra.Command{
		Use:   "copy --to REPO2 [--source S] [--snapshot ID]...",
		Short: "Copy snapshots, and everything they need, into a second repository",
		Long: `copy carries the repository's snapshots (or those of --source, or the ones
given with --snapshot) with everything they need into a second repository on
any backend, as ciphertext: the writer key is enough and nothing is decrypted.
Every object is authenticated at the source before it is carried (packs against
their names, metadata against the writer key), and checked on arrival. The
second run copies only what is new; a copy killed at any point is finished by
the next run.

The destination is a full repository with the same repository id and keys:
restore, check and drill work on it with the same identity. The first copy
initialises it (with credentials that may write config and keys/, as init);
later copies need only the copier's rights (coffer policy copier). --lock and
--lock-days give a new destination its own Object Lock policy; without them it
takes the source's. Retention may differ: run forget and prune on each side.

Destination credentials come from the environment, never from flags:
  COFFER_COPY_S3_ENDPOINT, COFFER_COPY_AWS_ACCESS_KEY_ID,
  COFFER_COPY_AWS_SECRET_ACCESS_KEY, COFFER_COPY_AWS_SESSION_TOKEN,
  COFFER_COPY_AWS_REGION`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCopy(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "the destination repository: a path, file:///path or s3://BUCKET/PREFIX")
	f.StringArrayVar(&o.sources, "source", nil, "copy only the snapshots of this source (repeatable)")
	f.StringArrayVar(&o.snapshots, "snapshot", nil, "copy only this snapshot, by id or unique prefix (repeatable)")
	f.StringVar(&o.lockMode, "lock", "", "a new destination's S3 Object Lock mode: governance, compliance, or none (default: the source's)")
	f.IntVar(&o.lockDays, "lock-days", 0, "with --lock: days every copied object stays locked")
	cmd.MarkFlagRequired("to")
	return cmd
}

func runCopy(cmd *cobra.Command, g *globals, o *copyOptions) error {
	ctx := cmd.Context()
	lock, keep, err := copyLock(o)
	if err != nil {
		return err
	}
	src, err := g.openRepo(ctx, false)
	if err != nil {
		return err
	}
	dst, err := copyBackend(ctx, o.to, lock != nil || (keep && src.Config().Lock != nil))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	w := cmd.ErrOrStderr()
	sum, err := replicate.Copy(ctx, src, dst, replicate.Options{
		Sources: o.sources, Snapshots: o.snapshots, Lock: lock, KeepSourceLock: keep,
		Host: host, Now: clock(),
		Warn: func(err error) { fmt.Fprintf(w, "warning: %s\n", termsafe.Lines(err.Error())) },
	})
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), struct {
			*replicate.Summary
			Seconds float64 `json:"duration_seconds"`
		}{sum, sum.Duration.Seconds()})
	}
	out := cmd.OutOrStdout()
	if sum.Initialised {
		fmt.Fprintf(out, "initialised %s as a copy of repository %s\n", termsafe.String(sum.Destination), src.Config().ID)
	}
	fmt.Fprintf(out, "copied %d snapshots (%d already there), %d packs (%s; %d already there), %d chunk lists, %d records to %s in %s\n",
		sum.Snapshots, sum.SnapshotsPresent, sum.Packs, bytesStr(sum.Bytes), sum.PacksPresent, sum.Lists, sum.Records,
		termsafe.String(sum.Destination), sum.Duration.Round(1e6))
	if len(sum.Refused) > 0 {
		return &exitError{code: 3, msg: fmt.Sprintf("%d source objects were not copied (see the warnings): run `coffer check` on the source", len(sum.Refused))}
	}
	return nil
}

// copyLock reads --lock and --lock-days: a policy, or none with keep
// meaning "the source's".
func copyLock(o *copyOptions) (*repository.ObjectLock, bool, error) {
	switch {
	case o.lockMode == "" && o.lockDays == 0:
		return nil, true, nil
	case o.lockMode == "none" && o.lockDays == 0:
		return nil, false, nil
	case o.lockMode == "" || o.lockDays <= 0:
		return nil, false, fmt.Errorf("copy: give both --lock governance|compliance and --lock-days N (N > 0), or --lock none")
	}
	l := &repository.ObjectLock{Mode: o.lockMode, Days: o.lockDays}
	if err := l.Validate(); err != nil {
		return nil, false, fmt.Errorf("copy: %w", err)
	}
	return l, false, nil
}

// copyBackend opens the destination with its own credentials
// (COFFER_COPY_*), creating a missing bucket or directory.
func copyBackend(ctx context.Context, addr string, objectLock bool) (storage.Backend, error) {
	return location.Open(ctx, addr, location.S3Options{
		Endpoint:     os.Getenv("COFFER_COPY_S3_ENDPOINT"),
		AccessKey:    os.Getenv("COFFER_COPY_AWS_ACCESS_KEY_ID"),
		SecretKey:    os.Getenv("COFFER_COPY_AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("COFFER_COPY_AWS_SESSION_TOKEN"),
		Region:       os.Getenv("COFFER_COPY_AWS_REGION"),
		CreateBucket: true,
		ObjectLock:   objectLock,
	})
}
