package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestKeyTrustTerminal: on a terminal, key trust asks, and pins only on
// "yes". The repository is replaced in place by a new one (a legitimate
// re-creation), which the operator's pin refuses until then.
func TestKeyTrustTerminal(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, repo)
	oldFP := fingerprint(t, c.ok(nil, "init"))
	if err := os.RemoveAll(repo); err != nil {
		t.Fatal(err)
	}
	// The new repository is made elsewhere (its own trust file), for the
	// same operator.
	pub, err := exec.Command("age-keygen", "-y", filepath.Join(c.dir, "operator.txt")).Output()
	if err != nil {
		t.Fatal(err)
	}
	admin := newCLI(t, repo).without("COFFER_IDENTITY_FILE")
	newFP := fingerprint(t, admin.ok(nil, "init", "--recipient", strings.TrimSpace(string(pub))))
	op := c.without("COFFER_WRITER_KEY_FILE")
	mustContain(t, "snapshots of the re-created repository", op.fail(nil, "snapshots"), oldFP, newFP)

	for _, tc := range []struct {
		answer string
		pinned bool
	}{{"no", false}, {"", false}, {"yes", true}} {
		r := op.runScript(tc.answer+"\n", "key", "trust")
		mustContain(t, "key trust on a terminal", r.stdout, oldFP, newFP, "Type yes")
		if got := r.code == 0; got != tc.pinned {
			t.Fatalf("key trust answered %q: exit %d, want pinned=%v\n%s", tc.answer, r.code, tc.pinned, r.stdout)
		}
		if r := op.run(nil, "snapshots"); (r.code == 0) != tc.pinned {
			t.Fatalf("snapshots after answering %q: exit %d\n%s", tc.answer, r.code, r.stderr)
		}
	}
}

// runScript runs coffer on a pseudo-terminal made by script(1), typing
// input; the terminal's output (stdout and stderr) is in stdout.
func (c *cli) runScript(input string, args ...string) result {
	c.t.Helper()
	quoted := []string{shellQuote(cofferBin)}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-q", "-e", "-c", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("script: %v", err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: string(out), code: code}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
