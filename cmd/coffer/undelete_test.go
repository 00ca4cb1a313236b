package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
)

// versionedBucket creates a bucket with versioning enabled.
func versionedBucket(t *testing.T, m *testminio.MinIO) string {
	t.Helper()
	b := m.Bucket(t, false)
	if err := m.Client().SetBucketVersioning(context.Background(), b, minio.BucketVersioningConfiguration{Status: "Enabled"}); err != nil {
		t.Fatal(err)
	}
	return b
}

// versionedRepo initialises a repository in a fresh versioned bucket,
// under the prefix "repo".
func versionedRepo(t *testing.T) (*testminio.MinIO, string, *cli) {
	t.Helper()
	m := testminio.Server(t)
	bucket := versionedBucket(t, m)
	c := newCLI(t, "", m.Env(bucket, "repo")...)
	c.init()
	return m, bucket, c
}

// moment returns a time strictly between what was written before and
// what is written after (the bucket dates versions to the millisecond;
// a second apart either way leaves room).
func moment() string {
	time.Sleep(1100 * time.Millisecond)
	at := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(1100 * time.Millisecond)
	return at
}

// restoreAll restores every snapshot's whole stream (with args, such as
// --as-of) and returns the hashes by snapshot id.
func restoreAll(t *testing.T, c *cli, ids []string, args ...string) map[string][32]byte {
	t.Helper()
	dir := t.TempDir()
	out := map[string][32]byte{}
	for _, id := range ids {
		f := filepath.Join(dir, id)
		c.ok(nil, append([]string{"restore", id, "--part", "all", "-o", f}, args...)...)
		out[id] = fileHash(t, f)
	}
	return out
}

