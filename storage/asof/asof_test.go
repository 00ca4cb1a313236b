package asof_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/asof"
	"github.com/coffer-backup/coffer/storage/s3"
)

func TestMain(m *testing.M) { testminio.Main(m) }

func TestPick(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	v := func(id string, min int, del bool) storage.Version {
		return storage.Version{ID: id, ModTime: t0.Add(time.Duration(min) * time.Minute), Deleted: del}
	}
	for _, tc := range []struct {
		name string
		vs   []storage.Version // newest first, as listed
		at   int
		want string // "" absent
		del  bool
	}{
		{"only later versions", []storage.Version{v("b", 5, false), v("a", 3, false)}, 2, "", false},
		{"the newest at or before", []storage.Version{v("c", 9, false), v("b", 5, false), v("a", 3, false)}, 6, "b", false},
		{"exactly at the moment", []storage.Version{v("b", 5, false), v("a", 3, false)}, 5, "b", false},
		{"a later delete marker is ignored", []storage.Version{v("d", 7, true), v("a", 3, false)}, 4, "a", false},
		{"an earlier delete marker hides", []storage.Version{v("e", 9, false), v("d", 4, true), v("a", 3, false)}, 5, "d", true},
		{"same time: the first listed", []storage.Version{v("y", 5, false), v("x", 5, false)}, 6, "y", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := asof.Pick(tc.vs, t0.Add(time.Duration(tc.at)*time.Minute))
			if got.ID != tc.want || got.Deleted != tc.del {
				t.Errorf("Pick = %q (deleted %v), want %q (deleted %v)", got.ID, got.Deleted, tc.want, tc.del)
			}
		})
	}
}

// bucket is a fresh bucket with versioning enabled, under prefix "repo".
type bucket struct {
	*s3.Backend
	client *minio.Client
	name   string
}

func versioned(t *testing.T) bucket {
	t.Helper()
	ctx := context.Background()
	m := testminio.Server(t)
	name := m.Bucket(t, false)
	if err := m.Client().SetBucketVersioning(ctx, name, minio.BucketVersioningConfiguration{Status: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	b, err := s3.Open(ctx, s3.Config{Endpoint: m.Endpoint, Bucket: name, Prefix: "repo", AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return bucket{b, m.Client(), name}
}

func put(t *testing.T, b storage.Backend, name, data string) {
	t.Helper()
	if err := b.Put(context.Background(), name, []byte(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, b storage.Backend, name string) string {
	t.Helper()
	d, err := storage.ReadAll(context.Background(), b, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(d)
}

// attacked writes a repository-like tree, records the moment, then
// overwrites, deletes and plants objects, as whoever controls the bucket.
func attacked(t *testing.T, b bucket) time.Time {
	t.Helper()
	ctx := context.Background()
	put(t, b, "config", "cfg")
	put(t, b, "data/ab/p1", "pack one")
	put(t, b, "data/ab/p2", "pack two")
	put(t, b, "snapshots/s1", "snapshot one")
	put(t, b, "data/ab/p2", "pack two, second write") // a version before the moment
	time.Sleep(1100 * time.Millisecond)
	at := time.Now()
	time.Sleep(1100 * time.Millisecond)
	put(t, b, "data/ab/p1", "forged")
	if err := b.Delete(ctx, "snapshots/s1"); err != nil { // every version: nothing to recover
		t.Fatal(err)
	}
	put(t, b, "snapshots/s1", "snapshot one again") // so it has a version, written later
	put(t, b, "snapshots/s2", "planted")
	if err := b.client.RemoveObject(ctx, b.name, "repo/data/ab/p2", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err) // a delete marker
	}
	return at
}

func TestViewAfterAttack(t *testing.T) {
	ctx := context.Background()
	b := versioned(t)
	at := attacked(t, b)
	v := asof.New(b, at)
	for name, want := range map[string]string{"config": "cfg", "data/ab/p1": "pack one", "data/ab/p2": "pack two, second write"} {
		if got := read(t, v, name); got != want {
			t.Errorf("%s as of the moment = %q, want %q", name, got, want)
		}
	}
	for name, says := range map[string]string{"snapshots/s2": "first version was written", "snapshots/s1": "first version was written", "nothing/here": "no version"} {
		_, err := storage.ReadAll(ctx, v, name)
		if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), says) {
			t.Errorf("read %s: %v, want not found saying %q", name, err, says)
		}
	}
	var names []string
	if err := v.List(ctx, "", func(in storage.Info) error { names = append(names, in.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "config data/ab/p1 data/ab/p2" {
		t.Errorf("List as of the moment = %s", got)
	}
	if in, err := v.Stat(ctx, "data/ab/p1"); err != nil || in.Size != int64(len("pack one")) {
		t.Errorf("Stat = %+v, %v", in, err)
	}
	if err := v.Put(ctx, "x", nil, storage.PutOptions{}); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("Put on the view: %v, want ErrUnsupported", err)
	}
	if err := v.Delete(ctx, "config"); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("Delete on the view: %v, want ErrUnsupported", err)
	}
	before := asof.New(b, at.Add(-time.Hour))
	if _, err := storage.ReadAll(ctx, before, "config"); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "later") {
		t.Errorf("config an hour before it was written: %v", err)
	}
}

func TestCompareAndRestore(t *testing.T) {
	ctx := context.Background()
	b := versioned(t)
	at := attacked(t, b)
	c, err := asof.Compare(ctx, b, "", at)
	if err != nil {
		t.Fatal(err)
	}
	var restore, newer []string
	for _, x := range c.Restore {
		restore = append(restore, x.Name)
	}
	for _, x := range c.Newer {
		newer = append(newer, x.Name)
	}
	sort.Strings(restore)
	sort.Strings(newer)
	if strings.Join(restore, " ") != "data/ab/p1 data/ab/p2" || strings.Join(newer, " ") != "snapshots/s1 snapshots/s2" || c.Same != 1 {
		t.Fatalf("Compare: restore %v, newer %v, same %d", restore, newer, c.Same)
	}
	for _, x := range c.Restore {
		if err := b.RestoreVersion(ctx, x.Name, x.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if read(t, b, "data/ab/p1") != "pack one" || read(t, b, "data/ab/p2") != "pack two, second write" {
		t.Error("the restored versions are not current")
	}
	again, err := asof.Compare(ctx, b, "", at)
	if err != nil || len(again.Restore) != 0 {
		t.Errorf("after restoring, Compare = %+v, %v; want nothing to restore", again, err)
	}
}

// TestNullVersion: an object written before versioning was enabled has
// the version "null", which the view reads and RestoreVersion copies.
func TestNullVersion(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	name := m.Bucket(t, false)
	b, err := s3.Open(ctx, s3.Config{Endpoint: m.Endpoint, Bucket: name, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	put(t, b, "data/aa/p", "before versioning")
	if err := m.Client().SetBucketVersioning(ctx, name, minio.BucketVersioningConfiguration{Status: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	at := time.Now()
	time.Sleep(1100 * time.Millisecond)
	put(t, b, "data/aa/p", "overwritten")
	if got := read(t, asof.New(b, at), "data/aa/p"); got != "before versioning" {
		t.Fatalf("as of the moment: %q", got)
	}
	c, err := asof.Compare(ctx, b, "", at)
	if err != nil || len(c.Restore) != 1 || c.Restore[0].ID != "null" {
		t.Fatalf("Compare: %+v, %v", c, err)
	}
	if err := asof.Apply(ctx, b, c.Restore, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "data/aa/p"); got != "before versioning" {
		t.Fatalf("after restoring the null version: %q", got)
	}
}
