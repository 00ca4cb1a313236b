package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

// envOf returns the value of name in c's environment.
func (c *cli) envOf(name string) string {
	v := ""
	for _, kv := range c.env {
		if k, val, _ := strings.Cut(kv, "="); k == name {
			v = val
		}
	}
	return v
}

// storageOf opens c's repository as raw storage, as whoever holds the
// bucket's (or directory's) write access would.
func storageOf(t *testing.T, c *cli) storage.Backend {
	t.Helper()
	be, err := location.Open(context.Background(), c.envOf("COFFER_REPO"), location.S3Options{
		Endpoint: c.envOf("COFFER_S3_ENDPOINT"), AccessKey: c.envOf("AWS_ACCESS_KEY_ID"), SecretKey: c.envOf("AWS_SECRET_ACCESS_KEY"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// substituteKeys is the attack of issue #12: config and keys/* of the
// attacker's repository replace the real ones, and index/, snapshots/ and
// audit/ are moved away (to moved/), so that only the attacker's
// snapshots remain.
func substituteKeys(t *testing.T, real, attacker storage.Backend) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{"config", "keys/repository.age", "keys/writer.age"} {
		b, err := storage.ReadAll(ctx, attacker, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := real.Put(ctx, name, b, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	moved := 0
	for _, prefix := range []string{"index/", "snapshots/", "audit/"} {
		var names []string
		if err := real.List(ctx, prefix, func(i storage.Info) error { names = append(names, i.Name); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, err := storage.ReadAll(ctx, real, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := real.Put(ctx, "moved/"+n, b, storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := real.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the attack moved nothing away: the real repository has no index, snapshots or audit")
	}
}

// TestHostileKeySubstitution: someone with only write access to storage
// replaces the repository's keys with their own (recipients: the operators'
// plus theirs) and backs up data of their choosing. The operator's machine,
// which pinned the repository on its first open, refuses it by name and
// fingerprint until `coffer key trust`; a backup without a local writer key
// refuses rather than encrypt to a recipient read from storage.
func TestHostileKeySubstitution(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		keySubstitution(t, func(name string) []string {
			return []string{"COFFER_REPO=" + filepath.Join(dir, name)}
		})
	})
	t.Run("minio", func(t *testing.T) {
		m := testminio.Server(t)
		bucket := m.Bucket(t, false)
		keySubstitution(t, func(name string) []string { return m.Env(bucket, name) })
	})
}

func keySubstitution(t *testing.T, repoEnv func(name string) []string) {
	const realData, evilData = "real customer rows\n", "attacker's rows\n"
	opID, opPub := ageKeygen(t)
	_, attPub := ageKeygen(t)

	// The real repository, made by an admin for the operator; a backup
	// host writes real data with the real writer key.
	admin := newCLI(t, "", repoEnv("real")...)
	out := admin.ok(nil, "init", "--recipient", opPub)
	realFP := fingerprint(t, out)
	mustContain(t, "init output", out, "pinned in:", filepath.Join(admin.dir, "operator.txt.trust"))
	admin.without("COFFER_IDENTITY_FILE").backup(strings.NewReader(realData), "--source", "db", "--stdin")

	// The operator holds only an identity. The first open pins, and says so.
	op := admin.without("COFFER_WRITER_KEY_FILE").with("COFFER_IDENTITY_FILE=" + opID)
	r := op.run(nil, "snapshots")
	if r.code != 0 {
		t.Fatalf("operator's first snapshots: exit %d\n%s", r.code, r.stderr)
	}
	mustContain(t, "first open", r.stderr, "first open", realFP, opID+".trust")
	if r := op.run(nil, "snapshots"); r.code != 0 || strings.Contains(r.stderr, "first open") {
		t.Fatalf("second open: exit %d, stderr %q; want silence", r.code, r.stderr)
	}
	if got := op.ok(nil, "restore", "latest", "--source", "db"); got != realData {
		t.Fatalf("operator restored %q before the attack", got)
	}

	// The attacker: a repository of their own with the operator's
	// recipient plus theirs, copied over the real one.
	att := newCLI(t, "", repoEnv("attacker")...)
	evilFP := fingerprint(t, att.ok(nil, "init", "--recipient", opPub, "--recipient", attPub))
	substituteKeys(t, storageOf(t, admin), storageOf(t, att))
	evil := admin.without("COFFER_IDENTITY_FILE").with("COFFER_WRITER_KEY_FILE=" + filepath.Join(att.dir, "writer.key"))
	evil.backup(strings.NewReader(evilData), "--source", "db", "--stdin")

	// Without its pin, the operator's identity would believe the attacker:
	// this is the attack the pin stops.
	fresh := op.with("COFFER_TRUST_FILE=" + filepath.Join(t.TempDir(), "fresh.trust"))
	if got := fresh.ok(nil, "restore", "latest", "--source", "db"); got != evilData {
		t.Fatalf("the attack was not set up: an unpinned operator restored %q", got)
	}

	for _, args := range [][]string{
		{"restore", "latest", "--source", "db"},
		{"check"},
		{"check", "--read-data"},
		{"snapshots"},
		{"audit", "verify"},
		{"key", "list"},
	} {
		r := op.run(nil, args...)
		if r.code == 0 || strings.Contains(r.stdout, strings.TrimSpace(evilData)) {
			t.Fatalf("coffer %s on the substituted repository: exit %d, stdout %q", strings.Join(args, " "), r.code, r.stdout)
		}
		mustContain(t, "coffer "+strings.Join(args, " "), r.stderr, realFP, evilFP, strings.TrimPrefix(admin.envOf("COFFER_REPO"), "file://"), "coffer key trust")
	}
	// Wrapping the identity's open in the real writer key does not help the
	// attacker either: the local key does not fit the planted config.
	op.with("COFFER_WRITER_KEY_FILE="+filepath.Join(admin.dir, "writer.key")).fail(nil, "restore", "latest", "--source", "db")

	// An operator's ad-hoc backup never encrypts to what storage says.
	before := len(evil.snapshots())
	mustContain(t, "backup --stdin with only an identity", op.fail(strings.NewReader("operator's dump\n"), "backup", "--source", "adhoc", "--stdin"),
		"COFFER_WRITER_KEY_FILE", "never to one read from the repository")
	mustContain(t, "backup --stdin with a fresh trust file", fresh.fail(strings.NewReader("operator's dump\n"), "backup", "--source", "adhoc", "--stdin"),
		"COFFER_WRITER_KEY_FILE")
	if after := len(evil.snapshots()); after != before {
		t.Fatalf("a refused backup wrote a snapshot: %d snapshots, had %d", after, before)
	}

	// COFFER_WRITER_FINGERPRINT, for machines without state, wins over the
	// trust file, which it neither reads nor writes.
	pins, _ := os.ReadFile(opID + ".trust")
	mustContain(t, "restore with the real fingerprint pinned by environment",
		op.with("COFFER_WRITER_FINGERPRINT="+realFP).fail(nil, "restore", "latest", "--source", "db"), realFP, evilFP)
	op.with("COFFER_WRITER_FINGERPRINT="+evilFP).ok(nil, "snapshots")
	if now, _ := os.ReadFile(opID + ".trust"); string(now) != string(pins) {
		t.Fatal("an open pinned by COFFER_WRITER_FINGERPRINT changed the trust file")
	}
	// A damaged trust file is an error, never a fresh start.
	damaged := filepath.Join(t.TempDir(), "damaged.trust")
	os.WriteFile(damaged, pins[:len(pins)/2], 0o600)
	mustContain(t, "snapshots with a damaged trust file", op.with("COFFER_TRUST_FILE="+damaged).fail(nil, "snapshots"), damaged, "damaged")

	// key trust shows both fingerprints and the recipients; without --yes
	// and without a terminal it changes nothing.
	msg := op.run(nil, "key", "trust")
	if msg.code == 0 {
		t.Fatal("key trust without --yes and without a terminal succeeded")
	}
	mustContain(t, "key trust", msg.stdout, realFP, evilFP, opPub, attPub)
	mustContain(t, "key trust", msg.stderr, "--yes")
	op.fail(nil, "snapshots")

	// Accepting the change (here: the attacker's, to show it takes effect)
	// re-pins; the repository then opens silently.
	mustContain(t, "key trust --yes", op.ok(nil, "key", "trust", "--yes"), "pinned", evilFP, realFP)
	if got := op.ok(nil, "restore", "latest", "--source", "db"); got != evilData {
		t.Fatalf("restore after key trust gave %q", got)
	}
	op.ok(nil, "check")
	mustContain(t, "key trust again", op.ok(nil, "key", "trust"), "already trusted")
	// The pin moved: the real keys are now the strangers.
	trustFile, err := os.ReadFile(opID + ".trust")
	if err != nil || !strings.Contains(string(trustFile), evilFP) || strings.Contains(string(trustFile), realFP) {
		t.Fatalf("trust file after key trust: %v\n%s", err, trustFile)
	}
	if st, err := os.Stat(opID + ".trust"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("trust file mode: %v %v", st.Mode(), err)
	}
}