// attack does what whoever controls the bucket can: it deletes every
// snapshot object, overwrites a pack and plants a snapshot.
func attack(t *testing.T, m *testminio.MinIO, bucket, prefix string) {
	t.Helper()
	ctx := context.Background()
	cl := m.Client()
	var pack string
	for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		switch {
		case strings.HasPrefix(o.Key, prefix+"/snapshots/"):
			if err := cl.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(o.Key, prefix+"/data/") && pack == "":
			pack = o.Key
		}
	}
	if pack == "" {
		t.Fatal("no pack to overwrite")
	}
	junk := synth.Bytes(7, 4096)
	if _, err := cl.PutObject(ctx, bucket, pack, strings.NewReader(string(junk)), int64(len(junk)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	planted := prefix + "/snapshots/" + hex.EncodeToString(id)
	if _, err := cl.PutObject(ctx, bucket, planted, strings.NewReader("planted"), 7, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

type undeleteJSON struct {
	AsOf      string   `json:"as_of_time"`
	Restored  []string `json:"restored"`
	Unchanged int      `json:"unchanged"`
	Newer     []string `json:"newer"`
}

// TestCLIAsOfAfterAttack: on a versioned bucket, after every snapshot
// object was deleted, a pack overwritten and a snapshot planted, restore
// and check --as-of a moment before see the repository as it was, and
// undelete brings it back so that the plain commands work again.
func TestCLIAsOfAfterAttack(t *testing.T) {
	m := testminio.Server(t)
	bucket := versionedBucket(t, m)
	dir := t.TempDir()
	c := newCLI(t, "", m.Env(bucket, "repo")...)
	pgDrillSource(t, c, 3000) // inits the repository
	c.ok(nil, "demo", "--dir", filepath.Join(dir, "demo"), "--customers", "300")
	c.backup(nil, "--source", "shop", "--sqlite", filepath.Join(dir, "demo", "customers.db"))
	c.backup(strings.NewReader(string(synth.Bytes(3, 2<<20))), "--source", "stream", "--stdin")
	var ids []string
	for _, s := range c.snapshots() {
		ids = append(ids, s.ID)
	}
	want := restoreAll(t, c, ids)

	at := moment()
	attack(t, m, bucket, "repo")

	if r := c.run(nil, "check", "--read-data"); r.code == 0 {
		t.Fatalf("plain check passed after the attack:\n%s", r.stdout)
	}
	r0 := c.run(nil, "restore", ids[0], "--as-of", at, "--part", "all", "-o", filepath.Join(dir, "first"))
	if r0.code != 0 || strings.Contains(r0.stderr, "first open") {
		t.Fatalf("restore --as-of: exit %d\n%s", r0.code, r0.stderr)
	}
	for id, h := range restoreAll(t, c, ids, "--as-of", at) {
		if h != want[id] {
			t.Fatalf("snapshot %s restored --as-of differs from the original", id[:8])
		}
	}
	if got := c.snapshots("--as-of", at); len(got) != len(ids) {
		t.Fatalf("snapshots --as-of: %d, want %d", len(got), len(ids))
	}
	r := c.run(nil, "check", "--as-of", at, "--read-data")
	t.Logf("check --as-of:\n%s%s", r.stdout, r.stderr)
	out := r.stdout
	if r.code != 0 {
		t.Fatalf("check --as-of failed")
	}
	mustContain(t, "check --as-of", out, "3 snapshots", "all verified", "no errors")

	var dry undeleteJSON
	if err := json.Unmarshal([]byte(c.ok(nil, "undelete", "--as-of", at, "--dry-run", "--json")), &dry); err != nil {
		t.Fatal(err)
	}
	if len(dry.Restored) != len(ids)+1 || len(dry.Newer) != 1 || !strings.HasPrefix(dry.Newer[0], "snapshots/") {
		t.Fatalf("undelete --dry-run: %+v, want the %d snapshots and a pack back and one planted snapshot", dry, len(ids))
	}
	if r := c.run(nil, "check"); r.code == 0 {
		t.Fatal("undelete --dry-run changed the repository")
	}
	out = c.ok(nil, "undelete", "--as-of", at)
	t.Logf("undelete:\n%s", out)
	mustContain(t, "undelete", out, "brought back 4 objects", dry.Newer[0], "--hide-newer")
	// The planted snapshot is still current: hide it (what was written
	// since the moment), then the repository is as it was.
	out = c.ok(nil, "undelete", "--as-of", at, "--hide-newer")
	mustContain(t, "undelete --hide-newer", out, "brought back 0 objects", "hidden")
	c.ok(nil, "check", "--read-data")
	if got := len(c.snapshots()); got != len(ids) {
		t.Errorf("after undelete: %d snapshots listed, want %d", got, len(ids))
	}
	for id, h := range restoreAll(t, c, ids) {
		if h != want[id] {
			t.Fatalf("snapshot %s restored after undelete differs from the original", id[:8])
		}
	}
	mustContain(t, "audit log", c.ok(nil, "audit"), "undelete")
	// A backup after the recovery works, and a second undelete has nothing to do.
	c.backup(strings.NewReader("after the recovery\n"), "--source", "stream", "--stdin")
	var again undeleteJSON
	json.Unmarshal([]byte(c.ok(nil, "undelete", "--as-of", at, "--dry-run", "--json")), &again)
	if len(again.Restored) != 0 {
		t.Errorf("undelete after the recovery would bring back %v", again.Restored)
	}
}

// TestCLIAsOfRefusals: --as-of on a local repository, and at a time before
// the repository existed, fail clearly; check warns about an unversioned
// bucket, not about a versioned one.
func TestCLIAsOfRefusals(t *testing.T) {
	local := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	local.init()
	now := time.Now().UTC().Format(time.RFC3339)
	mustContain(t, "check --as-of on a local repository", local.fail(nil, "check", "--as-of", now), "keeps no versions", "local directory")
	mustContain(t, "undelete on a local repository", local.fail(nil, "undelete", "--as-of", now), "keeps no versions")
	mustContain(t, "a time that is not RFC 3339", local.fail(nil, "check", "--as-of", "yesterday"), "RFC 3339")
	mustContain(t, "undelete without --as-of", local.fail(nil, "undelete"), "--as-of")

	m := testminio.Server(t)
	versioned := newCLI(t, "", m.Env(versionedBucket(t, m), "repo")...)
	versioned.init()
	before := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	msg := versioned.fail(nil, "check", "--as-of", before)
	mustContain(t, "check --as-of before the repository", msg, "there was no repository", "later --as-of")
	mustContain(t, "restore --as-of before the repository", versioned.fail(nil, "restore", "latest", "-o", filepath.Join(t.TempDir(), "x"), "--as-of", before), "there was no repository")
	if r := versioned.run(nil, "check"); r.code != 0 || strings.Contains(r.stderr, "neither versioning") {
		t.Errorf("check on a versioned bucket: exit %d\n%s", r.code, r.stderr)
	}
	plain := newCLI(t, "", m.Env(m.Bucket(t, false), "repo")...)
	plain.init()
	r := plain.run(nil, "check")
	if r.code != 0 {
		t.Fatalf("check: %s", r.stderr)
	}
	mustContain(t, "check on an unversioned bucket", r.stderr, "neither versioning nor Object Lock")
}

// TestCLIUndeleteObjectLock: in an Object Lock bucket a plain delete
// still hides objects behind a delete marker; undelete brings them back,
// each retained again under the repository's lock policy.
func TestCLIUndeleteObjectLock(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	bucket := m.Bucket(t, true)
	c := newCLI(t, "", m.Env(bucket, "repo")...)
	c.ok(nil, "init", "--lock", "governance", "--lock-days", "2")
	b := c.backup(strings.NewReader(string(synth.Bytes(5, 1<<20))), "--source", "stream", "--stdin")
	at := moment()
	key := "repo/snapshots/" + b.Snapshot
	if err := m.Client().RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if rows := c.snapshots(); len(rows) != 0 {
		t.Fatalf("the delete marker did not hide the snapshot: %+v", rows)
	}
	c.ok(nil, "restore", b.Snapshot, "--as-of", at, "-o", filepath.Join(t.TempDir(), "stream"))
	out := c.ok(nil, "undelete", "--as-of", at)
	mustContain(t, "undelete on a locked bucket", out, "brought back 1 object")
	_, until, err := m.Client().GetObjectRetention(ctx, bucket, key, "")
	if err != nil || until == nil || time.Until(*until) < 47*time.Hour {
		t.Fatalf("the brought-back snapshot is retained until %v (%v), want about 2 days from now", until, err)
	}
	c.ok(nil, "check", "--read-data")
}

// TestCLIUndeleteRefusesDamagedPast: undelete changes nothing when the
// repository as of TIME has problems of its own (a pack whose every
// version the bucket owner deleted).
func TestCLIUndeleteRefusesDamagedPast(t *testing.T) {
	ctx := context.Background()
	m, bucket, c := versionedRepo(t)
	c.backup(strings.NewReader(string(synth.Bytes(6, 1<<20))), "--source", "stream", "--stdin")
	cl := m.Client()
	for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "repo/data/", Recursive: true, WithVersions: true}) {
		if err := cl.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID}); err != nil {
			t.Fatal(err)
		}
	}
	at := moment()
	msg := c.fail(nil, "undelete", "--as-of", at)
	mustContain(t, "undelete of a damaged past", msg, "problem", "nothing was changed", "another --as-of")
}

