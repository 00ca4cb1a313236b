package main_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/internal/synth"
)

// TestCLIKeyRotationRemovedOperator runs done-when 9 of the repository
// trust issue through the CLI: operator B, removed with `key remove`, kept
// every key B could decrypt while an operator; after `key rotate
// --reencrypt`, nothing in the repository opens with any of them, the old
// writer key is refused, every snapshot restores for A, another operator's
// machine refuses the new keys until `key trust`, and the audit log
// verifies across the rotation.
func TestCLIKeyRotationRemovedOperator(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	a := newCLI(t, repo)
	a.init()
	inputs := map[string][]byte{}
	for i := range 3 {
		in := synth.Bytes(uint64(70+i), 600<<10)
		b := a.without("COFFER_IDENTITY_FILE").backup(bytes.NewReader(in), "--source", "shop", "--stdin")
		inputs[b.Snapshot] = in
	}
	b, bFile := newOperator(t)
	c, cFile := newOperator(t)
	a.ok(nil, "key", "add", b.Recipient().String())
	a.ok(nil, "key", "add", c.Recipient().String())
	// C's machine pins the repository as it is before the rotation.
	cm := a.without("COFFER_WRITER_KEY_FILE").with("COFFER_IDENTITY_FILE=" + cFile)
	cm.ok(nil, "snapshots")
	cm.ok(nil, "audit", "verify")
	// B keeps what B's identity opens: the repository identity and the
	// writer key (with its metadata identity).
	kept := []age.Identity{b, keptIdentity(t, bFile, filepath.Join(repo, "keys", "repository.age"), "AGE-SECRET-KEY-"),
		keptIdentity(t, bFile, filepath.Join(repo, "keys", "writer.age"), "metadata-identity: ")}
	if opened := openedBy(t, repo, kept...); len(opened) < 5 {
		t.Fatalf("before the rotation B's kept keys open only %v: the test would prove nothing", opened)
	}
	out := a.ok(nil, "key", "remove", b.Recipient().String())
	mustContain(t, "key remove", out, "key rotate --reencrypt")

	newKey := filepath.Join(a.dir, "writer-g2.key")
	out = a.ok(nil, "key", "rotate", "--reencrypt", "--writer-key-out", newKey)
	mustContain(t, "key rotate", out, "generation 2", "new writer key fingerprint", "deleted the keys of generation(s) [1]")
	if opened := openedBy(t, repo, kept...); len(opened) > 0 {
		t.Fatalf("after key remove and key rotate --reencrypt, B's identity or kept keys open %v", opened)
	}
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new writer key file: %v %v", fi, err)
	}

	// The backup host with the old writer key is refused, saying why.
	host := a.without("COFFER_IDENTITY_FILE")
	mustContain(t, "backup with the old writer key", host.fail(strings.NewReader("x"), "backup", "--source", "shop", "--stdin"),
		"rotated", "coffer key export-writer")
	host = host.with("COFFER_WRITER_KEY_FILE=" + newKey)
	in := append(synth.Bytes(70, 600<<10), "one more row\n"...)
	nb := host.backup(bytes.NewReader(in), "--source", "shop", "--stdin")
	inputs[nb.Snapshot] = in
	if nb.ChunksNew >= nb.ChunksTotal {
		t.Fatalf("the backup after the rotation deduplicated nothing: %+v", nb)
	}

	// A restores every snapshot, before and after the rotation.
	a = a.with("COFFER_WRITER_KEY_FILE=" + newKey)
	for id, want := range inputs {
		if got := a.ok(nil, "restore", id); got != string(want) {
			t.Fatalf("snapshot %s restores to other bytes after the rotation", id)
		}
	}
	a.ok(nil, "check", "--read-data")
	mustContain(t, "audit verify by the rotating operator", a.ok(nil, "audit", "verify"), "rotation")

	// C's machine refuses the rotated keys until C trusts them.
	mustContain(t, "C after the rotation", cm.fail(nil, "snapshots"), "key trust")
	mustContain(t, "key trust", cm.ok(nil, "key", "trust", "--yes"), "pinned writer key fingerprint")
	cm.ok(nil, "snapshots")
	mustContain(t, "audit verify on C's machine", cm.ok(nil, "audit", "verify"), "rotation")
	// B's identity opens nothing any more.
	bm := cm.with("COFFER_IDENTITY_FILE="+bFile, "COFFER_TRUST_FILE="+filepath.Join(t.TempDir(), "b.trust"))
	mustContain(t, "restore by B", bm.fail(nil, "restore", nb.Snapshot), "none matches")
}

func newOperator(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "operator.txt")
	if err := os.WriteFile(f, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, f
}

// keptIdentity decrypts a key object with the age command, as a removed
// operator would have, and returns the identity on the line with prefix.
func keptIdentity(t *testing.T, identityFile, object, prefix string) age.Identity {
	t.Helper()
	out, err := exec.Command("age", "-d", "-i", identityFile, object).Output()
	if err != nil {
		t.Fatalf("age -d %s: %v", object, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, prefix); i >= 0 {
			text := line[i:]
			text = strings.TrimPrefix(text, "metadata-identity: ")
			id, err := age.ParseX25519Identity(strings.TrimSpace(text))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
	}
	t.Fatalf("%s holds no %q line", object, prefix)
	return nil
}

// openedBy returns the repository's files that any of ids decrypts, as
// age files or as the private parts inside them.
func openedBy(t *testing.T, repo string, ids ...age.Identity) []string {
	t.Helper()
	var opened []string
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, err := age.Decrypt(bytes.NewReader(b), ids...); err == nil {
			rel, _ := filepath.Rel(repo, path)
			opened = append(opened, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return opened
}
