package main_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/internal/testminio"
)

// TestHostileAsOfKeySubstitution: the pins of an operator's machine apply
// to the repository read --as-of as to today's. Someone who controls the
// bucket replaces config and keys with a repository of their own (as in
// TestHostileKeySubstitution, hiding the real metadata behind delete
// markers) and backs up their data: --as-of a moment after that is
// refused, naming both fingerprints; --as-of a moment before reads the
// real data, without a new pin.
func TestHostileAsOfKeySubstitution(t *testing.T) {
	const realData, evilData = "real customer rows\n", "attacker's rows\n"
	ctx := context.Background()
	m := testminio.Server(t)
	bucket := versionedBucket(t, m)
	opID, opPub := ageKeygen(t)
	admin := newCLI(t, "", m.Env(bucket, "real")...)
	realFP := fingerprint(t, admin.ok(nil, "init", "--recipient", opPub))
	admin.without("COFFER_IDENTITY_FILE").backup(strings.NewReader(realData), "--source", "db", "--stdin")
	op := admin.without("COFFER_WRITER_KEY_FILE").with("COFFER_IDENTITY_FILE=" + opID)
	op.ok(nil, "snapshots") // the first open pins
	before := moment()

	attDir := filepath.Join(t.TempDir(), "attacker")
	att := newCLI(t, attDir)
	evilFP := fingerprint(t, att.ok(nil, "init", "--recipient", opPub))
	cl := m.Client()
	for _, name := range []string{"config", "keys/repository.age", "keys/writer.age"} {
		b, err := os.ReadFile(filepath.Join(attDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.PutObject(ctx, bucket, "real/"+name, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"index/", "snapshots/", "audit/"} {
		for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "real/" + dir, Recursive: true}) {
			if err := cl.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin.without("COFFER_IDENTITY_FILE").with("COFFER_WRITER_KEY_FILE="+filepath.Join(att.dir, "writer.key")).
		backup(strings.NewReader(evilData), "--source", "db", "--stdin")
	after := moment()

	r := op.run(nil, "restore", "latest", "--source", "db", "--as-of", after)
	if r.code == 0 || strings.Contains(r.stdout, "attacker") {
		t.Fatalf("restore --as-of after the substitution: exit %d, stdout %q", r.code, r.stdout)
	}
	mustContain(t, "restore --as-of after the substitution", r.stderr, realFP, evilFP, "coffer key trust")
	r = op.run(nil, "restore", "latest", "--source", "db", "--as-of", before)
	if r.code != 0 || r.stdout != realData || strings.Contains(r.stderr, "first open") {
		t.Fatalf("restore --as-of before the substitution: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
}
