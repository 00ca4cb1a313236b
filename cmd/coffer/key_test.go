package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func TestCLIKeyChange(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	b := c.backup(strings.NewReader("customer row\n"), "--source", "shop", "--stdin")
	second, _ := age.GenerateX25519Identity()
	secondFile := filepath.Join(t.TempDir(), "second.txt")
	os.WriteFile(secondFile, []byte(second.String()+"\n"), 0o600)
	other := c.with("COFFER_IDENTITY_FILE=" + secondFile)

	other.fail(nil, "restore", b.Snapshot)
	c.ok(nil, "key", "add", second.Recipient().String())
	if got := other.ok(nil, "restore", b.Snapshot); got != "customer row\n" {
		t.Fatalf("the added operator restored %q", got)
	}
	first := strings.TrimSpace(c.ok(nil, "key", "list"))
	first = strings.Split(first, "\n")[0]
	other.ok(nil, "key", "remove", first)
	mustContain(t, "restore by the removed operator", c.fail(nil, "restore", b.Snapshot), "keys/repository.age")
	mustContain(t, "removing the last operator", other.fail(nil, "key", "remove", second.Recipient().String()), "only operator")
	mustContain(t, "audit", other.ok(nil, "audit"), "key-change")
	other.ok(nil, "audit", "verify")
	c.without("COFFER_IDENTITY_FILE").ok(nil, "backup", "--source", "shop", "--stdin")
}
