package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/testminio"
)

// TestCLIRoundTripMinIO200MB: 200 MB through the CLI into a real MinIO
// bucket and back, byte-identical.
func TestCLIRoundTripMinIO200MB(t *testing.T) {
	m := testminio.Server(t)
	c := newCLI(t, "", m.Env(m.Bucket(t, false), "customers/prod")...)
	cliRoundTrip(t, c, 200<<20)
}

func TestFaultUnreachableS3(t *testing.T) {
	endpoint := testminio.ClosedEndpoint(t)
	c := newCLI(t, "s3://backups/customers", "COFFER_S3_ENDPOINT="+endpoint,
		"AWS_ACCESS_KEY_ID=test-access", "AWS_SECRET_ACCESS_KEY=test-secret")
	mustContain(t, "init against an unreachable endpoint", c.fail(nil, "init"), endpoint, "COFFER_S3_ENDPOINT")
	mustContain(t, "snapshots against an unreachable endpoint", c.fail(nil, "snapshots"), endpoint)
}

func TestFaultWrongS3Credentials(t *testing.T) {
	m := testminio.Server(t)
	c := newCLI(t, "", m.Env(m.Bucket(t, false), "x")...)
	c.init()
	bad := c.with("AWS_SECRET_ACCESS_KEY=not-the-secret")
	mustContain(t, "snapshots with a wrong secret", bad.fail(nil, "snapshots"), "AWS_SECRET_ACCESS_KEY")
}

// TestCLIObjectLock: init creates a bucket with Object Lock, and forget
// and prune leave what is still locked, saying so.
func TestCLIObjectLock(t *testing.T) {
	m := testminio.Server(t)
	env := m.Env(fmt.Sprintf("coffer-lock-%d", time.Now().UnixNano()%1e9), "repo")
	c := newCLI(t, "", env...)
	msg := c.fail(nil, "init", "--lock", "governance")
	mustContain(t, "init --lock without days", msg, "--lock-days")
	c.ok(nil, "init", "--lock", "governance", "--lock-days", "3")
	b := c.backup(strings.NewReader(strings.Repeat("locked row\n", 10000)), "--source", "db", "--stdin")
	out := c.ok(nil, "forget", b.Snapshot)
	mustContain(t, "forget of a locked snapshot", out, "Object Lock", b.Snapshot[:8])
	if rows := c.snapshots(); len(rows) != 1 {
		t.Fatalf("a locked snapshot was removed: %+v", rows)
	}
	mustContain(t, "stats", c.ok(nil, "stats"), "under Object Lock retention")

	plain := newCLI(t, "", m.Env(m.Bucket(t, false), "repo")...)
	mustContain(t, "init --lock on a bucket without Object Lock", plain.fail(nil, "init", "--lock", "compliance", "--lock-days", "3"), "Object Lock")
}
