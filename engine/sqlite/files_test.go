package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deadPID returns the PID of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestCopyIsPrivate(t *testing.T) {
	tmp := t.TempDir()
	d, err := Start(context.Background(), makeDB(t, 100), tmp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(d.dir), copyPrefix+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("the copy's directory %s does not name this process", d.dir)
	}
	for p, want := range map[string]os.FileMode{d.dir: 0o700 | os.ModeDir, filepath.Join(d.dir, "copy.db"): 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode() != want {
			t.Errorf("%s: %v, %v; want mode %v", p, st.Mode(), err, want)
		}
	}
	d.Close()
	if es, _ := os.ReadDir(tmp); len(es) != 0 {
		t.Fatalf("Close left %v", es)
	}
}

func TestSweep(t *testing.T) {
	tmp := t.TempDir()
	dead := deadPID(t)
	mk := func(name string) string {
		p := filepath.Join(tmp, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "copy.db"), []byte("customer rows"), 0o600)
		return p
	}
	gone := []string{mk(fmt.Sprintf("coffer-sqlite-%d-123", dead)), mk("coffer-sqlite-4242")}
	old := time.Now().Add(-2 * legacyAge)
	os.Chtimes(gone[1], old, old) // an earlier coffer's copy, two days old
	kept := []string{
		mk(fmt.Sprintf("coffer-sqlite-%d-456", os.Getpid())), // this process: running
		mk("coffer-sqlite-777"),                              // an earlier coffer's, recent
		mk("coffer-sqlite-x-1"),                              // not a name coffer makes
		mk("other-1"),
	}
	elsewhere := mk("elsewhere")
	link := filepath.Join(tmp, fmt.Sprintf("coffer-sqlite-%d-9", dead))
	os.Symlink(elsewhere, link) // never followed
	kept = append(kept, elsewhere, link)

	removed, err := Sweep(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(gone) {
		t.Errorf("removed %v, want %v", removed, gone)
	}
	for _, p := range gone {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was not swept", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was swept: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "copy.db")); err != nil {
		t.Error("Sweep followed a symlink")
	}
}

// TestStageReplace: a staged database leaves the old one alone until
// Replace, which keeps it (with its WAL) unless dropOld.
func TestStageReplace(t *testing.T) {
	ctx := context.Background()
	src := makeDB(t, 300)
	d, err := Start(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stream, _ := os.ReadFile(filepath.Join(d.dir, "copy.db"))

	dir := t.TempDir()
	target := filepath.Join(dir, "shop.db")
	oldContent := []byte("the old database")
	os.WriteFile(target, oldContent, 0o644)
	os.WriteFile(target+"-wal", []byte("old wal"), 0o644)
	os.WriteFile(target+"-shm", []byte("old shm"), 0o644)

	// A staged file a dead process left is swept.
	stale := filepath.Join(dir, fmt.Sprintf(".shop.db.coffer-new-%d-1", deadPID(t)))
	os.WriteFile(stale, []byte("rows"), 0o600)

	staged, err := Stage(ctx, bytes.NewReader(stream), target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a dead process's staged file was not swept")
	}
	if st, _ := os.Stat(staged); st.Mode().Perm() != 0o600 || filepath.Dir(staged) != dir {
		t.Errorf("staged %s: mode %v", staged, st.Mode())
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, oldContent) {
		t.Fatal("Stage touched the target")
	}
	got, err := Digests(ctx, staged)
	if err != nil || len(got) != 3 {
		t.Fatalf("digests of the staged file: %v %v", got, err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	note, err := Replace(staged, target, false, now)
	if err != nil {
		t.Fatal(err)
	}
	old := target + ".before-20260304T050607Z"
	if !strings.Contains(note, old) {
		t.Errorf("note %q does not name %s", note, old)
	}
	if b, _ := os.ReadFile(old); !bytes.Equal(b, oldContent) {
		t.Fatal("the old database was not kept")
	}
	if b, _ := os.ReadFile(old + "-wal"); string(b) != "old wal" {
		t.Fatal("the old database's WAL did not go with it")
	}
	for _, s := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(target + s); err == nil {
			t.Errorf("%s%s is still beside the new database", target, s)
		}
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, stream) {
		t.Fatal("the target does not hold the restored database")
	}
	if _, err := os.Stat(staged); err == nil {
		t.Fatal("the staged file is still there")
	}

	// dropOld removes the replaced file; a second replace in the same
	// second would collide with the kept one and is refused untouched.
	staged, _ = Stage(ctx, bytes.NewReader(stream), target)
	if _, err := Replace(staged, target, false, now); err == nil || !strings.Contains(err.Error(), "not touched") {
		t.Fatalf("replace onto an existing kept name: %v", err)
	}
	if _, err := Replace(staged, target, true, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target + ".before-20260304T050608Z"); err == nil {
		t.Fatal("dropOld kept the old database")
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 3 { // shop.db, the first kept file and its WAL
		t.Fatalf("left in the directory: %v", es)
	}
}
