// Package local keeps a repository's objects as files in a directory.
//
// Writes are atomic: each object is written to a temporary file in the same
// directory, synced, and renamed (or, for a put that must not overwrite,
// hard-linked) into place, so a reader (or a crash) sees either the whole
// object or none of it. Files are private to the owner.
// A writer killed mid-write leaves its temporary file (.tmp-*, mode 0600,
// encrypted like every object): SweepTemp, which prune runs, removes it.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// tempPrefix marks files being written; List skips them and SweepTemp
// removes those that their writer left behind.
const tempPrefix = ".tmp-"

// Backend stores objects under a root directory.
type Backend struct {
	root string
}

// Open returns a Backend rooted at dir. With create it makes dir (mode
// 0700) when missing; without it, a missing dir is an error.
func Open(dir string, create bool) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("repository path %s: %w", dir, err)
	}
	if create {
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("create repository directory %s: %w", abs, err)
		}
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("repository directory %s does not exist: check COFFER_REPO, or run coffer init", abs)
		}
		return nil, fmt.Errorf("repository directory %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("repository path %s is not a directory", abs)
	}
	return &Backend{root: abs}, nil
}

// Location is the repository directory.
func (b *Backend) Location() string { return b.root }

func (b *Backend) path(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.Contains(name, "\\") {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

// Put writes data to a temporary file, syncs it and renames it into place.
// With opts.NoOverwrite it links the file into place instead, which fails
// when the name is taken (storage.ErrExists) and never replaces a file.
func (b *Backend) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	if !opts.RetainUntil.IsZero() {
		return fmt.Errorf("put %s: retention: %w (object lock needs an S3 bucket)", name, storage.ErrUnsupported)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return diskError("create directory", dir, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return diskError("create temporary file in", dir, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The lock tells SweepTemp that a live writer holds the file; the
	// kernel drops it when the writer dies. A file system without locks
	// (some NFS and CIFS mounts) leaves the grace age alone to tell.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil &&
		!errors.Is(err, syscall.ENOLCK) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EOPNOTSUPP) {
		return diskError("lock", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return diskError("write", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return diskError("sync", tmp, err)
	}
	if err := f.Close(); err != nil {
		return diskError("close", tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if opts.NoOverwrite {
		if err := placeNew(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("put %s in %s: %w", name, b.root, storage.ErrExists)
			}
			return err
		}
		// The object is in place under its name; the temporary name goes.
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return diskError("remove temporary file", tmp, err)
		}
		ok = true
		return syncDir(dir)
	}
	if err := os.Rename(tmp, p); err != nil {
		return diskError("rename into", p, err)
	}
	ok = true
	return syncDir(dir)
}

// placeNew gives the complete file tmp the name p only if p does not
// exist, in one atomic step: a hard link fails with EEXIST when p exists.
// On a file system without hard links (exFAT, some network mounts) it
// falls back to rename without replace where the kernel has it. The error
// wraps fs.ErrExist when p exists.
func placeNew(tmp, p string) error {
	err := os.Link(tmp, p)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if rerr := renameNoReplace(tmp, p); rerr == nil || errors.Is(rerr, fs.ErrExist) {
		return rerr
	}
	return diskError("link into", p, fmt.Errorf("%w: the file system must support hard links or rename without replace, so that coffer never overwrites an object", err))
}

// diskError explains the failures an operator can act on.
func diskError(op, path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%s %s: the disk is full: free space or move the repository; nothing partial was kept: %w", op, path, err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%s %s: disk quota exceeded: raise the quota or free space: %w", op, path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %s: permission denied: the repository directory must be writable by this user: %w", op, path, err)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return diskError("sync directory", dir, err)
	}
	return nil
}

// Get opens the object and hands fn a reader of the asked range.
func (b *Backend) Get(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return notFound(name, err)
	}
	defer f.Close()
	var r io.Reader = f
	if offset > 0 || length > 0 {
		if length <= 0 {
			length = 1<<63 - 1 - offset
		}
		r = io.NewSectionReader(f, offset, length)
	}
	return fn(r)
}

func notFound(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	}
	return err
}

// Stat describes one object.
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	p, err := b.path(name)
	if err != nil {
		return storage.Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return storage.Info{}, notFound(name, err)
	}
	return storage.Info{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List walks the directory under prefix. Temporary files are skipped.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	// Walk from the deepest directory the prefix names, then filter.
	start := b.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while listing
			}
			return err
		}
		return fn(storage.Info{Name: name, Size: info.Size(), ModTime: info.ModTime()})
	})
	return err
}

// Delete removes an object; a missing one is not an error.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// SweepTemp removes the temporary files (.tmp-*) that writers killed
// mid-write left behind, and returns how many and how many bytes. A file
// goes only when it is older than grace, judged by its own modification
// time against a file written now into the same directory (the file
// system's clock, not this host's, should the directory be remote), and
// when no live writer holds its lock. With dryRun it only counts.
func (b *Backend) SweepTemp(ctx context.Context, grace time.Duration, dryRun bool) (files int, bytes int64, err error) {
	now, err := b.clock()
	if err != nil {
		return 0, 0, err
	}
	err = filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil || now.Sub(info.ModTime()) < grace {
			return nil // gone meanwhile, or young: its writer may be running
		}
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return nil // a live writer holds it
		}
		if !dryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return diskError("remove temporary file", p, err)
			}
		}
		files++
		bytes += info.Size()
		return nil
	})
	return files, bytes, err
}

// clock returns the file system's current time: the modification time of
// a file written now.
func (b *Backend) clock() (time.Time, error) {
	f, err := os.CreateTemp(b.root, tempPrefix+"clock-*")
	if err != nil {
		return time.Time{}, diskError("create temporary file in", b.root, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}
