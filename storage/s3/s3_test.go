package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/storagetest"
)

func TestMain(m *testing.M) { testminio.Main(m) }

// open opens a fresh bucket on the test server.
func open(t *testing.T, objectLock bool, prefix string) *Backend {
	t.Helper()
	m := testminio.Server(t)
	cfg := Config{
		Endpoint: m.Endpoint, Bucket: m.Bucket(t, objectLock), Prefix: prefix,
		AccessKey: m.AccessKey, SecretKey: m.SecretKey,
	}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	for _, prefix := range []string{"", "repos/prod"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Backend { return open(t, false, prefix) })
		})
	}
	t.Run("object lock bucket", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Backend { return open(t, true, "r") })
	})
}

func TestOpenUnreachable(t *testing.T) {
	ep := testminio.ClosedEndpoint(t)
	start := time.Now()
	_, err := Open(context.Background(), Config{Endpoint: ep, Bucket: "coffer", AccessKey: "a", SecretKey: "b"})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	t.Log(err)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
	for _, want := range []string{"cannot reach S3 endpoint " + ep, "COFFER_S3_ENDPOINT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestOpenWrongSecret(t *testing.T) {
	m := testminio.Server(t)
	bucket := m.Bucket(t, false)
	_, err := Open(context.Background(), Config{Endpoint: m.Endpoint, Bucket: bucket, AccessKey: m.AccessKey, SecretKey: "wrong-secret"})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") || !strings.Contains(err.Error(), bucket) {
		t.Fatalf("Open with a wrong secret: %v; want a hint at the credentials", err)
	}
}

func TestOpenBucket(t *testing.T) {
	m := testminio.Server(t)
	ctx := context.Background()
	cfg := Config{Endpoint: m.Endpoint, Bucket: fmt.Sprintf("coffer-missing-%d", time.Now().UnixNano()), AccessKey: m.AccessKey, SecretKey: m.SecretKey}
	_, err := Open(ctx, cfg)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "bucket "+cfg.Bucket+" does not exist") || !strings.Contains(err.Error(), "coffer init") {
		t.Fatalf("Open of a missing bucket: %v", err)
	}
	for _, lock := range []bool{false, true} {
		cfg := cfg
		cfg.Bucket += map[bool]string{false: "-plain", true: "-lock"}[lock]
		cfg.CreateBucket, cfg.ObjectLock = true, lock
		b, err := Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open with CreateBucket: %v", err)
		}
		if got, err := b.ObjectLockEnabled(ctx); err != nil || got != lock {
			t.Errorf("bucket %s: ObjectLockEnabled = %v, %v; want %v", cfg.Bucket, got, err, lock)
		}
		if _, err := Open(ctx, cfg); err != nil { // the bucket exists now
			t.Errorf("second Open with CreateBucket: %v", err)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, host string
		secure   bool
		bad      bool
	}{
		{"", "s3.amazonaws.com", true, false},
		{"http://127.0.0.1:9000", "127.0.0.1:9000", false, false},
		{"https://s3.eu-west-1.amazonaws.com/", "s3.eu-west-1.amazonaws.com", true, false},
		{"minio.internal:9000", "minio.internal:9000", true, false},
		{"ftp://x", "", false, true},
		{"http://h/bucket", "", false, true},
	} {
		host, secure, _, err := parseEndpoint(tc.in)
		if (err != nil) != tc.bad || host != tc.host || secure != tc.secure {
			t.Errorf("parseEndpoint(%q) = %q, %v, %v", tc.in, host, secure, err)
		}
	}
}

