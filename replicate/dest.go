package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// openDestination opens dst as a copy of src, initialising it when it
// holds no repository yet. A destination holding another repository, or
// this one under other keys (a rotation on one side), is refused.
func openDestination(ctx context.Context, src *repository.Repo, dst storage.Backend, opts Options) (*repository.Repo, bool, error) {
	_, err := dst.Stat(ctx, repository.ConfigObject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if err := initDestination(ctx, src, dst, opts); err != nil {
			return nil, false, fmt.Errorf("copy: initialise %s: %w", dst.Location(), err)
		}
		to, err := openExisting(ctx, src, dst)
		return to, true, err
	case err != nil:
		return nil, false, fmt.Errorf("copy: read the config of %s: %w", dst.Location(), err)
	}
	to, err := openExisting(ctx, src, dst)
	return to, false, err
}

func openExisting(ctx context.Context, src *repository.Repo, dst storage.Backend) (*repository.Repo, error) {
	cfg, err := repository.LoadConfig(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	if cfg.ID != src.Config().ID {
		return nil, fmt.Errorf("copy: %s holds repository %s, not a copy of %s (repository %s): give an empty destination, or the one that holds this repository's copy: %w",
			dst.Location(), cfg.ID, src.Backend().Location(), src.Config().ID, repository.ErrNotCopy)
	}
	to, err := repository.OpenWriter(ctx, dst, src.WriterKey())
	if err != nil {
		return nil, fmt.Errorf("copy: open the destination %s: %w", dst.Location(), err)
	}
	if err := src.SameKeys(to.Config()); err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst.Location(), err)
	}
	return to, nil
}

// initDestination carries the key objects (ciphertext: they are encrypted
// to the operators) and then the config, whose presence makes the
// destination a repository. An interrupted initialisation is finished by
// the next copy: objects already carried are compared byte for byte.
func initDestination(ctx context.Context, src *repository.Repo, dst storage.Backend, opts Options) error {
	lock := opts.Lock
	if lock == nil && opts.KeepSourceLock {
		lock = src.Config().Lock
	}
	if err := repository.PrepareObjectLock(ctx, dst, lock); err != nil {
		return fmt.Errorf("%w (for a copy: give --lock none for a destination without Object Lock, or a bucket created with it)", err)
	}
	put := storage.PutOptions{NoOverwrite: true}
	if lock != nil {
		put.RetainUntil = opts.Now().Add(time.Duration(lock.Days) * 24 * time.Hour)
	}
	var names []string
	if err := src.Backend().List(ctx, "keys/", func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return fmt.Errorf("list the source's keys: %w", err)
	}
	for _, name := range names {
		b, err := storage.ReadAll(ctx, src.Backend(), name)
		if err != nil {
			return fmt.Errorf("read the source's %s (the copy needs credentials that may read keys/): %w", name, err)
		}
		if err := putSame(ctx, dst, name, b, put); err != nil {
			return err
		}
	}
	cfg, err := src.ConfigForCopy(lock)
	if err != nil {
		return err
	}
	// config last: once it exists the destination is a repository.
	return putSame(ctx, dst, repository.ConfigObject, cfg, put)
}

// putSame stores b under name unless an object with exactly those bytes is
// there already (an interrupted initialisation).
func putSame(ctx context.Context, dst storage.Backend, name string, b []byte, opts storage.PutOptions) error {
	err := dst.Put(ctx, name, b, opts)
	if !errors.Is(err, storage.ErrExists) {
		if err != nil {
			return fmt.Errorf("store %s (the first copy initialises the destination and needs credentials that may write config and keys/, as `coffer init`; later copies need only a copier's): %w", name, err)
		}
		return nil
	}
	got, rerr := storage.ReadAll(ctx, dst, name)
	if rerr != nil {
		return fmt.Errorf("%s exists at %s: %w", name, dst.Location(), rerr)
	}
	if !bytes.Equal(got, b) {
		return fmt.Errorf("%s exists at %s with other content: the destination holds (part of) another repository; give an empty destination", name, dst.Location())
	}
	return nil
}