// TestCLIUndeleteKilled: undelete killed with SIGKILL at random points
// never leaves a current snapshot without what it needs (check passes
// after every kill), and a run to the end brings everything back.
func TestCLIUndeleteKilled(t *testing.T) {
	ctx := context.Background()
	m, bucket, c := versionedRepo(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, c.backup(strings.NewReader(string(synth.Bytes(uint64(20+i), 256<<10))), "--source", fmt.Sprint("s", i), "--stdin").Snapshot)
	}
	want := restoreAll(t, c, ids)
	at := moment()
	cl := m.Client()
	for _, dir := range []string{"data/", "index/", "chunklists/", "snapshots/"} {
		for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "repo/" + dir, Recursive: true}) {
			if err := cl.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 12 {
		cmd := c.cmd(ctx, nil, "undelete", "--as-of", at)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Later and later, so that some kills land among the copies.
		time.Sleep(time.Duration(10*i+mrand.IntN(40)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if r := c.run(nil, "check"); r.code != 0 {
			t.Fatalf("check after undelete killed (run %d):\n%s%s", i, r.stdout, r.stderr)
		} else {
			t.Logf("killed run %d: %s", i, firstLineOf(r.stdout))
		}
	}
	c.ok(nil, "undelete", "--as-of", at)
	c.ok(nil, "check", "--read-data")
	for id, h := range restoreAll(t, c, ids) {
		if h != want[id] {
			t.Fatalf("snapshot %s differs after undelete", id[:8])
		}
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestRecoveryPolicy: under `coffer policy recovery` (temporary MinIO
// credentials restricted to it) undelete and --hide-newer work, and the
// server refuses the role deleting a version.
func TestRecoveryPolicy(t *testing.T) {
	ctx := context.Background()
	m, bucket, admin := versionedRepo(t)
	admin.backup(strings.NewReader(string(synth.Bytes(8, 1<<20))), "--source", "stream", "--stdin")
	at := moment()
	attack(t, m, bucket, "repo")
	rec, c := asRole(t, m, admin, "recovery")
	rec.ok(nil, "undelete", "--as-of", at, "--hide-newer")
	admin.ok(nil, "check", "--read-data")
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "repo/snapshots/", Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		err := c.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID})
		if err == nil || !strings.Contains(err.Error(), "Access Denied") {
			t.Fatalf("the recovery role deleted version %s of %s: %v", o.VersionID, o.Key, err)
		}
	}
}
