package location_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

func TestMain(m *testing.M) { testminio.Main(m) }

// roundTrip stores one object through be and reads it back.
func roundTrip(t *testing.T, be storage.Backend) {
	t.Helper()
	ctx := context.Background()
	if err := be.Put(ctx, "config", []byte("hello"), storage.PutOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := storage.ReadAll(ctx, be, "config")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if string(got) != "hello" {
		t.Fatalf("read back %q, want %q", got, "hello")
	}
}

func TestOpenLocal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		addr string
	}{
		{"plain path", dir},
		{"file URL", "file://" + dir},
		{"file URL with localhost", "file://localhost" + dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, err := location.Open(ctx, tc.addr, location.S3Options{})
			if err != nil {
				t.Fatal(err)
			}
			if be.Location() != dir {
				t.Errorf("Location() = %q, want %q", be.Location(), dir)
			}
			roundTrip(t, be)
		})
	}
}

func TestOpenLocalRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("repo", 0o700); err != nil {
		t.Fatal(err)
	}
	be, err := location.Open(context.Background(), "repo", location.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "repo"); be.Location() != want {
		t.Errorf("Location() = %q, want the absolute %q", be.Location(), want)
	}
}

func TestOpenLocalCreate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		addr func(dir string) string
	}{
		{"plain path", func(dir string) string { return dir }},
		{"file URL", func(dir string) string { return "file://" + dir }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new", "repo")
			_, err := location.Open(ctx, tc.addr(dir), location.S3Options{})
			if err == nil {
				t.Fatal("opened a missing directory without CreateBucket")
			}
			msg := err.Error()
			for _, want := range []string{dir, "does not exist", "coffer init"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if _, err := os.Stat(dir); err == nil {
				t.Fatal("a failed open created the directory")
			}

			be, err := location.Open(ctx, tc.addr(dir), location.S3Options{CreateBucket: true})
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(dir)
			if err != nil || !st.IsDir() {
				t.Fatalf("CreateBucket did not create %s: %v", dir, err)
			}
			if perm := st.Mode().Perm(); perm != 0o700 {
				t.Errorf("created directory has mode %v, want 0700", perm)
			}
			roundTrip(t, be)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		addr string
		want []string // parts of the error message
	}{
		{"empty", "", []string{"no repository", "COFFER_REPO", "--repo"}},
		{"file URL with a host", "file://backup-host/srv/repo", []string{"file://backup-host/srv/repo", "file:///absolute/path"}},
		{"file URL without a path", "file://", []string{"file:///absolute/path"}},
		{"unknown scheme", "ftp://example.com/repo", []string{"ftp://example.com/repo", "unknown scheme", "a path", "file:///path", "s3://BUCKET/PREFIX"}},
		{"http scheme", "https://s3.example.com/bucket", []string{"unknown scheme", "s3://BUCKET/PREFIX"}},
		{"s3 without bucket", "s3://", []string{"no bucket", "s3://BUCKET/PREFIX"}},
		{"s3 with only a slash", "s3:///prefix", []string{"no bucket", "s3://BUCKET/PREFIX"}},
		{"path to a file", file, []string{file, "not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, err := location.Open(ctx, tc.addr, location.S3Options{CreateBucket: tc.name != "path to a file"})
			if err == nil {
				t.Fatalf("Open(%q) = %s, want an error", tc.addr, be.Location())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseS3(t *testing.T) {
	for _, tc := range []struct {
		addr           string
		bucket, prefix string
		wantErr        bool
	}{
		{addr: "s3://backups", bucket: "backups"},
		{addr: "s3://backups/", bucket: "backups"},
		{addr: "s3://backups/db1", bucket: "backups", prefix: "db1"},
		{addr: "s3://backups/db1/", bucket: "backups", prefix: "db1"},
		{addr: "s3://backups//db1//", bucket: "backups", prefix: "db1"},
		{addr: "s3://backups/prod/db1", bucket: "backups", prefix: "prod/db1"},
		{addr: "s3://backups/prod/db1/", bucket: "backups", prefix: "prod/db1"},
		{addr: "s3://", wantErr: true},
		{addr: "s3:///db1", wantErr: true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			bucket, prefix, err := location.ParseS3(tc.addr)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseS3(%q) = %q, %q; want an error", tc.addr, bucket, prefix)
				}
				if !strings.Contains(err.Error(), tc.addr) {
					t.Errorf("error %q does not name the address", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bucket != tc.bucket || prefix != tc.prefix {
				t.Errorf("ParseS3(%q) = %q, %q; want %q, %q", tc.addr, bucket, prefix, tc.bucket, tc.prefix)
			}
		})
	}
}

func s3Options(m *testminio.MinIO) location.S3Options {
	return location.S3Options{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey}
}

func TestOpenS3CreateBucket(t *testing.T) {
	m := testminio.Server(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	bucket := "location-create-" + hex.EncodeToString(b)
	addr := "s3://" + bucket + "/prod/db1/"

	if _, err := location.Open(ctx, addr, s3Options(m)); err == nil {
		t.Fatal("opened a missing bucket without CreateBucket")
	} else if !strings.Contains(err.Error(), bucket) || !strings.Contains(err.Error(), "coffer init") {
		t.Errorf("missing bucket error %q should name the bucket and say to run coffer init", err)
	}

	opts := s3Options(m)
	opts.CreateBucket = true
	be, err := location.Open(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, be)
	if !strings.Contains(be.Location(), bucket) {
		t.Errorf("Location() = %q, want it to name the bucket", be.Location())
	}

	// The bucket exists now; the object is under the trimmed prefix.
	if ok, err := m.Client().BucketExists(ctx, bucket); err != nil || !ok {
		t.Fatalf("bucket %s not created: %v", bucket, err)
	}
	if _, err := m.Client().StatObject(ctx, bucket, "prod/db1/config", minio.StatObjectOptions{}); err != nil {
		t.Errorf("object not stored at prod/db1/config: %v", err)
	}

	// Opening again, without CreateBucket, sees the same object.
	again, err := location.Open(ctx, addr, s3Options(m))
	if err != nil {
		t.Fatal(err)
	}
	got, err := storage.ReadAll(ctx, again, "config")
	if err != nil || string(got) != "hello" {
		t.Fatalf("reopened bucket: read %q, %v", got, err)
	}

	// The s3 backend comes wrapped in retries.
	if _, ok := again.(storage.Unwrapper); !ok {
		t.Errorf("s3 backend %T is not wrapped in retries", again)
	}
}

func TestOpenS3ExistingBucket(t *testing.T) {
	m := testminio.Server(t)
	bucket := m.Bucket(t, false)
	be, err := location.Open(context.Background(), "s3://"+bucket, s3Options(m))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, be)
}
