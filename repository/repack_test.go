package repository_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
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

// mixedRepo stores a and an edited a (b), forgets a: every old pack is
// live and partly unreferenced.
func mixedRepo(t *testing.T) *mixed {
	t.Helper()
	m := &mixed{Repo: pruneRepo(t), a: synth.Bytes(11, 6<<20)}
	m.b = edited(m.a, 99)
	m.sa = snap(t, m.Writer, m.a, "db")
	m.sb = snap(t, m.Writer, m.b, "db")
	if err := m.Writer.DeleteSnapshot(context.Background(), m.sa.ID()); err != nil {
		t.Fatal(err)
	}
	return m
}

type mixed struct {
	*repotest.Repo
	a, b   []byte
	sa, sb *repository.Snapshot // sa forgotten
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
	before := packBytes(t, m.Restorer)
	rep := prune(t, m.Writer)
	if rep.Candidates != 0 || rep.Repack == nil || rep.Repack.Packs == 0 || rep.Repack.UnusedBytes == 0 || rep.Repack.Rewritten != 0 {
		t.Fatalf("plain prune of live packs: %+v %+v", rep, rep.Repack)
	}
	rep, err := m.Writer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || !rep.Repack.NeedsIdentity || rep.Repack.Rewritten != 0 || rep.Candidates != 0 {
		t.Fatalf("repack with the writer key: %v %+v", err, rep.Repack)
	}
	rep, err = m.Restorer.Prune(ctx, repository.PruneOptions{Repack: true, DryRun: true})
	if err != nil || rep.Repack.Rewritten != 0 || rep.Candidates != 0 || packBytes(t, m.Restorer) != before {
		t.Fatalf("repack dry run: %v %+v", err, rep.Repack)
	}
	rep, err = m.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || rep.Repack.Rewritten == 0 || !rep.Swept || rep.Deleted < rep.Repack.Rewritten {
		t.Fatalf("repack: %v %+v %+v", err, rep, rep.Repack)
	}
	after := packBytes(t, m.Restorer)
	t.Logf("pack bytes %d before, %d after repacking (%d unused)", before, after, rep.Repack.UnusedBytes)
	if after > before-rep.Repack.UnusedBytes*9/10 {
		t.Fatalf("repack freed %d of %d unused bytes", before-after, rep.Repack.UnusedBytes)
	}
	mustRestore(t, m.Restorer, m.sb, m.b)
	mustCheck(t, m.Restorer)
	again, err := m.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || again.Repack.Packs != 0 || again.Candidates != 0 {
		t.Fatalf("second repack: %v %+v", err, again.Repack)
	}
}

// TestHostileRepackAlteredPack: packs the storage altered are not carried
// into new packs, not deleted, not changed, and named.
func TestHostileRepackAlteredPack(t *testing.T) {
	ctx := context.Background()
	m := mixedRepo(t)
	altered := map[string][]byte{}
	filepath.Walk(filepath.Join(m.Backend.Location(), "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			ct, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			ct[len(ct)/2] ^= 1
			if err := os.WriteFile(p, ct, 0o600); err != nil {
				t.Fatal(err)
			}
			altered[p] = ct
		}
		return nil
	})
	rep, err := m.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || rep.Repack.Packs == 0 || len(rep.Repack.Damaged) != rep.Repack.Packs || rep.Repack.Rewritten != 0 || rep.Repack.Written != 0 {
		t.Fatalf("repack of altered packs: %v %+v", err, rep.Repack)
	}
	for p, ct := range altered {
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, ct) {
			t.Fatalf("the altered pack %s was deleted or changed: %v", p, err)
		}
	}
}

