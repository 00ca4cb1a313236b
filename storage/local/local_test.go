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
	"syscall"
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

// TestSweepTemp: temporary files of dead writers go once older than the
// grace; young ones, and those a live writer holds, stay.
func TestSweepTemp(t *testing.T) {
	ctx := context.Background()
	b, dir := open(t)
	if err := b.Put(ctx, "data/ab/abcd", []byte("object"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	mk := func(rel string, age time.Time) string {
		p := filepath.Join(dir, rel)
		if err := os.WriteFile(p, []byte("ciphertext"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, age, age)
		return p
	}
	dead := mk("data/ab/.tmp-111", old)
	young := mk("data/ab/.tmp-222", time.Now())
	held := mk("data/.tmp-333", old)
	notTemp := mk("data/ab/.other", old)
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	n, size, err := b.SweepTemp(ctx, time.Hour, true)
	if err != nil || n != 1 || size != 10 {
		t.Fatalf("dry run: %d files, %d bytes, %v; want 1, 10", n, size, err)
	}
	if _, err := os.Stat(dead); err != nil {
		t.Fatal("the dry run removed a file")
	}
	if n, _, err = b.SweepTemp(ctx, time.Hour, false); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	for p, want := range map[string]bool{dead: false, young: true, held: true, notTemp: true, filepath.Join(dir, "data/ab/abcd"): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", p, err == nil, want)
		}
	}
	f.Close() // the writer dies: its lock goes
	if n, _, _ = b.SweepTemp(ctx, time.Hour, false); n != 1 {
		t.Fatalf("after the writer died: swept %d, want 1", n)
	}
	if n, _, _ = b.SweepTemp(ctx, time.Nanosecond, false); n != 1 {
		t.Fatalf("with a tiny grace: swept %d, want the young one", n)
	}
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("the clock probe %s was left", e.Name())
		}
	}
}
