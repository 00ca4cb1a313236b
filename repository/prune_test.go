package repository_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage/local"
)

func pruneRepo(t *testing.T) *repotest.Repo {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	return repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
}

func snap(t *testing.T, r *repository.Repo, data []byte, source string) *repository.Snapshot {
	t.Helper()
	sum, err := backup.Run(context.Background(), r, bytes.NewReader(data), backup.Options{Source: source, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Snapshot
}

func mustRestore(t *testing.T, r *repository.Repo, s *repository.Snapshot, want []byte) {
	t.Helper()
	var out bytes.Buffer
	if _, err := restore.Run(context.Background(), r, s, &out, restore.Options{}); err != nil {
		t.Fatalf("restore %s: %v", s.ID().Short(), err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("snapshot %s restores to different bytes", s.ID().Short())
	}
}

func mustCheck(t *testing.T, r *repository.Repo) *repository.CheckReport {
	t.Helper()
	rep, err := r.Check(context.Background(), repository.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
	return rep
}

func prune(t *testing.T, r *repository.Repo) *repository.PruneReport {
	t.Helper()
	rep, err := r.Prune(context.Background(), repository.PruneOptions{Host: "maint"})
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return rep
}

func TestPruneDeletesWhatNoSnapshotNeeds(t *testing.T) {
	ctx := context.Background()
	r := pruneRepo(t)
	a, b := synth.Bytes(1, 6<<20), synth.Bytes(2, 6<<20)
	sa := snap(t, r.Writer, a, "a")
	sb := snap(t, r.Writer, b, "b")
	if err := r.Writer.DeleteSnapshot(ctx, sa.ID()); err != nil {
		t.Fatal(err)
	}
	dry, err := r.Writer.Prune(ctx, repository.PruneOptions{DryRun: true})
	if err != nil || dry.Candidates == 0 || dry.Deleted != 0 {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	rep := prune(t, r.Writer)
	if !rep.Swept || rep.Deleted != dry.Candidates || rep.DeletedBytes != dry.CandidateBytes {
		t.Fatalf("prune: %+v (dry run said %+v)", rep, dry)
	}
	mustRestore(t, r.Restorer, sb, b)
	if c := mustCheck(t, r.Restorer); len(c.Unreferenced) != 0 || c.IndexFiles != 1 {
		t.Fatalf("after prune: %+v", c)
	}
	if again := prune(t, r.Writer); again.Candidates != 0 {
		t.Fatalf("second prune found %+v", again)
	}
}

// TestPruneWaitsForOlderBackup: a backup that started before the marker may
// depend on a candidate; prune must not sweep until it has finished, and
// must keep what it came to reference.
func TestPruneWaitsForOlderBackup(t *testing.T) {
	ctx := context.Background()
	r := pruneRepo(t)
	a := synth.Bytes(1, 6<<20)
	sa := snap(t, r.Writer, a, "a")
	r.Writer.DeleteSnapshot(ctx, sa.ID())

	// A backup on another host has loaded the index: it holds a lock that
	// predates the marker.
	lock, err := r.Writer.AcquireLock(ctx, repository.LockOptions{Host: "db2", PID: 77})
	if err != nil {
		t.Fatal(err)
	}
	rep := prune(t, r.Writer)
	if rep.Swept || len(rep.WaitingFor) != 1 || rep.Marker == "" {
		t.Fatalf("prune with an older backup running: %+v", rep)
	}
	// That backup finishes, referencing the candidates (it deduplicated
	// against them), as a snapshot with the old chunk list.
	old := *sa
	if _, err := r.Writer.SaveSnapshot(ctx, &old); err != nil {
		t.Fatal(err)
	}
	lock.Release(ctx)

	// A backup started now honours the marker and stores its chunks anew.
	c := synth.Bytes(3, 3<<20)
	sc := snap(t, r.Writer, c, "c")

	rep = prune(t, r.Writer)
	if !rep.Swept || rep.Kept == 0 || rep.Deleted != 0 || rep.KeptLists != len(old.Lists) || rep.DeletedLists != 0 {
		t.Fatalf("sweep after the backup finished: %+v", rep)
	}
	mustRestore(t, r.Restorer, &old, a)
	mustRestore(t, r.Restorer, sc, c)
	mustCheck(t, r.Restorer)
}

// TestBackupHonoursMarker: chunks of marked packs are stored again, so the
// sweep can delete the packs even though the new snapshot has the same data.
func TestBackupHonoursMarker(t *testing.T) {
	ctx := context.Background()
	r := pruneRepo(t)
	a := synth.Bytes(1, 6<<20)
	sa := snap(t, r.Writer, a, "a")
	r.Writer.DeleteSnapshot(ctx, sa.ID())
	blocker, _ := r.Writer.AcquireLock(ctx, repository.LockOptions{Host: "db2", PID: 1})
	rep := prune(t, r.Writer)
	if rep.Swept {
		t.Fatal("swept with a blocking lock")
	}
	again := snap(t, r.Writer, a, "a") // honours the marker: stores everything anew
	if again.ChunksNew != again.ChunksTotal {
		t.Fatalf("a backup honouring the marker reused %d marked chunks", again.ChunksTotal-again.ChunksNew)
	}
	// The same ids make the same chunk lists, which the marker names: the
	// backup stores them under another name instead of reusing them.
	for _, l := range again.Lists {
		if slices.Contains(sa.Lists, l) {
			t.Fatalf("a backup honouring the marker reused its chunk list %s", l.Short())
		}
	}
	blocker.Release(ctx)
	rep = prune(t, r.Writer)
	if !rep.Swept || rep.Deleted == 0 || rep.Kept != 0 || rep.DeletedLists != len(sa.Lists) || rep.KeptLists != 0 {
		t.Fatalf("sweep: %+v", rep)
	}
	if got := storedLists(t, r.Backend); len(got) != len(again.Lists) {
		t.Fatalf("after the sweep %d chunk lists are stored, the one snapshot names %d", len(got), len(again.Lists))
	}
	mustRestore(t, r.Restorer, again, a)
	mustCheck(t, r.Restorer)
}

// TestStaleLockIgnored: a lock the storage last dated more than LockStale
// ago is stale, whatever the clocks of the hosts say.
func TestStaleLockIgnored(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	be, err := local.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
	sa := snap(t, r.Writer, synth.Bytes(1, 2<<20), "a")
	r.Writer.DeleteSnapshot(ctx, sa.ID())
	// The backup's clock is two hours behind: its lock's own times say
	// nothing, the storage's date of the object is fresh.
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	lock, err := r.Writer.AcquireLock(ctx, repository.LockOptions{Host: "other-host", PID: 9, Now: past})
	if err != nil {
		t.Fatal(err)
	}
	ahead := func() time.Time { return time.Now().Add(31 * time.Minute) }
	rep, err := r.Writer.Prune(ctx, repository.PruneOptions{Host: "maint", Now: ahead})
	if err != nil || rep.Swept || rep.StaleLocks != 0 || len(rep.WaitingFor) != 1 {
		t.Fatalf("prune 31 minutes ahead, backup 2 hours behind, lock fresh in storage: %v %+v", err, rep)
	}
	// The same lock, last written 31 minutes ago by the storage's clock.
	old := time.Now().Add(-31 * time.Minute)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(lock.Name())), old, old); err != nil {
		t.Fatal(err)
	}
	rep = prune(t, r.Writer)
	if !rep.Swept || rep.StaleLocks != 1 {
		t.Fatalf("prune with a stale lock: %+v", rep)
	}
}

// TestPruneSweepsTemp: prune removes the temporary files that killed
// writers left in a local repository, once older than TempGrace.
func TestPruneSweepsTemp(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	be, err := local.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
	snap(t, r.Writer, synth.Bytes(8, 1<<20), "shop")
	dir := filepath.Join(root, "data", "00")
	os.MkdirAll(dir, 0o700)
	tmp := filepath.Join(dir, ".tmp-4242")
	os.WriteFile(tmp, []byte("half a pack"), 0o600)
	rep, err := r.Writer.Prune(ctx, repository.PruneOptions{Host: "h"})
	if err != nil || rep.TempFiles != 0 {
		t.Fatalf("prune with the default grace: %+v %v", rep, err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(tmp, old, old)
	if rep, _ = r.Writer.Prune(ctx, repository.PruneOptions{Host: "h", DryRun: true, TempGrace: time.Second}); rep.TempFiles != 1 {
		t.Fatalf("dry run: %+v", rep)
	}
	rep, err = r.Writer.Prune(ctx, repository.PruneOptions{Host: "h", TempGrace: time.Second})
	if err != nil || rep.TempFiles != 1 || rep.TempBytes != int64(len("half a pack")) {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Fatal("the temporary file is still there")
	}
	mustCheck(t, r.Restorer)
}