// TestRepackWaitsForOlderBackup: a backup that loaded the index before the
// repack's marker and then references a chunk that was unreferenced when
// the repack chose what to copy keeps the old pack that holds it.
func TestRepackWaitsForOlderBackup(t *testing.T) {
	ctx := context.Background()
	m := mixedRepo(t)
	tr, a, b, sa, sb := m.Repo, m.a, m.b, m.sa, m.sb
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

// TestHostileRepackPackNotStored: an index object (a writer's, or one the
// storage replays after its pack was deleted) that lists a pack not stored
// as holding every live chunk must not make repack skip copying them and
// then delete the packs that do hold them.
func TestHostileRepackPackNotStored(t *testing.T) {
	ctx := context.Background()
	m := mixedRepo(t)
	tr, sb := m.Repo, m.sb
	var ghost repository.PackEntry
	ghost.ID[0], ghost.ID[1] = 0xde, 0xad
	seen := map[repository.ID]bool{}
	for _, c := range repotest.Chunks(t, tr.Writer, sb) {
		if !seen[c] {
			seen[c] = true
			ghost.Blobs = append(ghost.Blobs, repository.Blob{ID: c, Off: uint32(ghost.Plain), Len: 100, Raw: 100})
			ghost.Plain += 100
		}
	}
	ghost.Size = ghost.Plain + 4096
	_, err := tr.Writer.SaveIndex(ctx, &repository.IndexFile{Packs: []repository.PackEntry{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || rep.Repack.Rewritten == 0 || !rep.Swept {
		t.Fatalf("repack: %v %+v", err, rep.Repack)
	}
	// Every live chunk is still in a stored pack.
	stored := map[string]bool{}
	tr.Backend.List(ctx, "data/", func(fi storage.Info) error { stored[fi.Name] = true; return nil })
	ids, err := tr.Restorer.ListIDs(ctx, "index")
	if err != nil {
		t.Fatal(err)
	}
	held := map[repository.ID]bool{}
	for _, id := range ids {
		f, err := tr.Restorer.LoadIndexFile(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Packs {
			for _, bl := range p.Blobs {
				if stored[repository.PackName(p.ID)] {
					held[bl.ID] = true
				}
			}
		}
	}
	for c := range seen {
		if !held[c] {
			t.Fatalf("chunk %s of the kept snapshot is in no stored pack: the repack trusted the planted index", c.Short())
		}
	}
}

// TestRepackObjectLock: live packs that Object Lock retains are not
// rewritten (their bytes could not be freed) and are named.
func TestRepackObjectLock(t *testing.T) {
	ctx := context.Background()
	r, _ := lockedRepo(t, "governance", 1)
	a := synth.Bytes(41, 3<<20)
	// A backup of an edited a that fails after storing and indexing its
	// packs, before its snapshot, leaves chunks no snapshot references; a
	// backup of a then makes those packs live.
	_, err := backup.Run(ctx, r.Writer, bytes.NewReader(edited(a, 42)),
		backup.Options{Source: "db", Private: func() any { return make(chan int) }})
	if err == nil {
		t.Fatal("a backup with a private part JSON cannot encode succeeded")
	}
	snap(t, r.Writer, a, "db")
	rep, err := r.Restorer.Prune(ctx, repository.PruneOptions{Repack: true, MaxUnused: 0.01})
	if err != nil || rep.Repack.Packs == 0 || len(rep.Repack.Locked) != rep.Repack.Packs || rep.Repack.Rewritten != 0 || rep.Repack.Written != 0 {
		t.Fatalf("repack of retained packs: %v %+v", err, rep.Repack)
	}
}

// TestHostileRepackWrongBlob: an index object (a writer-key holder's) that
// names the chunks of a stored pack wrongly, so the pack's name checks out
// but its blobs are not the chunks their entries say, makes repack refuse
// the pack: no blob is copied without matching its chunk id.
func TestHostileRepackWrongBlob(t *testing.T) {
	ctx := context.Background()
	m := mixedRepo(t)
	ids, err := m.Writer.ListIDs(ctx, "index")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		f, err := m.Writer.LoadIndexFile(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Packs {
			first := p.Blobs[0].ID
			for i := range p.Blobs {
				if i+1 < len(p.Blobs) {
					p.Blobs[i].ID = p.Blobs[i+1].ID
				} else {
					p.Blobs[i].ID = first
				}
			}
		}
		if _, err := m.Writer.SaveIndex(ctx, &repository.IndexFile{Packs: f.Packs}); err != nil {
			t.Fatal(err)
		}
		if err := m.Backend.Delete(ctx, "index/"+id.String()); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := m.Restorer.Prune(ctx, repository.PruneOptions{Repack: true})
	if err != nil || rep.Repack.Packs == 0 || len(rep.Repack.Damaged) != rep.Repack.Packs || rep.Repack.Written != 0 || rep.Deleted != 0 {
		t.Fatalf("repack of packs whose index entries lie: %v %+v %+v", err, rep, rep.Repack)
	}
}
