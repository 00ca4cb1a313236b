package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/storagetest"
)

func open(t *testing.T) (*Backend, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return b, dir
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, _ := open(t)
		return b
	})
}

func TestPrivateModes(t *testing.T) {
	b, dir := open(t)
	if err := b.Put(context.Background(), "data/ab/abcd", []byte("secret"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel  string
		want fs.FileMode
	}{
		{"data", 0o700 | fs.ModeDir},
		{"data/ab", 0o700 | fs.ModeDir},
		{"data/ab/abcd", 0o600},
	} {
		st, err := os.Stat(filepath.Join(dir, tc.rel))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.rel, st.Mode(), tc.want)
		}
	}
}

func TestNoTempFilesLeft(t *testing.T) {
	b, dir := open(t)
	ctx := context.Background()
	for _, name := range []string{"config", "data/ab/1", "data/ab/1", "data/cd/2", "index/3"} {
		if err := b.Put(ctx, name, []byte(name), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A failed Put (retention is unsupported here) must leave nothing either.
	if err := b.Put(ctx, "data/ef/4", []byte("x"), storage.PutOptions{RetainUntil: time.Now().Add(time.Hour)}); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("Put with retention: %v, want ErrUnsupported", err)
	}
	if left := tempFiles(t, dir); len(left) > 0 {
		t.Fatalf("temporary files left: %q", left)
	}
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			left = append(left, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func TestPutReadOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		ro   string // directory made read-only, relative to the root
		put  string
	}{
		{"existing directory", "data/ab", "data/ab/abcd"},
		{"directory to create", "", "index/ix1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, dir := open(t)
			if err := os.MkdirAll(filepath.Join(dir, "data/ab"), 0o700); err != nil {
				t.Fatal(err)
			}
			readOnly(t, filepath.Join(dir, tc.ro))
			err := b.Put(context.Background(), tc.put, []byte("x"), storage.PutOptions{})
			if err == nil {
				t.Fatal("Put into a read-only directory succeeded")
			}
			if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "must be writable") || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory and the remedy", err)
			}
			if _, err := b.Stat(context.Background(), tc.put); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat after failed Put: %v, want ErrNotFound", err)
			}
			if left := tempFiles(t, dir); len(left) > 0 {
				t.Errorf("temporary files left: %q", left)
			}
		})
	}
}

// readOnly makes dir unwritable until the test ends. Root ignores mode
// bits, so as root it sets the immutable attribute instead.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("running as root, which ignores directory permissions")
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("running as root, which ignores directory permissions, and chattr +i failed: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
}
