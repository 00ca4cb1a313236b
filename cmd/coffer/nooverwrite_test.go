package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

// assumeRole returns temporary credentials restricted to policy (sent
// compact: MinIO limits session policies to 2048 characters).
func assumeRole(t *testing.T, m *testminio.MinIO, policy string) (credentials.Value, error) {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(policy)); err != nil {
		t.Fatalf("the policy is not JSON: %v\n%s", err, policy)
	}
	sts, err := credentials.NewSTSAssumeRole(m.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: m.AccessKey, SecretKey: m.SecretKey, Policy: compact.String(), DurationSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	return sts.GetWithContext(nil)
}

// versions returns, per object key under prefix, how many versions the
// bucket keeps (delete markers included).
func versions(t *testing.T, c *minio.Client, bucket, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for o := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out[o.Key]++
	}
	return out
}

// TestHostileWriterOverwrite: a backup host under `coffer policy writer`
// tries to destroy a backup by overwriting a pack.
//
// coffer's own puts carry If-None-Match: * and MinIO refuses them over an
// existing object; a retried put of an object already stored succeeds; two
// nights of backups (the second reusing and adding packs) leave exactly one
// version of every object. MinIO's policy engine (the pinned release) does
// not know the s3:if-none-match condition key, so the policy that would
// forbid a plain PutObject is rejected, and a plain overwrite with the
// writer's credentials is accepted: the test shows that in a versioned
// bucket the original survives, the writer cannot delete it, check finds
// the damage and the operator's recovery brings the backup back.
func TestHostileWriterOverwrite(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	// A short bucket name: the writer policy names the bucket in every
	// resource, and session policies are limited to 2048 characters.
	bucket := fmt.Sprintf("ow-%d", time.Now().UnixNano())
	root := m.Client()
	if err := root.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := root.SetBucketVersioning(ctx, bucket, minio.BucketVersioningConfiguration{Status: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	admin := newCLI(t, "", m.Env(bucket, "prod")...)
	admin.init()
	night1 := strings.Repeat("existing customer row\n", 20000)
	admin.backup(strings.NewReader(night1), "--source", "shop", "--stdin")

	// The policy that requires If-None-Match: MinIO cannot express it.
	strict := admin.ok(nil, "policy", "writer", "--if-none-match", "require")
	mustContain(t, "policy writer --if-none-match require", strict, `"s3:if-none-match"`, "DenyPutObjectWithoutIfNoneMatch")
	if _, err := assumeRole(t, m, strict); err == nil {
		t.Error("MinIO accepted a policy with the s3:if-none-match condition key: it now supports it; make `coffer policy --if-none-match auto` require it for MinIO and make this test expect the plain overwrite to be refused")
	} else {
		t.Logf("MinIO refuses the s3:if-none-match condition key: %v", err)
	}
	r := admin.run(nil, "policy", "writer")
	if r.code != 0 {
		t.Fatalf("policy writer: %s", r.stderr)
	}
	mustContain(t, "policy writer's note for MinIO", r.stderr, "can overwrite", "versioned or under Object Lock")
	v, err := assumeRole(t, m, r.stdout)
	if err != nil {
		t.Fatalf("assume the writer role: %v", err)
	}
	writer := admin.without("COFFER_IDENTITY_FILE").with("AWS_ACCESS_KEY_ID="+v.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+v.SecretAccessKey, "AWS_SESSION_TOKEN="+v.SessionToken)
	night2 := night1 + strings.Repeat("new order row\n", 30000)
	b := writer.backup(strings.NewReader(night2), "--source", "shop", "--stdin")
	if b.ChunksNew == 0 || b.ChunksNew >= b.ChunksTotal {
		t.Errorf("night 2 under the writer policy stored %d of %d chunks new, want some reused and some new", b.ChunksNew, b.ChunksTotal)
	}
	for key, n := range versions(t, root, bucket, "prod/") {
		if n != 1 {
			t.Errorf("%s has %d versions after init and two backups: coffer replaced or deleted an object it wrote", key, n)
		}
	}

	wc, err := minio.New(strings.TrimPrefix(m.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(v.AccessKeyID, v.SecretAccessKey, v.SessionToken)})
	if err != nil {
		t.Fatal(err)
	}
	var pack string
	for o := range wc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "prod/data/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		pack = o.Key
	}
	if pack == "" {
		t.Fatal("no pack listed")
	}
	original := readObject(t, root, bucket, pack, "")
	junk := bytes.Repeat([]byte("overwritten by a compromised backup host\n"), 100)

	// A conditional overwrite, as coffer would make it, is refused by the
	// server, both through minio-go and through coffer's backend.
	po := minio.PutObjectOptions{}
	po.SetMatchETagExcept("*")
	if _, err := wc.PutObject(ctx, bucket, pack, bytes.NewReader(junk), int64(len(junk)), po); minio.ToErrorResponse(err).Code != "PreconditionFailed" {
		t.Errorf("a conditional put over pack %s with the writer's credentials = %v, want 412 PreconditionFailed", pack, err)
	}
	wbe, err := location.Open(ctx, "s3://"+bucket+"/prod", location.S3Options{Endpoint: m.Endpoint, AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(pack, "prod/")
	if err := wbe.Put(ctx, name, junk, storage.PutOptions{NoOverwrite: true}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("coffer's conditional put over %s = %v, want ErrExists", name, err)
	}
	// A retried put of objects already stored succeeds and changes nothing:
	// a pack (the writer cannot read it: the name proves the content) and
	// a snapshot (read back and authenticated).
	wrepo, err := repository.OpenWriter(ctx, wbe, cliWriterKey(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	id, err := repository.ParseID(filepath.Base(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := wrepo.SavePack(ctx, repository.PackEntry{ID: id, Size: int64(len(original))}, original); err != nil {
		t.Errorf("retried put of pack %s under the writer policy: %v", name, err)
	}
	snaps, err := wrepo.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots = %d, %v; want 2", len(snaps), err)
	}
	before := snaps[0].ID()
	if again, err := wrepo.SaveSnapshot(ctx, snaps[0]); err != nil || again != before {
		t.Errorf("retried put of snapshot %s under the writer policy = %v, %v; want the same id, nil", before, again, err)
	}
	for key, n := range versions(t, root, bucket, "prod/") {
		if n != 1 {
			t.Errorf("%s has %d versions after refused and retried puts", key, n)
		}
	}
	if got := readObject(t, root, bucket, pack, ""); !bytes.Equal(got, original) {
		t.Fatalf("pack %s changed under refused and retried puts", pack)
	}

	// The plain overwrite: MinIO cannot refuse it by policy.
	info, err := wc.PutObject(ctx, bucket, pack, bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{})
	if err != nil {
		// A MinIO that can forbid it: the pack must be untouched.
		if minio.ToErrorResponse(err).Code != "AccessDenied" || !bytes.Equal(readObject(t, root, bucket, pack, ""), original) {
			t.Fatalf("the writer's plain overwrite of %s failed with %v, and not as a refusal that left the pack alone", pack, err)
		}
		t.Logf("MinIO refused the writer's plain overwrite of %s: %v", pack, err)
		return
	}
	t.Logf("MinIO accepted the writer's plain overwrite of %s (version %s): the bucket's versioning is the defence", pack, info.VersionID)
	var old string
	for o := range root.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: pack, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.Key == pack && o.VersionID != info.VersionID {
			old = o.VersionID
		}
	}
	if old == "" || !bytes.Equal(readObject(t, root, bucket, pack, old), original) {
		t.Fatalf("the versioned bucket lost the original of %s", pack)
	}
	if err := wc.RemoveObject(ctx, bucket, pack, minio.RemoveObjectOptions{VersionID: old}); err == nil {
		t.Fatalf("the writer role deleted the original version of %s", pack)
	}
	if c := admin.run(nil, "check", "--read-data"); c.code == 0 || !strings.Contains(c.stdout+c.stderr, filepath.Base(pack)) {
		t.Errorf("check --read-data after the overwrite: exit %d, want a failure naming %s\n%s%s", c.code, filepath.Base(pack), c.stdout, c.stderr)
	}
	// The operator's recovery: delete the bad version, the original is current again.
	if err := root.RemoveObject(ctx, bucket, pack, minio.RemoveObjectOptions{VersionID: info.VersionID}); err != nil {
		t.Fatal(err)
	}
	admin.ok(nil, "check", "--read-data")
	out := filepath.Join(t.TempDir(), "night2")
	admin.ok(nil, "restore", b.Snapshot, "-o", out)
	if got, err := os.ReadFile(out); err != nil || string(got) != night2 {
		t.Fatalf("restore of night 2 after recovery: %v (%d bytes, want %d)", err, len(got), len(night2))
	}
}

func readObject(t *testing.T, c *minio.Client, bucket, key, version string) []byte {
	t.Helper()
	obj, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s version %q: %v", key, version, err)
	}
	return b
}

// TestInitWarnsUnprotectedBucket: init on a bucket with neither versioning
// nor Object Lock warns and says how to fix it; on a versioned or locked
// bucket it does not.
func TestInitWarnsUnprotectedBucket(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	plain := m.Bucket(t, false)
	versioned := m.Bucket(t, false)
	if err := m.Client().SetBucketVersioning(ctx, versioned, minio.BucketVersioningConfiguration{Status: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	locked := m.Bucket(t, true)
	for _, tc := range []struct {
		bucket string
		warn   bool
	}{{plain, true}, {versioned, false}, {locked, false}} {
		r := newCLI(t, "", m.Env(tc.bucket, "repo")...).run(nil, "init")
		if r.code != 0 {
			t.Fatalf("init on %s: %s", tc.bucket, r.stderr)
		}
		warned := strings.Contains(r.stderr, "neither versioning nor Object Lock")
		if warned != tc.warn {
			t.Errorf("init on %s: warned = %v, want %v\n%s", tc.bucket, warned, tc.warn, r.stderr)
		}
		if tc.warn {
			mustContain(t, "init's warning", r.stderr, "s3://"+tc.bucket+"/repo", "put-bucket-versioning", "--lock")
		}
	}
}

// TestPolicyIfNoneMatch: `policy` requires conditional puts for AWS
// endpoints by default and on request, and otherwise says that the bucket
// must be versioned or locked.
func TestPolicyIfNoneMatch(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		args     []string
		require  bool
	}{
		{"", nil, true},
		{"https://s3.eu-west-1.amazonaws.com", nil, true},
		{"http://127.0.0.1:9000", nil, false},
		{"http://127.0.0.1:9000", []string{"--if-none-match", "require"}, true},
		{"https://s3.amazonaws.com", []string{"--if-none-match", "omit"}, false},
	} {
		c := newCLI(t, "s3://bucket/repo", "COFFER_S3_ENDPOINT="+tc.endpoint)
		for _, role := range []string{"writer", "maintainer", "restorer"} {
			r := c.run(nil, append([]string{"policy", role}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("policy %s %v: %s", role, tc.args, r.stderr)
			}
			var p struct {
				Statement []struct {
					Sid, Effect string
					Action      []string
					Resource    []string
					Condition   map[string]map[string]any
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
				t.Fatalf("policy %s is not JSON: %v", role, err)
			}
			var allow, deny bool
			for _, st := range p.Statement {
				if len(st.Action) != 1 || st.Action[0] != "s3:PutObject" {
					continue
				}
				null := st.Condition["Null"]["s3:if-none-match"]
				switch {
				case st.Effect == "Allow" && null == "false":
					allow = true
				case st.Effect == "Deny" && null == "true":
					deny = true
				case st.Effect == "Allow" && tc.require && st.Sid == "PutObjectLocks":
					// Locks are refreshed by storing them again under their
					// name: the one unconditional put, on locks/* only.
					if len(st.Resource) != 1 || !strings.HasSuffix(st.Resource[0], "/locks/*") {
						t.Errorf("endpoint %q %v, role %s: the unconditional put is on %v, want locks/* only", tc.endpoint, tc.args, role, st.Resource)
					}
				case st.Effect == "Allow" && tc.require:
					t.Errorf("endpoint %q %v, role %s: an unconditional PutObject allow: %+v", tc.endpoint, tc.args, role, st)
				}
			}
			if allow != tc.require || deny != tc.require {
				t.Errorf("endpoint %q %v, role %s: conditional allow %v, deny without the header %v; want both %v", tc.endpoint, tc.args, role, allow, deny, tc.require)
			}
			if noted := strings.Contains(r.stderr, "can overwrite"); noted == tc.require {
				t.Errorf("endpoint %q %v, role %s: note on stderr = %v, want %v", tc.endpoint, tc.args, role, noted, !tc.require)
			}
		}
	}
	if r := newCLI(t, "s3://bucket/repo").run(nil, "policy", "writer", "--if-none-match", "maybe"); r.code == 0 || !strings.Contains(r.stderr, "auto, require or omit") {
		t.Errorf("policy --if-none-match maybe: exit %d\n%s", r.code, r.stderr)
	}
}
