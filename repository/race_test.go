package repository_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

// raceRepos returns a fresh repository in a local directory and one in MinIO.
func raceRepos(t *testing.T) map[string]func(*testing.T) *repotest.Repo {
	return map[string]func(*testing.T) *repotest.Repo{
		"local": pruneRepo,
		"minio": func(t *testing.T) *repotest.Repo {
			m := testminio.Server(t)
			be, err := location.Open(context.Background(), "s3://"+m.Bucket(t, false)+"/repo", location.S3Options{
				Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			return repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
		},
	}
}

// pausedBackup starts a backup of data that stops, with its index loaded
// and its stream stored, just before it writes its snapshot; resume lets
// it go on, and the result arrives on the returned channel.
func pausedBackup(t *testing.T, r *repository.Repo, data []byte, opts backup.Options) (resume func(), res <-chan error, snap *atomic.Pointer[repository.Snapshot]) {
	t.Helper()
	paused, cont := make(chan struct{}), make(chan struct{})
	opts.Source, opts.Host = "a", "db2"
	opts.BeforeSnapshot = func() { close(paused); <-cont }
	done := make(chan error, 1)
	snap = new(atomic.Pointer[repository.Snapshot])
	go func() {
		sum, err := backup.Run(context.Background(), r, bytes.NewReader(data), opts)
		if err == nil {
			snap.Store(sum.Snapshot)
		}
		done <- err
	}()
	select {
	case <-paused:
	case err := <-done:
		t.Fatalf("the backup ended before its snapshot: %v", err)
	}
	return func() { close(cont) }, done, snap
}

// TestHostilePruneClockAhead is the attack of #12: a prune whose clock runs
// 31 minutes ahead, while a backup that reuses every pack prune would
// delete sits between loading the index and writing its snapshot. Prune
// must judge the backup's lock by storage time and wait; the backup then
// completes and restores byte-identical.
func TestHostilePruneClockAhead(t *testing.T) {
	for name, open := range raceRepos(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := open(t)
			a := synth.Bytes(1, 6<<20)
			sa := snap(t, r.Writer, a, "a")
			if err := r.Writer.DeleteSnapshot(ctx, sa.ID()); err != nil {
				t.Fatal(err)
			}
			resume, done, got := pausedBackup(t, r.Writer, a, backup.Options{})
			ahead := func() time.Time { return time.Now().Add(31 * time.Minute) }
			for range 2 {
				rep, err := r.Writer.Prune(ctx, repository.PruneOptions{Host: "maint", Now: ahead})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Swept || rep.Deleted != 0 || rep.StaleLocks != 0 || len(rep.WaitingFor) != 1 {
					t.Fatalf("prune 31 minutes ahead did not wait for the running backup: %+v", rep)
				}
			}
			resume()
			if err := <-done; err != nil {
				t.Fatalf("backup: %v", err)
			}
			s := got.Load()
			if s.ChunksNew != 0 {
				t.Fatalf("the backup stored %d chunks anew: it did not reuse the marked packs, so the test proves nothing", s.ChunksNew)
			}
			rep, err := r.Writer.Prune(ctx, repository.PruneOptions{Host: "maint", Now: ahead})
			if err != nil || !rep.Swept || rep.Deleted != 0 || rep.Kept == 0 {
				t.Fatalf("sweep after the backup: %v %+v", err, rep)
			}
			mustRestore(t, r.Restorer, s, a)
			mustCheck(t, r.Restorer)
		})
	}
}

