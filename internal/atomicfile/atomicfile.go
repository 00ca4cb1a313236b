// Package atomicfile writes files so that a reader, or a crash, sees the
// old file or the complete new one, never a part: the content goes to a
// temporary file beside the target, is synced, and only then takes the
// target's name.
//
// Where the file system allows it (Linux O_TMPFILE), the temporary file
// has no name at all while it is written: a process killed then (kill -9,
// power loss) leaves nothing behind, which matters because the content is
// often a restored dump of customer data. It gets a name only once
// complete, for Check and the final rename.
package atomicfile

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
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
	f, tmp, err := create(dir, filepath.Base(path), opts.Perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			if tmp != "" {
				os.Remove(tmp)
			}
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
	if tmp == "" {
		if tmp, err = name(f, dir, filepath.Base(path)); err != nil {
			return err
		}
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

// create opens the temporary file: unnamed (O_TMPFILE, tmp "") where the
// file system can, else named beside the target.
func create(dir, base string, perm os.FileMode) (f *os.File, tmp string, err error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(perm))
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, base)), "", nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, "", &os.PathError{Op: "create a temporary file in", Path: dir, Err: err}
	}
	f, err = os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// name gives the complete unnamed file f a temporary name in dir.
func name(f *os.File, dir, base string) (string, error) {
	var b [6]byte
	rand.Read(b[:])
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d-%s", base, os.Getpid(), hex.EncodeToString(b[:])))
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
		return "", &os.LinkError{Op: "link", Old: src, New: tmp, Err: err}
	}
	return tmp, nil
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
