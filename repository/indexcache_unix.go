//go:build unix

package repository

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// privateCacheDir makes (0700) and returns root/sub after checking that
// root and root/sub belong to this user and that nobody else may write
// them (root/sub nor read it): another local user who could plant a cache
// could make backups skip chunks, one who could read it would learn the
// repository's chunk ids and sizes.
func privateCacheDir(root, sub string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	if err := checkPrivate(root, 0o022, os.Stat); err != nil {
		return "", err
	}
	dir := filepath.Join(root, sub)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if err := checkPrivate(dir, 0o077, os.Lstat); err != nil {
		return "", err
	}
	return dir, nil
}

func checkPrivate(path string, forbidden os.FileMode, stat func(string) (os.FileInfo, error)) error {
	fi, err := stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d): remove it, or set COFFER_CACHE_DIR to a directory of your own", path, st.Uid, os.Geteuid())
	}
	if m := fi.Mode().Perm(); m&forbidden != 0 {
		return fmt.Errorf("%s has mode %04o, open to other users: chmod %04o it, or set COFFER_CACHE_DIR to a private directory", path, m, m&^forbidden)
	}
	return nil
}

// lockFile takes an exclusive flock of path (0600), waiting for it.
func lockFile(path string) (func(), error) { return flockFile(path, unix.LOCK_EX) }

// tryLockFile takes an exclusive flock of path without waiting: it fails
// while another process holds it.
func tryLockFile(path string) (func(), error) { return flockFile(path, unix.LOCK_EX|unix.LOCK_NB) }

func flockFile(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
