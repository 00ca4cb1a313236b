package repository_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

func lockedRepo(t *testing.T, mode string, days int) (*repotest.Repo, string) {
	m := testminio.Server(t)
	bucket := m.Bucket(t, true)
	be, err := location.Open(context.Background(), "s3://"+bucket+"/repo", location.S3Options{
		Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return repotest.New(t, be, repository.InitOptions{Lock: &repository.ObjectLock{Mode: mode, Days: days}, PackSize: 1 << 20}), bucket
}

func retention(t *testing.T, be storage.Backend, name string) time.Time {
	t.Helper()
	r, ok := storage.Find[storage.Retainer](be)
	if !ok {
		t.Fatal("the S3 backend does not retain")
	}
	until, err := r.Retention(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return until
}

// TestObjectLockReuseExtends: a chunk first stored 30 simulated days ago
// and reused today is retained as long as today's snapshot.
func TestObjectLockReuseExtends(t *testing.T) {
	ctx := context.Background()
	r, _ := lockedRepo(t, "governance", 31)
	data := synth.Bytes(9, 3<<20)
	now := time.Now()
	r.Writer.SetClock(func() time.Time { return now.Add(-30 * 24 * time.Hour) })
	old, err := backup.Run(ctx, r.Writer, bytes.NewReader(data), backup.Options{Source: "db", Time: now.Add(-30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := r.Writer.LoadIndex(ctx)
	pack, _, _, _ := idx.Lookup(repotest.Chunks(t, r.Writer, old.Snapshot)[0])
	name := repository.PackName(pack.ID)
	list := "chunklists/" + old.Snapshot.Lists[0].String()
	for _, n := range []string{name, list} {
		if u := retention(t, r.Backend, n); u.After(now.Add(25 * time.Hour)) {
			t.Fatalf("%s stored 30 days ago under a 31-day lock is retained until %s, want about a day from now", n, u)
		}
	}

	r.Writer.SetClock(time.Now)
	today, err := backup.Run(ctx, r.Writer, bytes.NewReader(data), backup.Options{Source: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if today.ChunksNew != 0 {
		t.Fatalf("today's backup stored %d chunks again instead of reusing them", today.ChunksNew)
	}
	want := time.Now().Add(31 * 24 * time.Hour).Add(-time.Minute)
	if u := retention(t, r.Backend, name); u.Before(want) {
		t.Fatalf("the reused pack is retained until %s, want at least %s", u, want)
	}
	if !slices.Equal(today.Snapshot.Lists, old.Snapshot.Lists) {
		t.Fatal("the same stream made other chunk lists: the test proves nothing about reused lists")
	}
	if u := retention(t, r.Backend, list); u.Before(want) {
		t.Fatalf("the reused chunk list is retained until %s, want at least %s", u, want)
	}
	snapName := "snapshots/" + today.Snapshot.ID().String()
	if u := retention(t, r.Backend, snapName); u.Before(want) {
		t.Fatalf("today's snapshot is retained until %s", u)
	}
}

// TestObjectLockNoEarlyDelete: neither coffer nor the same credentials
// talking S3 directly can delete a locked snapshot's objects.
func TestObjectLockNoEarlyDelete(t *testing.T) {
	ctx := context.Background()
	r, bucket := lockedRepo(t, "compliance", 2)
	data := synth.Bytes(10, 2<<20)
	sum, err := backup.Run(ctx, r.Writer, bytes.NewReader(data), backup.Options{Source: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Writer.DeleteSnapshot(ctx, sum.Snapshot.ID()); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("coffer deleted a locked snapshot: %v", err)
	}
	idx, _ := r.Writer.LoadIndex(ctx)
	pack, _, _, _ := idx.Lookup(repotest.Chunks(t, r.Writer, sum.Snapshot)[0])
	if err := r.Backend.Delete(ctx, repository.PackName(pack.ID)); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("coffer deleted a locked pack: %v", err)
	}

	// Audit records are locked like everything else, signed or not.
	var recs []string
	for _, w := range []*repository.Repo{r.Writer, r.Restorer} {
		rec := &repository.AuditRecord{Event: "restore"}
		if err := w.AppendAudit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if u := retention(t, r.Backend, rec.Name()); u.Before(time.Now().Add(47 * time.Hour)) {
			t.Fatalf("audit record %s is retained until %s, want 2 days", rec.Name(), u)
		}
		if err := r.Backend.Delete(ctx, rec.Name()); !errors.Is(err, storage.ErrLocked) {
			t.Fatalf("coffer deleted a locked audit record: %v", err)
		}
		recs = append(recs, "repo/"+rec.Name())
	}

	c := testminio.Server(t).Client()
	for _, name := range append([]string{"repo/snapshots/" + sum.Snapshot.ID().String(), "repo/" + repository.PackName(pack.ID)}, recs...) {
		st, err := c.StatObject(ctx, bucket, name, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = c.RemoveObject(ctx, bucket, name, minio.RemoveObjectOptions{VersionID: st.VersionID, GovernanceBypass: true})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "worm") {
			t.Fatalf("S3 DeleteObject of %s version %s with the same credentials: %v, want refused", name, st.VersionID, err)
		}
	}
	mustRestore(t, r.Restorer, sum.Snapshot, data)
	st, err := r.Writer.Stats(ctx)
	if err != nil || st.LockedBytes == 0 || st.LockedBytes > st.Stored {
		t.Fatalf("stats of a locked repository: %v %+v", err, st)
	}
}
