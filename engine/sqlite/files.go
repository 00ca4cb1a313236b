package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// copyPrefix starts the name of the private directory that holds a
// backup's copy of a database: coffer-sqlite-PID-RANDOM, so that a later
// run can tell the copies of dead processes from those of running ones.
const copyPrefix = "coffer-sqlite-"

// stagedInfix is in the name of a restored database waiting beside the one
// it replaces: .BASE.coffer-new-PID-RANDOM.
const stagedInfix = ".coffer-new-"

// legacyAge is how old a copy directory without a PID in its name (made
// by an earlier coffer) must be before Sweep removes it.
const legacyAge = 24 * time.Hour

// Sweep removes the copies that backups killed before they could clean up
// left in tmp (the system's temporary directory when empty): directories
// named coffer-sqlite-PID-… of this user whose process is gone. It
// returns what it removed. Start calls it.
func Sweep(tmp string) ([]string, error) {
	if tmp == "" {
		tmp = os.TempDir()
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), copyPrefix)
		if !ok || !e.IsDir() { // IsDir is false for a symlink: never followed
			continue
		}
		p := filepath.Join(tmp, e.Name())
		if !ownDir(p) || alive(rest, p) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// ownDir reports whether p is a directory (not a symlink) of this user.
func ownDir(p string) bool {
	st, err := os.Lstat(p)
	if err != nil || !st.IsDir() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Getuid()
}

// alive reports whether the file or directory p, whose name after the
// prefix is rest (PID-RANDOM), may still be in use: its process runs, or,
// for a name without a PID (RANDOM, from an earlier coffer), it is younger
// than legacyAge.
func alive(rest, p string) bool {
	pidStr, random, ok := strings.Cut(rest, "-")
	if !ok {
		st, err := os.Lstat(p)
		return !digits(rest) || err != nil || time.Since(st.ModTime()) < legacyAge
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || !digits(pidStr) || random == "" {
		return true // not a name this coffer makes: left to its maker
	}
	return processRuns(pid)
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// processRuns reports whether process pid exists (as far as this user can
// tell: a process of another user counts as running).
func processRuns(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// makeCopyDir creates the private directory (0700) of one copy.
func makeCopyDir(tmp string) (string, error) {
	return os.MkdirTemp(tmp, copyPrefix+strconv.Itoa(os.Getpid())+"-")
}

// createPrivate creates an empty file that only its owner can read, for
// VACUUM INTO to fill: SQLite would create it with the umask's mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Stage writes a restored database stream to a new file beside target
// (mode 0600, through atomicfile), checks that it is a sound SQLite
// database, and returns its path; target is not touched. Replace puts it
// in target's place, or the caller removes it (RemoveDatabase). Staged
// files of dead processes beside target are removed first.
func Stage(ctx context.Context, r io.Reader, target string) (string, error) {
	sweepStaged(target)
	dir, base := filepath.Dir(target), filepath.Base(target)
	f, err := os.CreateTemp(dir, "."+base+stagedInfix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return "", fmt.Errorf("restore into %s: %w", target, err)
	}
	staged := f.Name()
	f.Close()
	os.Remove(staged) // atomicfile creates it, complete, under this name
	err = atomicfile.Write(staged, atomicfile.Options{NoReplace: true, Check: func(tmp string) error {
		if err := integrity(ctx, tmp); err != nil {
			return fmt.Errorf("the restored file is not a sound SQLite database: %w", err)
		}
		return nil
	}}, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	removeSidecars(staged)
	if err != nil {
		RemoveDatabase(staged)
		return "", fmt.Errorf("restore into %s: %w; %s was not touched", target, err, target)
	}
	return staged, nil
}

// sweepStaged removes the staged files (and their atomicfile temporaries)
// that dead processes left beside target.
func sweepStaged(target string) {
	dir, base := filepath.Dir(target), strings.TrimLeft(filepath.Base(target), ".")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(strings.TrimLeft(e.Name(), "."), base+stagedInfix)
		rest, _, _ = strings.Cut(rest, ".") // an atomicfile temporary: …-RANDOM.tmp-RANDOM
		p := filepath.Join(dir, e.Name())
		if !ok || !e.Type().IsRegular() || !strings.Contains(rest, "-") || alive(rest, p) {
			continue
		}
		if st, err := os.Lstat(p); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == os.Getuid() {
				os.Remove(p)
			}
		}
	}
}

// sidecars are the files SQLite keeps beside a database: a write-ahead
// log or a rollback journal holds part of its content.
var sidecars = []string{"-wal", "-journal", "-shm"}

func removeSidecars(path string) {
	for _, s := range sidecars {
		os.Remove(path + s)
	}
}

// RemoveDatabase removes a database file and the files SQLite keeps beside
// it; missing ones are fine.
func RemoveDatabase(path string) error {
	var errs []error
	for _, s := range append([]string{""}, sidecars...) {
		if err := os.Remove(path + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Replace puts the staged database in target's place in one rename. An
// existing target (with its write-ahead log or journal, which hold part
// of it) is kept as target.before-TIME, or, with dropOld, removed once the
// new file is in place. It says what it did.
func Replace(staged, target string, dropOld bool, now time.Time) (string, error) {
	st, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) || err == nil && st.Mode().IsRegular() && st.Size() == 0 && !hasSidecars(target) {
		removeSidecars(target)
		if err := os.Rename(staged, target); err != nil {
			return "", fmt.Errorf("put the restored database in place at %s: %w", target, err)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("restore into %s: %w", target, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("restore into %s: it is not a regular file; it was not touched", target)
	}
	old := target + ".before-" + now.UTC().Format("20060102T150405Z")
	// The old database stays at target until the rename below replaces
	// it: a link, not a move, so there is no moment without it.
	if err := os.Link(target, old); err != nil {
		return "", fmt.Errorf("keep the database %s as %s before replacing it: %w; %s was not touched", target, old, err, target)
	}
	var moved []string
	undo := func() {
		for _, s := range moved {
			os.Rename(old+s, target+s)
		}
		os.Remove(old)
	}
	for _, s := range sidecars[:2] { // the WAL and journal go with the old file
		if err := os.Rename(target+s, old+s); err == nil {
			moved = append(moved, s)
		} else if !errors.Is(err, fs.ErrNotExist) {
			undo()
			return "", fmt.Errorf("keep %s%s with the old database: %w; %s was not touched", target, s, err, target)
		}
	}
	os.Remove(target + "-shm") // rebuilt from the WAL; it would confuse the new file
	if err := os.Rename(staged, target); err != nil {
		undo()
		return "", fmt.Errorf("put the restored database in place at %s: %w; the old database is still there, untouched", target, err)
	}
	if dropOld {
		if err := RemoveDatabase(old); err != nil {
			return "", fmt.Errorf("the restored database is at %s, but removing the old one (%s) failed: %w", target, old, err)
		}
		return fmt.Sprintf("the database %s was replaced and the old one removed (--drop-old)", target), nil
	}
	return fmt.Sprintf("the database %s was replaced; the old one is kept as %s: remove it once the restore is checked", target, old), nil
}

func hasSidecars(path string) bool {
	for _, s := range sidecars[:2] {
		if _, err := os.Lstat(path + s); err == nil {
			return true
		}
	}
	return false
}
