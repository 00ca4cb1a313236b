package main_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage/local"
)

// auditNames lists the audit records' files, oldest first.
func auditNames(t *testing.T, root string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, "audit", "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// removeNewest deletes the newest n audit records, as someone who can
// delete from storage would.
func removeNewest(t *testing.T, root string, n int) {
	t.Helper()
	names := auditNames(t, root)
	if len(names) < n {
		t.Fatalf("only %d audit records, cannot remove %d", len(names), n)
	}
	for _, name := range names[len(names)-n:] {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
}

// forgeRestore appends a "restore" record in an operator's name, built
// with the repository package and the writer key alone, as a backup host
// turned attacker would.
func forgeRestore(t *testing.T, c *cli, root string) {
	t.Helper()
	ctx := context.Background()
	be, _ := local.Open(root, false)
	w, err := repository.OpenWriter(ctx, be, cliWriterKey(t, c))
	if err != nil {
		t.Fatal(err)
	}
	err = w.AppendAudit(ctx, &repository.AuditRecord{Event: "restore", Actor: "alice", Host: "ops1", Outcome: "ok",
		Detail: map[string]string{"to": "/home/alice/dump.sql"}})
	if err != nil {
		t.Fatal(err)
	}
}

// cliWriterKey reads c's writer key file.
func cliWriterKey(t *testing.T, c *cli) *repository.WriterKey {
	t.Helper()
	kb, err := os.ReadFile(filepath.Join(c.dir, "writer.key"))
	if err != nil {
		t.Fatal(err)
	}
	wk, err := repository.ParseWriterKey(kb, "writer.key")
	if err != nil {
		t.Fatal(err)
	}
	return wk
}

// TestCLIAuditHostile: on an operator's machine that verified the log
// before, every way a backup host (or whoever can delete from storage) has
// of rewriting history makes `audit verify` fail, and an untouched log with
// records appended since passes.
func TestCLIAuditHostile(t *testing.T) {
	cases := []struct {
		name   string
		attack func(t *testing.T, c, w *cli, root string)
		want   []string // in verify's output; nil: verify passes
	}{
		{"untouched, with records appended since", func(t *testing.T, c, w *cli, root string) {
			w.backup(strings.NewReader("more\n"), "--source", "shop", "--stdin")
			c.ok(nil, "restore", "latest", "-o", filepath.Join(t.TempDir(), "out"))
			w.ok(nil, "forget", "--keep-last", "5")
		}, nil},
		{"newest record deleted", func(t *testing.T, c, w *cli, root string) {
			removeNewest(t, root, 1)
		}, []string{"the newest record when you verified", "is gone"}},
		{"newest record deleted after another backup", func(t *testing.T, c, w *cli, root string) {
			w.backup(strings.NewReader("more\n"), "--source", "shop", "--stdin")
			removeNewest(t, root, 1)
		}, []string{"has no backup record", "deleted"}},
		{"newest four deleted", func(t *testing.T, c, w *cli, root string) {
			w.backup(strings.NewReader("more\n"), "--source", "shop", "--stdin")
			w.backup(strings.NewReader("even more\n"), "--source", "shop", "--stdin")
			removeNewest(t, root, 4)
		}, []string{"is gone", "records were deleted"}},
		{"whole log wiped", func(t *testing.T, c, w *cli, root string) {
			removeNewest(t, root, len(auditNames(t, root)))
		}, []string{"is gone", "wiped"}},
		{"restore forged by a writer-key holder", func(t *testing.T, c, w *cli, root string) {
			forgeRestore(t, c, root)
		}, []string{"claims a restore by alice@ops1", "not signed by the operators' audit key"}},
		{"whole log wiped and a restore forged", func(t *testing.T, c, w *cli, root string) {
			removeNewest(t, root, len(auditNames(t, root)))
			forgeRestore(t, c, root)
		}, []string{"is gone"}},
		{"a restore this machine recorded deleted", func(t *testing.T, c, w *cli, root string) {
			c.ok(nil, "restore", "latest", "-o", filepath.Join(t.TempDir(), "out"))
			w.backup(strings.NewReader("more\n"), "--source", "other", "--stdin")
			names := auditNames(t, root)
			os.Remove(names[len(names)-2]) // the restore; the backup after it names it
			// Hide the broken link too: the backup host removes its own
			// record and snapshot as well.
			os.Remove(names[len(names)-1])
			for _, s := range w.snapshots("--source", "other") {
				os.Remove(filepath.Join(root, "snapshots", s.ID))
			}
		}, []string{"the restore record this machine wrote", "is gone"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "repo")
			c := newCLI(t, root)
			c.init()
			w := c.without("COFFER_IDENTITY_FILE")
			w.backup(strings.NewReader("row\n"), "--source", "shop", "--stdin")
			c.ok(nil, "restore", "latest", "-o", filepath.Join(t.TempDir(), "out"))
			first := c.ok(nil, "audit", "verify")
			mustContain(t, "first audit verify", first, "3 records, chain intact", "first verification", "head advanced")

			tc.attack(t, c, w, root)
			r := c.run(nil, "audit", "verify")
			if tc.want == nil {
				if r.code != 0 {
					t.Fatalf("audit verify of an untouched log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
				mustContain(t, "audit verify", r.stdout, "chain intact from the head you verified", "3 records), unchanged", "2 records since",
					"signed by the operators' audit key", "this machine wrote since are all present", "snapshot(s) name the audit head",
					"cannot prove", "before your first verification")
				mustContain(t, "second audit verify", c.ok(nil, "audit", "verify"), "0 records since")
				return
			}
			if r.code != 1 {
				t.Fatalf("audit verify after the attack: exit %d, want 1\n%s", r.code, r.stdout)
			}
			mustContain(t, "audit verify after the attack", r.stdout, tc.want...)
			// The head is not advanced past a tampered log: it fails again.
			if again := c.run(nil, "audit", "verify"); again.code != 1 {
				t.Fatalf("a second audit verify after the attack: exit %d\n%s", again.code, again.stdout)
			}
		})
	}
}
