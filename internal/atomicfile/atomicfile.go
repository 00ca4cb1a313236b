// Package atomicfile writes files so that a reader, or a crash, sees the
// old file or the complete new one, never a part: the content goes to a
// temporary file beside the target, is synced, and only then takes the
// target's name.
package atomicfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
)

// Options adjust Write.
type Options struct {
	// Perm is the new file's mode (default 0600: coffer's files hold keys
	// or customer data).
	Perm os.FileMode
	// NoReplace makes Write fail, leaving it alone, if path exists.
	NoReplace bool
	// Check, when set, inspects the complete temporary file before it
	// takes path's name; an error leaves path untouched.
	Check func(tmp string) error
}

// Write calls fn with a writer for the new content of path. If fn, the
// sync or Check fails, nothing is left behind and path is as it was.
func Write(path string, opts Options, fn func(io.Writer) error) (err error) {
	if opts.Perm == 0 {
		opts.Perm = 0o600
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(opts.Perm); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fn(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if opts.Check != nil {
		if err := opts.Check(tmp); err != nil {
			return err
		}
	}
	if opts.NoReplace {
		// A hard link fails if path exists, where a rename would replace it.
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		os.Remove(tmp)
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the rename durable, where the file system can sync a
// directory; the data itself is synced already.
func syncDir(dir string) error {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
