package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/coffer-backup/coffer/internal/testminio"
)

// TestWriterPolicy: under `coffer policy writer`, a backup host can back up
// (and deduplicate), but the server refuses it reading stored data and
// deleting objects.
func TestWriterPolicy(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	bucket := m.Bucket(t, false)
	admin := newCLI(t, "", m.Env(bucket, "prod")...)
	admin.init()
	seed := admin.backup(strings.NewReader(strings.Repeat("existing customer row\n", 20000)), "--source", "shop", "--stdin")

	writer, c := asRole(t, m, admin, "writer")
	b := writer.backup(strings.NewReader(strings.Repeat("existing customer row\n", 20000)+"new row\n"), "--source", "shop", "--stdin")
	if b.ChunksNew >= b.ChunksTotal {
		t.Errorf("the writer's backup reused nothing (%d of %d chunks new)", b.ChunksNew, b.ChunksTotal)
	}
	writer.ok(nil, "snapshots")
	writer.ok(nil, "check")

	var pack string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "prod/data/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		pack = o.Key
	}
	if pack == "" {
		t.Fatal("the writer cannot list packs")
	}
	if obj, err := c.GetObject(ctx, bucket, pack, minio.GetObjectOptions{}); err == nil {
		if _, err = obj.Stat(); err == nil {
			t.Fatalf("the writer role read stored data %s", pack)
		}
	}
	for _, name := range []string{pack, "prod/snapshots/" + seed.Snapshot, "prod/config"} {
		if err := c.RemoveObject(ctx, bucket, name, minio.RemoveObjectOptions{}); err == nil || !strings.Contains(err.Error(), "Access Denied") {
			t.Errorf("the writer role deleted %s: %v", name, err)
		}
	}
	admin.ok(nil, "restore", seed.Snapshot, "-o", t.TempDir()+"/out")
}

// TestMaintainerPolicy: under `coffer policy maintainer`, forget and prune
// remove what a forgotten snapshot alone needed (packs and chunk lists),
// and the server refuses the role reading stored data.
func TestMaintainerPolicy(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	bucket := m.Bucket(t, false)
	admin := newCLI(t, "", m.Env(bucket, "prod")...)
	admin.init()
	keep := admin.backup(strings.NewReader(strings.Repeat("kept customer row\n", 20000)), "--source", "shop", "--stdin")
	gone := admin.backup(strings.NewReader(strings.Repeat("forgotten customer row\n", 20000)), "--source", "crm", "--stdin")

	maint, c := asRole(t, m, admin, "maintainer")
	count := func(dir string) (n int, last string) {
		for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "prod/" + dir + "/", Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			n, last = n+1, o.Key
		}
		return n, last
	}
	lists, _ := count("chunklists")
	packs, pack := count("data")
	if lists != 2 || packs < 2 {
		t.Fatalf("two small streams stored %d chunk lists and %d packs, want 2 lists and a pack each", lists, packs)
	}
	if obj, err := c.GetObject(ctx, bucket, pack, minio.GetObjectOptions{}); err == nil {
		if _, err = obj.Stat(); err == nil {
			t.Fatalf("the maintainer role read stored data %s", pack)
		}
	}
	maint.ok(nil, "forget", gone.Snapshot)
	mustContain(t, "prune as maintainer", maint.ok(nil, "prune"), "deleted 1 chunk lists")
	if n, _ := count("chunklists"); n != 1 {
		t.Fatalf("%d chunk lists after forget and prune, want the kept snapshot's 1", n)
	}
	if n, _ := count("data"); n >= packs {
		t.Fatalf("prune as maintainer deleted no pack (%d, then %d)", packs, n)
	}
	maint.ok(nil, "check")
	admin.ok(nil, "restore", keep.Snapshot, "-o", t.TempDir()+"/out")
}

// asRole returns admin's CLI without the identity, with temporary
// credentials restricted to `coffer policy role`, and an S3 client with
// the same credentials.
func asRole(t *testing.T, m *testminio.MinIO, admin *cli, role string) (*cli, *minio.Client) {
	t.Helper()
	text := admin.ok(nil, "policy", role)
	var policy map[string]any
	if err := json.Unmarshal([]byte(text), &policy); err != nil {
		t.Fatalf("policy %s is not JSON: %v\n%s", role, err, text)
	}
	// A session policy's 2048 characters count its white space: give
	// it compact, as `coffer policy ROLE | jq -c` would.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		t.Fatal(err)
	}
	v, err := assumeRole(t, m, compact.String())
	if err != nil {
		t.Fatalf("assume the %s role: %v", role, err)
	}
	c, err := minio.New(strings.TrimPrefix(m.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(v.AccessKeyID, v.SecretAccessKey, v.SessionToken)})
	if err != nil {
		t.Fatal(err)
	}
	return admin.without("COFFER_IDENTITY_FILE").with("AWS_ACCESS_KEY_ID="+v.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+v.SecretAccessKey, "AWS_SESSION_TOKEN="+v.SessionToken), c
}
