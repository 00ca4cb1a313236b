package main_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/synth"
)

// makeSQLite creates a SQLite database of about mb MiB of incompressible
// rows.
func makeSQLite(t *testing.T, path string, mb int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf(`CREATE TABLE customers (id INTEGER PRIMARY KEY, photo BLOB);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d)
		INSERT INTO customers SELECT x, randomblob(1000) FROM c`, mb*1024))
	if err != nil {
		t.Fatal(err)
	}
}

// copyDirs returns the backup copies in tmp.
func copyDirs(tmp string) []string {
	m, _ := filepath.Glob(filepath.Join(tmp, "coffer-sqlite-*"))
	return m
}

// TestSQLiteKilledBackupSweep: a backup of a SQLite database killed with
// SIGKILL while it copies leaves its copy (customer data) behind; while it
// existed it was 0600 in a 0700 directory, and the next backup removes it.
func TestSQLiteKilledBackupSweep(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o755)
	src := filepath.Join(dir, "big.db")
	makeSQLite(t, src, 50)
	c := newCLI(t, filepath.Join(dir, "repo"), "TMPDIR="+tmp)
	c.init()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, nil, "backup", "--source", "big", "--sqlite", src)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var copySize int64
	for copySize == 0 {
		if ctx.Err() != nil {
			t.Fatal("the backup made no copy in time")
		}
		for _, d := range copyDirs(tmp) {
			if st, err := os.Lstat(d); err == nil && st.Mode() != fs.ModeDir|0o700 {
				t.Errorf("%s: mode %v, want drwx------", d, st.Mode())
			}
			es, _ := os.ReadDir(d)
			for _, e := range es {
				info, err := e.Info()
				if err != nil {
					continue
				}
				seen = append(seen, fmt.Sprintf("%s %v", e.Name(), info.Mode()))
				if info.Mode() != 0o600 {
					t.Errorf("%s/%s: mode %v while it existed, want -rw-------", d, e.Name(), info.Mode())
				}
				if e.Name() == "copy.db" {
					copySize = info.Size()
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	left := copyDirs(tmp)
	if len(left) != 1 {
		t.Fatalf("after kill -9 mid-copy (%d bytes copied): %v left, want the one copy", copySize, left)
	}
	t.Logf("killed with %d bytes copied; seen %v", copySize, seen)

	small := filepath.Join(dir, "small.db")
	makeSQLite(t, small, 1)
	c.backup(nil, "--source", "small", "--sqlite", small)
	if left := copyDirs(tmp); len(left) != 0 {
		t.Fatalf("the next backup did not sweep the killed one's copy: %v", left)
	}
}

// TestSQLiteRestoreClean: restore --to sqlite --clean loads beside the
// old file and only then takes its place, keeping the old one; the flags
// that give a snapshot more power are checked and audited.
func TestSQLiteRestoreClean(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "shop.db")
	makeSQLite(t, src, 1)
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	b := c.backup(nil, "--source", "shop", "--sqlite", src)

	target := filepath.Join(dir, "restored.db")
	old := []byte("SQLite format 3\x00 not really: the operator's old file")
	os.WriteFile(target, old, 0o600)
	mustContain(t, "restore over a file", c.fail(nil, "restore", b.Snapshot, "--to", "sqlite:"+target), "not empty", "--clean")
	out := c.ok(nil, "restore", b.Snapshot, "--to", "sqlite:"+target, "--clean", "--trust-snapshot", "--globals=all")
	mustContain(t, "restore --clean", out, "customers", "ok", "note:", "kept as", target+".before-")
	kept, _ := filepath.Glob(target + ".before-*")
	if len(kept) != 1 {
		t.Fatalf("kept: %v", kept)
	}
	if b, _ := os.ReadFile(kept[0]); string(b) != string(old) {
		t.Fatal("the old file was not kept as it was")
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o600 {
		t.Errorf("restored database mode %v, want 0600", st.Mode())
	}
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.Contains(e.Name(), "coffer-new") || strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left beside the target: %s", e.Name())
		}
	}

	var recs []struct {
		Event  string
		Detail map[string]any
	}
	json.Unmarshal([]byte(c.ok(nil, "audit", "--json")), &recs)
	last := recs[len(recs)-1]
	if last.Event != "restore" || last.Detail["trust_snapshot"] != true || last.Detail["globals"] != "all" || last.Detail["clean"] != true {
		t.Fatalf("audit record of the restore: %+v", last)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "sqlite:" + target, "--drop-old"}, "--drop-old and --force go with --clean"},
		{[]string{"--to", "sqlite:" + target, "--clean", "--globals=everything"}, "--globals=everything"},
		{[]string{"--output", filepath.Join(dir, "x"), "--clean"}, "--clean goes with --to"},
		{[]string{"--trust-snapshot"}, "--trust-snapshot goes with --to"},
		{[]string{"--to", "sqlite:" + target, "--output", filepath.Join(dir, "x")}, "not both"},
	} {
		mustContain(t, strings.Join(tc.args, " "), c.fail(nil, append([]string{"restore", b.Snapshot}, tc.args...)...), tc.want)
	}
	mustContain(t, "restore --help", c.ok(nil, "restore", "--help"), "--trust-snapshot", "a superuser then runs whatever", "--drop-old", "no way back", "--globals", "SUPERUSER")
}

// tempFiles returns the temporary files under root.
func tempFiles(root string) []string {
	var names []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			names = append(names, p)
		}
		return nil
	})
	return names
}

// TestPruneKilledBackupTemp: a backup killed with SIGKILL while it writes
// a pack leaves a temporary file (0600) in the local repository; prune
// removes it once older than --temp-grace, and not before.
func TestPruneKilledBackupTemp(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, root)
	c.init()
	var left []string
	for attempt := 0; attempt < 10 && len(left) == 0; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := c.cmd(ctx, nil, "backup", "--source", "big", "--stdin")
		stdin, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			io.Copy(stdin, synth.Dump(uint64(40+attempt), 1<<30))
			stdin.Close()
		}()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
	poll:
		for {
			select {
			case <-done:
				break poll
			default:
			}
			if len(tempFiles(filepath.Join(root, "data"))) > 0 {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cancel()
		left = tempFiles(root)
	}
	if len(left) == 0 {
		t.Fatal("no kill caught a backup while it wrote a pack")
	}
	for _, p := range left {
		if st, err := os.Stat(p); err == nil && st.Mode() != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", p, st.Mode())
		}
	}
	w := c.without("COFFER_IDENTITY_FILE")
	w.ok(nil, "prune")
	if got := tempFiles(root); len(got) != len(left) {
		t.Fatalf("prune with the default grace (1h) removed young temporary files: %v left of %v", got, left)
	}
	time.Sleep(50 * time.Millisecond)
	out := w.ok(nil, "prune", "--temp-grace", "10ms")
	mustContain(t, "prune --temp-grace", out, fmt.Sprintf("removed %d temporary files", len(left)))
	if got := tempFiles(root); len(got) != 0 {
		t.Fatalf("after prune: %v", got)
	}
	mustContain(t, "check after prune", w.ok(nil, "check"), "no errors")
}
