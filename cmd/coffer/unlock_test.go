package main_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/synth"
)

// runningBackup is a `coffer backup --stdin` that waits for its input.
type runningBackup struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    bytes.Buffer
	errb   bytes.Buffer
	done   chan struct{}
	cancel context.CancelFunc
}

// startBackup starts a backup reading from a pipe the test holds, and
// returns once its lock is in the local repository at root.
func startBackup(t *testing.T, c *cli, root string) *runningBackup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b := &runningBackup{done: make(chan struct{}), cancel: cancel}
	b.cmd = c.cmd(ctx, nil, "backup", "--source", "slow", "--stdin")
	b.cmd.Stdin = nil
	b.stdin, _ = b.cmd.StdinPipe()
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.errb
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done; cancel() })
	for len(lockFiles(t, root)) == 0 {
		select {
		case <-b.done:
			t.Fatalf("the backup ended before it locked: %s", b.errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return b
}

func lockFiles(t *testing.T, root string) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "locks"))
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, filepath.Join(root, "locks", e.Name()))
		}
	}
	return out
}

// TestPruneAfterKilledBackup: after kill -9 of a backup, prune on the same
// host removes the dead process's lock at once and deletes what it marked,
// with no 30-minute wait.
func TestPruneAfterKilledBackup(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, root)
	c.init()
	w := c.without("COFFER_IDENTITY_FILE")
	old := w.backup(bytes.NewReader(synth.Bytes(1, 3<<20)), "--source", "a", "--stdin")
	w.ok(nil, "forget", old.Snapshot)

	b := startBackup(t, w, root)
	out := w.ok(nil, "prune")
	mustContain(t, "prune while a backup runs", out, "marked", "run prune again", "backup on ")
	mustContain(t, "unlock while a backup runs", w.ok(nil, "unlock"), "kept lock of backup on", "0 locks removed")

	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
	start := time.Now()
	out = w.ok(nil, "prune")
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("prune after the kill took %s", took)
	}
	mustContain(t, "prune after kill -9 of the backup", out, "removed the lock of a dead process on this host", "deleted ")
	if strings.HasPrefix(out, "deleted 0 ") || len(lockFiles(t, root)) != 0 {
		t.Fatalf("prune after the kill did not sweep:\n%s", out)
	}
	mustContain(t, "check", c.ok(nil, "check", "--read-data"), "no errors")
}

// TestUnlock: unlock keeps live locks, removes a lock the storage dated
// more than 30 minutes ago and that of a dead process; --remove-all
// removes live ones with a warning, and a backup whose lock was removed
// fails instead of writing its snapshot.
func TestUnlock(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, root)
	c.init()
	w := c.without("COFFER_IDENTITY_FILE")
	mustContain(t, "unlock with no locks", w.ok(nil, "unlock"), "0 locks removed")

	// Stale by the storage's clock: its object was last written 31
	// minutes ago (the backup itself still runs, as a paused host would).
	b := startBackup(t, w, root)
	ago := time.Now().Add(-31 * time.Minute)
	for _, f := range lockFiles(t, root) {
		os.Chtimes(f, ago, ago)
	}
	mustContain(t, "unlock of a stale lock", w.ok(nil, "unlock"), "removed lock of backup on", "not refreshed for 31m", "1 locks removed")
	io.Copy(b.stdin, bytes.NewReader(synth.Bytes(2, 1<<20)))
	b.stdin.Close()
	<-b.done
	if b.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(b.errb.String(), "was removed") {
		t.Fatalf("a backup whose lock was removed: exit %d\n%s%s", b.cmd.ProcessState.ExitCode(), b.out.String(), b.errb.String())
	}

	// Dead: killed with SIGKILL.
	b = startBackup(t, w, root)
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
	mustContain(t, "unlock of a dead process's lock", w.ok(nil, "unlock"), "its process is no longer running", "1 locks removed")

	// Live: kept, unless --remove-all.
	b = startBackup(t, w, root)
	mustContain(t, "unlock of a live lock", w.ok(nil, "unlock"), "kept lock", "1 live locks kept")
	r := w.run(nil, "unlock", "--remove-all")
	if r.code != 0 || len(lockFiles(t, root)) != 0 {
		t.Fatalf("unlock --remove-all: exit %d, %d locks left\n%s", r.code, len(lockFiles(t, root)), r.stderr)
	}
	mustContain(t, "unlock --remove-all", r.stderr, "warning", "running backups")
	mustContain(t, "unlock --remove-all", r.stdout, "--remove-all", "1 locks removed")
	b.stdin.Close()
	<-b.done
	if b.cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("a backup whose lock --remove-all removed succeeded:\n%s", b.out.String())
	}
	if n := len(c.snapshots()); n != 0 {
		t.Fatalf("%d snapshots written by backups whose locks were removed", n)
	}
}
