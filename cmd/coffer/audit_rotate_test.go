package main_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/auditlog"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage/local"
)

// rekeyCLI gives c's repository a new repository key, as a key rotation
// does on storage, and points c's writer key file at it. With endorse it
// appends the rotation's record, endorsed by the old audit key. It returns
// the old and new audit keys (hex) and c set to the new writer key.
func rekeyCLI(t *testing.T, c *cli, root string, endorse bool) (oldKey, newKey string, next *cli) {
	t.Helper()
	f, err := os.Open(filepath.Join(c.dir, "operator.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	op := ids[0].(*age.X25519Identity)
	be, _ := local.Open(root, false)
	old := repository.AuditKeyOf(repotest.RepositoryIdentity(t, be, op))
	r, wk2, id := repotest.Rekey(t, be, op, cliWriterKey(t, c))
	pub := repository.AuditKeyOf(id).Public().(ed25519.PublicKey)
	if endorse {
		err := r.AppendAudit(context.Background(), &repository.AuditRecord{Event: "key-change", Actor: "alice", Host: "ops1", Outcome: "ok",
			Detail: repository.RotationDetail(old, pub, 2)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "writer.key"), wk2.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	oldPub := old.Public().(ed25519.PublicKey)
	return hex.EncodeToString(oldPub), hex.EncodeToString(pub), c.with("COFFER_WRITER_FINGERPRINT=" + wk2.Fingerprint())
}

// TestCLIAuditKeyRotation: a machine that pinned the audit key moves its
// pin to the new key after a rotation, on its next append or verify, only
// when the log holds the rotation's record endorsed by the pinned key.
func TestCLIAuditKeyRotation(t *testing.T) {
	cases := []struct {
		name    string
		endorse bool
		after   func(c *cli) result // what runs first with the new key
	}{
		{"endorsed, noticed by an append", true, func(c *cli) result {
			return c.run(strings.NewReader("row\n"), "backup", "--source", "shop", "--stdin")
		}},
		{"endorsed, noticed by verify", true, func(c *cli) result { return c.run(nil, "audit", "verify") }},
		{"no rotation record", false, func(c *cli) result { return c.run(nil, "audit", "verify") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "repo")
			c := newCLI(t, root)
			c.init()
			mustContain(t, "first audit verify", c.ok(nil, "audit", "verify"), "head advanced")
			oldKey, newKey, c2 := rekeyCLI(t, c, root, tc.endorse)

			r := tc.after(c2)
			st, err := auditlog.LoadState(filepath.Join(c.dir, "coffer-audit-heads.json"))
			if err != nil {
				t.Fatal(err)
			}
			var pin *auditlog.Pin
			for _, p := range st.Repositories {
				pin = p
			}
			if !tc.endorse {
				if r.code == 0 {
					t.Fatalf("audit verify accepted a new audit key without a rotation record:\n%s", r.stdout)
				}
				mustContain(t, "audit verify", r.stderr, "is now "+newKey[:16], "pinned "+oldKey[:16],
					"no endorsed rotation record", "the rotation's audit record is missing or not endorsed by the key you pinned")
				if pin.AuditKey != oldKey || pin.PreviousKeys != nil {
					t.Fatalf("the pin moved: %+v", pin)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			mustContain(t, "the first command with the new key", r.stderr, "was rotated from "+oldKey[:16], "to "+newKey[:16])
			if pin.AuditKey != newKey || !slices.Equal(pin.PreviousKeys, []string{oldKey}) {
				t.Fatalf("the pin did not move to the new key: %+v", pin)
			}
			out := c2.ok(nil, "audit", "verify")
			mustContain(t, "audit verify", out, "chain intact from the head you verified", "signed by the operators' audit key of their time", "after 1 rotation(s), each endorsed by the key before it")
		})
	}
}