func TestPrefixAndLocation(t *testing.T) {
	m := testminio.Server(t)
	ctx := context.Background()
	bucket := m.Bucket(t, false)
	cfg := Config{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "/team/prod/", AccessKey: m.AccessKey, SecretKey: m.SecretKey}
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Location(), "s3://"+bucket+"/team/prod"; got != want {
		t.Errorf("Location = %s, want %s", got, want)
	}
	if err := b.Put(ctx, "config", []byte("c"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = ""
	root, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := root.Location(); got != "s3://"+bucket {
		t.Errorf("Location without prefix = %s", got)
	}
	var names []string
	root.List(ctx, "", func(fi storage.Info) error { names = append(names, fi.Name); return nil })
	if len(names) != 1 || names[0] != "team/prod/config" {
		t.Errorf("keys in the bucket: %q, want [team/prod/config]", names)
	}
}

func TestObjectLock(t *testing.T) {
	ctx := context.Background()
	b := open(t, true, "repo")
	if ok, err := b.ObjectLockEnabled(ctx); !ok || err != nil {
		t.Fatalf("ObjectLockEnabled = %v, %v", ok, err)
	}
	until := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	if err := b.Put(ctx, "data/ab/locked", []byte("keep me"), storage.PutOptions{RetainUntil: until}); err != nil {
		t.Fatal(err)
	}
	err := b.Delete(ctx, "data/ab/locked")
	t.Log(err)
	if !errors.Is(err, storage.ErrLocked) || !strings.Contains(err.Error(), "data/ab/locked") {
		t.Fatalf("Delete of a locked object: %v; want ErrLocked naming the object", err)
	}
	if got, err := storage.ReadAll(ctx, b, "data/ab/locked"); err != nil || string(got) != "keep me" {
		t.Fatalf("locked object after Delete: %q, %v", got, err)
	}
	retention := func() time.Time {
		t.Helper()
		got, err := b.Retention(ctx, "data/ab/locked")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := retention(); !got.Equal(until) {
		t.Errorf("Retention = %v, want %v", got, until)
	}
	later := until.Add(24 * time.Hour)
	if err := b.SetRetention(ctx, "data/ab/locked", later); err != nil {
		t.Fatalf("extend retention: %v", err)
	}
	if got := retention(); !got.Equal(later) {
		t.Errorf("after extending, Retention = %v, want %v", got, later)
	}
	if err := b.SetRetention(ctx, "data/ab/locked", until); err != nil {
		t.Fatalf("SetRetention to an earlier date: %v; want a no-op", err)
	}
	if got := retention(); !got.Equal(later) {
		t.Errorf("SetRetention shortened the retention to %v", got)
	}
}

func TestRetentionUnlocked(t *testing.T) {
	ctx := context.Background()
	b := open(t, true, "")
	if err := b.Put(ctx, "plain", []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Retention(ctx, "plain"); err != nil || !got.IsZero() {
		t.Fatalf("Retention of an object without = %v, %v; want zero", got, err)
	}
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := b.SetRetention(ctx, "plain", until); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Retention(ctx, "plain"); !got.Equal(until) {
		t.Errorf("Retention = %v, want %v", got, until)
	}
	if _, err := b.Retention(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Retention of a missing object: %v, want ErrNotFound", err)
	}
}

func TestComplianceMode(t *testing.T) {
	ctx := context.Background()
	b := open(t, true, "")
	if err := b.SetLockMode("compliance"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLockMode("forever"); err == nil {
		t.Error("SetLockMode accepted an unknown mode")
	}
	if err := b.Put(ctx, "c", []byte("x"), storage.PutOptions{RetainUntil: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	mode, _, err := b.client.GetObjectRetention(ctx, b.bucket, "c", "")
	if err != nil || mode == nil || *mode != minio.Compliance {
		t.Fatalf("retention mode = %v, %v; want COMPLIANCE", mode, err)
	}
	if err := b.Delete(ctx, "c"); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("Delete under compliance: %v, want ErrLocked", err)
	}
}

// In a versioned bucket Delete must remove every version, not hide them
// behind a delete marker.
func TestDeleteAllVersions(t *testing.T) {
	ctx := context.Background()
	b := open(t, true, "p")
	for _, v := range []string{"one", "two", "three"} {
		if err := b.Put(ctx, "index/1", []byte(v), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "index/1"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for oi := range b.client.ListObjectsIter(ctx, b.bucket, minio.ListObjectsOptions{Prefix: "p/", Recursive: true, WithVersions: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		n++
	}
	if n != 0 {
		t.Errorf("%d versions or delete markers left", n)
	}
}
