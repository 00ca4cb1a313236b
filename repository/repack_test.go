package repository_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
)

// edited returns a copy of a with every eighth 64 KiB block replaced, so
// that after forgetting a's snapshot its packs hold live and dead chunks.
func edited(a []byte, seed uint64) []byte {
	b := append([]byte(nil), a...)
	for off := 0; off+64<<10 <= len(b); off += 8 * 64 << 10 {
		copy(b[off:], synth.Bytes(seed+uint64(off), 64<<10))
	}
	return b
}

// mixedRepo stores a and an edited a, forgets a: every old pack is live
// and partly unreferenced.
func mixedRepo(t *testing.T) (r *repoAndData) {
	t.Helper()
	tr := pruneRepo(t)
	a := synth.Bytes(11, 6<<20)
	b := edited(a, 99)
	sa := snap(t, tr.Writer, a, "db")
	sb := snap(t, tr.Writer, b, "db")
	if err := tr.Writer.DeleteSnapshot(context.Background(), sa.ID()); err != nil {
		t.Fatal(err)
	}
	return &repoAndData{tr.Writer, tr.Restorer, tr.Backend.Location(), sb, b}
}

type repoAndData struct {
	writer, restorer *repository.Repo
	dir              string
	snap             *repository.Snapshot
	data             []byte
}

func packBytes(t *testing.T, r *repository.Repo) int64 {
	t.Helper()
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.PackBytes
}

// TestRepack: prune alone reports what a repack would free; --repack with
// the writer key alone changes nothing; with an operator's identity it
// frees it, and the snapshot restores and checks clean.
func TestRepack(t *testing.T) {
	ctx := context.Background()
	m := mixedRepo(t)
	before := packBytes(t, m.restorer)
	rep := prune(t, m.writer)
	if rep.Candidates != 0 || rep.Repack == nil || rep.Repack.Packs == 0 || rep.Repack.UnusedBytes == 0 || rep.Repack.Rewritten != 0 {
		t.Fatalf("plain prune of live packs: %+v %+v", rep, rep.Repack)
	}
	rep, err := m.writer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || !rep.Repack.NeedsIdentity || rep.Repack.Rewritten != 0 || rep.Candidates != 0 {
		t.Fatalf("repack with the writer key: %v %+v", err, rep.Repack)
	}
	rep, err = m.restorer.Prune(ctx, repository.PruneOptions{Repack: true, DryRun: true})
	if err != nil || rep.Repack.Rewritten != 0 || rep.Candidates != 0 || packBytes(t, m.restorer) != before {
		t.Fatalf("repack dry run: %v %+v", err, rep.Repack)
	}
	rep, err = m.restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || rep.Repack.Rewritten == 0 || !rep.Swept || rep.Deleted < rep.Repack.Rewritten {
		t.Fatalf("repack: %v %+v %+v", err, rep, rep.Repack)
	}
	after := packBytes(t, m.restorer)
	t.Logf("pack bytes %d before, %d after repacking (%d unused)", before, after, rep.Repack.UnusedBytes)
	if after > before-rep.Repack.UnusedBytes*9/10 {
		t.Fatalf("repack freed %d of %d unused bytes", before-after, rep.Repack.UnusedBytes)
	}
	mustRestore(t, m.restorer, m.snap, m.data)
	mustCheck(t, m.restorer)
	again, err := m.restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || again.Repack.Packs != 0 || again.Candidates != 0 {
		t.Fatalf("second repack: %v %+v", err, again.Repack)
	}
}

// TestRepackRefusesAlteredPack: a pack the storage altered is not carried
// into a new pack, not deleted, and named.
func TestRepackRefusesAlteredPack(t *testing.T) {
	ctx := context.Background()
	m := mixedRepo(t)
	var victim string
	filepath.Walk(filepath.Join(m.dir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && victim == "" {
			victim = p
		}
		return nil
	})
	ct, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	ct[len(ct)/2] ^= 1
	if err := os.WriteFile(victim, ct, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := m.restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || len(rep.Repack.Damaged) != 1 {
		t.Fatalf("repack with an altered pack: %v %+v", err, rep.Repack)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("the altered pack was deleted: %v", err)
	}
	got, err := os.ReadFile(victim)
	if err != nil || string(got) != string(ct) {
		t.Fatal("the altered pack was changed")
	}
	if rep.Repack.Rewritten == 0 {
		t.Fatalf("the other packs were not repacked: %+v", rep.Repack)
	}
}

// TestRepackWaitsForOlderBackup: a backup that loaded the index before the
// repack's marker and then references a chunk that was unreferenced when
// the repack chose what to copy keeps the old pack that holds it.
func TestRepackWaitsForOlderBackup(t *testing.T) {
	ctx := context.Background()
	tr := pruneRepo(t)
	a := synth.Bytes(21, 6<<20)
	b := edited(a, 7)
	sa := snap(t, tr.Writer, a, "db")
	sb := snap(t, tr.Writer, b, "db")
	tr.Writer.DeleteSnapshot(ctx, sa.ID())
	lock, err := tr.Writer.AcquireLock(ctx, repository.LockOptions{Host: "db2", PID: 77})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || rep.Swept || rep.Repack.Rewritten == 0 || len(rep.WaitingFor) != 1 {
		t.Fatalf("repack with an older backup running: %v %+v %+v", err, rep, rep.Repack)
	}
	// That backup finishes, deduplicated against a's dead chunks.
	old := *sa
	if _, err := tr.Writer.SaveSnapshot(ctx, &old); err != nil {
		t.Fatal(err)
	}
	lock.Release(ctx)
	rep, err = tr.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || !rep.Swept || rep.Kept == 0 {
		t.Fatalf("sweep after the backup finished: %v %+v", err, rep)
	}
	mustRestore(t, tr.Restorer, &old, a)
	mustRestore(t, tr.Restorer, sb, b)
	mustCheck(t, tr.Restorer)
}