// TestHostileLockRemovedUnderBackup: when the lock of a paused backup is
// removed (unlock --remove-all, or a prune that misjudged it) and prune
// then deletes the packs the backup reuses, the backup fails with a clear
// error and writes no snapshot.
func TestHostileLockRemovedUnderBackup(t *testing.T) {
	for name, open := range raceRepos(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := open(t)
			a := synth.Bytes(1, 6<<20)
			sa := snap(t, r.Writer, a, "a")
			r.Writer.DeleteSnapshot(ctx, sa.ID())
			resume, done, _ := pausedBackup(t, r.Writer, a, backup.Options{})
			un, err := r.Writer.Unlock(ctx, repository.UnlockOptions{All: true})
			if err != nil || len(un.Removed) != 1 {
				t.Fatalf("unlock --remove-all: %v %+v", err, un)
			}
			rep := prune(t, r.Writer)
			if !rep.Swept || rep.Deleted == 0 {
				t.Fatalf("prune with no lock left: %+v", rep)
			}
			resume()
			err = <-done
			if err == nil || !strings.Contains(err.Error(), "was removed") || !strings.Contains(err.Error(), "writes no snapshot") {
				t.Fatalf("backup after its lock was removed and its packs deleted: %v", err)
			}
			if ids, _ := r.Writer.ListIDs(ctx, "snapshots"); len(ids) != 0 {
				t.Fatalf("%d snapshots were written", len(ids))
			}
			mustCheck(t, r.Restorer)
		})
	}
}

// failingLocks fails every write of a lock once failing is set, as a
// backend whose locks/ became unwritable would.
type failingLocks struct {
	storage.Backend
	failing atomic.Bool
}

func (f *failingLocks) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	if f.failing.Load() && strings.HasPrefix(name, "locks/") {
		return errors.New("injected: access denied to locks/")
	}
	return f.Backend.Put(ctx, name, data, opts)
}

// endless is a source that never ends: a dump still running.
type endless struct{ n uint64 }

func (e *endless) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	e.n++
	return copy(p, synth.Bytes(e.n, int64(min(len(p), 64<<10)))), nil
}

var _ io.Reader = (*endless)(nil)

// TestHostileLockRefreshFails: a backup whose lock cannot be refreshed
// stops once it has failed for half the stale time, before any prune can
// take the lock for stale, and writes no snapshot; also when it fails
// while paused before its snapshot.
func TestHostileLockRefreshFails(t *testing.T) {
	const stale = 2 * time.Second
	timing := repository.LockTiming{Refresh: 100 * time.Millisecond, Stale: stale}
	for _, paused := range []bool{false, true} {
		t.Run(map[bool]string{false: "streaming", true: "before-snapshot"}[paused], func(t *testing.T) {
			ctx := context.Background()
			r := pruneRepo(t)
			fl := &failingLocks{Backend: r.Backend}
			w, err := repository.OpenWriter(ctx, fl, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			a := synth.Bytes(1, 3<<20)
			sa := snap(t, w, a, "a")
			r.Writer.DeleteSnapshot(ctx, sa.ID())
			var failedAt time.Time
			var done <-chan error
			var resume func()
			if paused {
				resume, done, _ = pausedBackup(t, w, a, backup.Options{Lock: timing})
				failedAt = time.Now()
				fl.failing.Store(true)
			} else {
				ch := make(chan error, 1)
				done = ch
				go func() {
					_, err := backup.Run(ctx, w, &endless{}, backup.Options{Source: "a", Host: "db2", Lock: timing})
					ch <- err
				}()
				time.Sleep(300 * time.Millisecond)
				failedAt = time.Now()
				fl.failing.Store(true)
			}
			var err2 error
			select {
			case err2 = <-done:
			case <-time.After(stale):
				t.Fatalf("the backup still runs %s after its lock refresh began to fail", stale)
			}
			took := time.Since(failedAt)
			if err2 == nil || !strings.Contains(err2.Error(), "could not be refreshed") || !strings.Contains(err2.Error(), "injected: access denied") {
				t.Fatalf("backup with failing lock refreshes: %v", err2)
			}
			if took > stale*3/4 {
				t.Fatalf("the backup stopped %s after its refresh began to fail, later than half the stale time (%s) allows", took, stale/2)
			}
			if resume != nil {
				resume()
			}
			// By now a prune with the same stale time may take the lock
			// for dead and delete what the backup reused.
			time.Sleep(stale + time.Second)
			rep, err := w.Prune(ctx, repository.PruneOptions{Host: "maint", LockStale: stale})
			if err != nil || !rep.Swept || rep.Deleted == 0 {
				t.Fatalf("prune after the stale time: %v %+v", err, rep)
			}
			if ids, _ := r.Writer.ListIDs(ctx, "snapshots"); len(ids) != 0 {
				t.Fatalf("%d snapshots were written by a backup that lost its lock", len(ids))
			}
			mustCheck(t, r.Restorer)
		})
	}
}
