package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/asof"
	"github.com/coffer-backup/coffer/storage/retry"
)

// asOfFlag is --as-of TIME: an RFC 3339 time, kept in globals so that
// every open of the repository goes through the view of that moment.
type asOfFlag struct{ t *time.Time }

func (f asOfFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.UTC().Format(time.RFC3339Nano)
}

func (f asOfFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("give an RFC 3339 time such as 2026-12-01T14:05:00Z (the bucket's clock)")
	}
	*f.t = t
	return nil
}

func (asOfFlag) Type() string { return "TIME" }

// addAsOfFlag registers --as-of on a command that only reads.
func addAsOfFlag(cmd *cobra.Command, g *globals, what string) {
	cmd.Flags().Var(asOfFlag{&g.asOf}, "as-of", what+" the repository as it was at TIME (RFC 3339), from the old versions of a versioned S3 bucket: "+
		"for every object the newest version written at or before TIME, by the bucket's clock")
}

// asOfView returns be as it was at moment at, read-only, with retries.
// Only a store that keeps versions has a past: a local directory is
// refused. A repository that did not exist then is a clear error.
func asOfView(ctx context.Context, be storage.Backend, at time.Time) (storage.Backend, error) {
	src, ok := storage.Find[asof.Source](be)
	if !ok {
		return nil, fmt.Errorf("--as-of reads the old versions of objects in a versioned S3 bucket; %s keeps no versions (a local directory): restore from a copy of the repository instead (coffer copy)",
			termsafe.String(be.Location()))
	}
	if _, protected, err := bucketProtected(ctx, be); err == nil && !protected {
		fmt.Fprintf(os.Stderr, "warning: the bucket of %s is not versioned: --as-of sees the objects written up to then that are still there, but no overwritten or deleted one\n",
			termsafe.String(be.Location()))
	}
	view := asof.New(src, at)
	if _, err := view.Stat(ctx, repository.ConfigObject); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("there was no repository at %s at %s: %s: give a later --as-of", termsafe.String(be.Location()), at.UTC().Format(time.RFC3339), termsafe.String(err.Error()))
		}
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "reading %s (the bucket's versions, by the bucket's clock)\n", termsafe.String(view.String()))
	return retry.New(view, 5, 250*time.Millisecond), nil
}
