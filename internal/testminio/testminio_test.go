package testminio

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestServerAndBuckets(t *testing.T) {
	m := Server(t)
	if m2 := Server(t); m2 != m {
		t.Fatal("Server started a second server")
	}
	resp, err := http.Get(m.Endpoint + "/minio/health/live")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("server not live: %v %v", resp, err)
	}
	resp.Body.Close()
	a, b := m.Bucket(t, false), m.Bucket(t, true)
	if a == b {
		t.Fatalf("two buckets named %s", a)
	}
	ctx := context.Background()
	for _, bk := range []string{a, b} {
		if ok, err := m.client.BucketExists(ctx, bk); !ok || err != nil {
			t.Errorf("bucket %s: exists=%v err=%v", bk, ok, err)
		}
	}
	enabled, _, _, _, err := m.client.GetObjectLockConfig(ctx, b)
	if err != nil || enabled != "Enabled" {
		t.Errorf("bucket %s: object lock %q, %v", b, enabled, err)
	}
}

func TestEnv(t *testing.T) {
	m := &MinIO{Endpoint: "http://127.0.0.1:1", AccessKey: "ak", SecretKey: "sk"}
	got := strings.Join(m.Env("bkt", "/pre/"), " ")
	want := "COFFER_REPO=s3://bkt/pre COFFER_S3_ENDPOINT=http://127.0.0.1:1 AWS_ACCESS_KEY_ID=ak AWS_SECRET_ACCESS_KEY=sk"
	if got != want {
		t.Errorf("Env = %s, want %s", got, want)
	}
	if got := m.Env("bkt", "")[0]; got != "COFFER_REPO=s3://bkt" {
		t.Errorf("Env without prefix: %s", got)
	}
}

func TestClosedEndpoint(t *testing.T) {
	ep := ClosedEndpoint(t)
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get(ep); err == nil {
		resp.Body.Close()
		t.Fatalf("something answers on %s", ep)
	}
}

func TestBucketStem(t *testing.T) {
	for in, want := range map[string]string{
		"TestS3/Conformance/Put_Get": "s3-conforman",
		"T":                          "bucket",
		"TestMaintainerPolicy":       "maintainerpo",
		strings.Repeat("a", 80):      strings.Repeat("a", 12),
	} {
		if got := bucketStem(in); got != want {
			t.Errorf("bucketStem(%q) = %q, want %q", in, got, want)
		}
	}
}
