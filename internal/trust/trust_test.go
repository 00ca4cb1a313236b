package trust

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func entry(loc string, n int) Entry {
	return Entry{
		Location:     loc,
		RepositoryID: fmt.Sprintf("%032x", n),
		Fingerprint:  fmt.Sprintf("%04x-0000-0000-0000-0000-0000-0000-%04x", n, n),
	}
}

func newFile(t *testing.T) *File {
	t.Helper()
	return &File{Path: filepath.Join(t.TempDir(), "operator.txt.trust")}
}

func check(t *testing.T, f *File, e Entry, want Result) {
	t.Helper()
	got, err := f.Check(e)
	if err != nil {
		t.Fatalf("Check(%+v): %v", e, err)
	}
	if got != want {
		t.Fatalf("Check(%+v) = %v, want %v", e, got, want)
	}
}

func mismatch(t *testing.T, f *File, e Entry, pinned Entry) {
	t.Helper()
	before, _ := os.ReadFile(f.Path)
	_, err := f.Check(e)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Check(%+v): %v, want a MismatchError", e, err)
	}
	if me.Pinned.Fingerprint != pinned.Fingerprint || me.Found.Fingerprint != e.Fingerprint {
		t.Errorf("MismatchError pinned %s found %s, want %s and %s", me.Pinned.Fingerprint, me.Found.Fingerprint, pinned.Fingerprint, e.Fingerprint)
	}
	for _, want := range []string{pinned.Fingerprint, e.Fingerprint, e.Location, pinned.RepositoryID, e.RepositoryID, f.Path, "coffer key trust"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("mismatch error does not name %q:\n%v", want, err)
		}
	}
	if after, _ := os.ReadFile(f.Path); string(after) != string(before) {
		t.Error("a refused Check changed the trust file")
	}
}

func TestCheckPinsThenRefuses(t *testing.T) {
	f := newFile(t)
	a := entry("/srv/a", 1)
	check(t, f, a, Pinned)
	check(t, f, a, Trusted)
	if st, err := os.Stat(f.Path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("trust file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	newKey := a
	newKey.Fingerprint = entry("", 2).Fingerprint
	mismatch(t, f, newKey, a)
	newID := a
	newID.RepositoryID = entry("", 3).RepositoryID
	mismatch(t, f, newID, a)

	// The same repository id under another location with another key is
	// refused too; with the same key it is the same repository, pinned
	// again at its new location.
	moved := newKey
	moved.Location = "/mnt/copy-of-a"
	mismatch(t, f, moved, a)
	copyOfA := a
	copyOfA.Location = "/mnt/copy-of-a"
	check(t, f, copyOfA, Pinned)

	check(t, f, entry("s3://bucket/b (endpoint http://127.0.0.1:9000)", 4), Pinned)

	old, err := f.Pin(newKey)
	if err != nil || old == nil || old.Fingerprint != a.Fingerprint {
		t.Fatalf("Pin: replaced %+v, %v; want the old pin %s", old, err, a.Fingerprint)
	}
	check(t, f, newKey, Trusted)
	mismatch(t, f, a, newKey)
	got, err := f.Lookup("/srv/a")
	if err != nil || got == nil || got.Fingerprint != newKey.Fingerprint || got.Pinned.IsZero() {
		t.Fatalf("Lookup after Pin: %+v, %v", got, err)
	}
	if got, err := f.Lookup("/nowhere"); got != nil || err != nil {
		t.Fatalf("Lookup of an unknown location: %+v, %v", got, err)
	}
}

func TestDamagedFileIsNotRepinned(t *testing.T) {
	good := `{"version":1,"repositories":[{"location":"/srv/a","repository_id":"00000000000000000000000000000001","writer_key_fingerprint":"0001-0000-0000-0000-0000-0000-0000-0001","pinned":"2026-01-01T00:00:00Z"}]}`
	for _, tc := range []struct{ name, text, want string }{
		{"garbage", "not json at all\n", "damaged"},
		{"truncated", good[:len(good)/2], "damaged"},
		{"empty", "", "damaged"},
		{"future version", strings.Replace(good, `"version":1`, `"version":2`, 1), "version 2"},
		{"bad fingerprint", strings.Replace(good, "0001-0000", "zzzz-0000", 1), "fingerprint"},
		{"bad id", strings.Replace(good, "00000000000000000000000000000001", "1", 1), "repository id"},
		{"unknown field", strings.Replace(good, `"version":1`, `"version":1,"trust_all":true`, 1), "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFile(t)
			if err := os.WriteFile(f.Path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, e := range []Entry{entry("/srv/a", 1), entry("/srv/a", 2), entry("/srv/new", 3)} {
				_, err := f.Check(e)
				if err == nil || !strings.Contains(err.Error(), f.Path) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Check on a damaged file: %v; want an error naming %s and %q", err, f.Path, tc.want)
				}
				if _, err := f.Pin(e); err == nil {
					t.Fatal("Pin over a damaged file succeeded")
				}
			}
			if b, _ := os.ReadFile(f.Path); string(b) != tc.text {
				t.Fatal("the damaged trust file was rewritten")
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		f := newFile(t)
		os.WriteFile(f.Path, []byte(good), 0o600)
		check(t, f, entry("/srv/a", 1), Trusted)
	})
	t.Run("writable by others", func(t *testing.T) {
		f := newFile(t)
		os.WriteFile(f.Path, []byte(good), 0o600)
		os.Chmod(f.Path, 0o666)
		if _, err := f.Check(entry("/srv/a", 1)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("Check of a world-writable trust file: %v", err)
		}
	})
}

// TestConcurrentWriters: processes pinning different repositories at once
// lose no pin, and a repository opened by many at once is pinned once.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.trust")
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			f := &File{Path: path}
			_, err := f.Check(entry(fmt.Sprintf("/srv/repo-%d", i), i+10))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			f := &File{Path: path}
			_, err := f.Check(entry("/srv/shared", 1))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f := &File{Path: path}
	entries, err := f.read()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n+1 {
		t.Fatalf("%d pins after %d concurrent first opens, want %d", len(entries), n+1, n+1)
	}
	for i := range n {
		if e, _ := f.Lookup(fmt.Sprintf("/srv/repo-%d", i)); e == nil {
			t.Errorf("the pin of /srv/repo-%d was lost", i)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
