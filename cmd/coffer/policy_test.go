package main_test

import (
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

	var policy map[string]any
	text := admin.ok(nil, "policy", "writer")
	if err := json.Unmarshal([]byte(text), &policy); err != nil {
		t.Fatalf("policy writer is not JSON: %v\n%s", err, text)
	}
	sts, err := credentials.NewSTSAssumeRole(m.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: m.AccessKey, SecretKey: m.SecretKey, Policy: text, DurationSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sts.GetWithContext(nil)
	if err != nil {
		t.Fatalf("assume the writer role: %v", err)
	}
	writer := admin.without("COFFER_IDENTITY_FILE").with("AWS_ACCESS_KEY_ID="+v.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+v.SecretAccessKey, "AWS_SESSION_TOKEN="+v.SessionToken)
	b := writer.backup(strings.NewReader(strings.Repeat("existing customer row\n", 20000)+"new row\n"), "--source", "shop", "--stdin")
	if b.ChunksNew >= b.ChunksTotal {
		t.Errorf("the writer's backup reused nothing (%d of %d chunks new)", b.ChunksNew, b.ChunksTotal)
	}
	writer.ok(nil, "snapshots")
	writer.ok(nil, "check")

	c, err := minio.New(strings.TrimPrefix(m.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(v.AccessKeyID, v.SecretAccessKey, v.SessionToken)})
	if err != nil {
		t.Fatal(err)
	}
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
