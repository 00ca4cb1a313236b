package main_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	_ "modernc.org/sqlite"
)

// rawControl returns what in s a terminal would interpret rather than
// show: C0 controls other than newline and tab, DEL, C1 controls, bidi
// overrides, embeddings, isolates and marks, and bytes that are not UTF-8.
func rawControl(s string) []string {
	var bad []string
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1,
			r < 0x20 && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r < 0xa0,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			lo, hi := max(0, i-20), min(len(s), i+20)
			bad = append(bad, fmt.Sprintf("%U in %q", r, s[lo:hi]))
		}
		i += n
	}
	return bad
}

func noRawControl(t *testing.T, what string, r result) {
	t.Helper()
	for name, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if bad := rawControl(s); len(bad) > 0 {
			t.Errorf("%s: %s reaches the terminal raw: %s", what, name, strings.Join(bad, "; "))
		}
	}
}

// TestHostileCLITerminalNames: names from a snapshot (tables, columns,
// source, host, tags) carry terminal escapes (set the window title, clear
// the screen, a C1 CSI) and a bidi override; no command prints them raw.
func TestHostileCLITerminalNames(t *testing.T) {
	const (
		evilTable  = "t\x1b]0;pwned\x07\x1b[2J"
		evilTable2 = "c1\u009b2Jx\u202etxt.exe"
		evilColumn = "amount\u202e\u2066"
		evilName   = "shop\x1b[31m\u202e"
	)
	dir := t.TempDir()
	src := filepath.Join(dir, "evil.db")
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	for _, s := range []string{
		`CREATE TABLE ` + q(evilTable) + ` (id INTEGER PRIMARY KEY, ` + q(evilColumn) + ` INTEGER)`,
		`INSERT INTO ` + q(evilTable) + ` VALUES (1, 10), (2, 20)`,
		`CREATE TABLE ` + q(evilTable2) + ` (x TEXT)`,
		`INSERT INTO ` + q(evilTable2) + ` VALUES ('Müller 東京')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	b := c.backup(nil, "--source", evilName, "--sqlite", src, "--host", "db\x1b]2;x\x07", "--tag", "nightly\x9b1m", "--tag", "\u202eevil")

	target := filepath.Join(dir, "restored.db")
	for _, args := range [][]string{
		{"ls", b.Snapshot},
		{"snapshots"},
		{"snapshots", "--source", evilName},
		{"restore", b.Snapshot, "--to", "sqlite:" + target},
		{"stats"},
		{"audit"},
		{"check"},
		{"forget", "--keep-last", "1", "--dry-run"},
	} {
		r := c.run(nil, args...)
		if r.code != 0 {
			t.Fatalf("coffer %q: exit %d\n%s", args, r.code, r.stderr)
		}
		noRawControl(t, fmt.Sprint(args), r)
		if args[0] == "ls" || args[0] == "restore" {
			mustContain(t, fmt.Sprint(args), r.stdout, `t\x1b]0;pwned\x07\x1b[2J`, `c1\u009b2Jx\u202etxt.exe`)
		}
	}
	// Errors carry names too: a source that has no snapshot, a target
	// that is not empty.
	for _, args := range [][]string{
		{"restore", "latest", "--source", evilName + "\x1b[0m", "--output", filepath.Join(dir, "x")},
		{"restore", b.Snapshot, "--to", "sqlite:" + target},
		{"ls", "latest", "--source", "\x1b]0;x\x07"},
	} {
		r := c.run(nil, args...)
		if r.code == 0 {
			t.Fatalf("coffer %q succeeded", args)
		}
		noRawControl(t, fmt.Sprint(args), r)
	}
	// JSON stays exact: the names decode to what the snapshot holds.
	mustContain(t, "ls --json", c.ok(nil, "ls", b.Snapshot, "--json"), `"t\u001b]0;pwned\u0007\u001b[2J"`)
	// ... and shows nothing raw: C1 controls and bidi overrides, which
	// encoding/json leaves as they are, are escaped too.
	for _, args := range [][]string{{"ls", b.Snapshot, "--json"}, {"snapshots", "--json"}, {"audit", "--json"}, {"ls", "latest", "--source", evilName + "\u009b", "--json"}} {
		noRawControl(t, fmt.Sprint(args), c.run(nil, args...))
	}
	rows := c.snapshots()
	if len(rows) != 1 || rows[0].Source != evilName {
		t.Fatalf("snapshots --json: %+v", rows)
	}
}

// TestHostileCLIExecEnv: the user's command (backup --exec) gets coffer's
// environment without coffer's secrets: no identity or key path, no
// storage credentials, neither their names nor their values.
func TestHostileCLIExecEnv(t *testing.T) {
	secret := make([]byte, 16)
	rand.Read(secret)
	awsSecret := "aws-" + hex.EncodeToString(secret)
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"), "AWS_SECRET_ACCESS_KEY="+awsSecret, "AWS_ACCESS_KEY_ID=AKIAEXAMPLE1234")
	c.init()
	b := c.backup(nil, "--source", "env", "--exec", "env; echo END-OF-ENV")
	out := c.ok(nil, "restore", b.Snapshot)
	if !strings.Contains(out, "END-OF-ENV") || !strings.Contains(out, "PATH=") {
		t.Fatalf("the command's output was not restored:\n%s", out)
	}
	forbidden := []string{"COFFER_", "AWS_", awsSecret, "AKIAEXAMPLE1234",
		filepath.Join(c.dir, "operator.txt"), filepath.Join(c.dir, "writer.key"), c.dir}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		forbidden = append(forbidden, k+"=", v)
	}
	for _, f := range forbidden {
		if strings.Contains(out, f) {
			t.Errorf("the command's environment holds %q", f)
		}
	}
	// What is not coffer's still reaches it: the user's own variables.
	home, _ := os.UserHomeDir()
	if home != "" && !strings.Contains(out, "HOME=") {
		t.Error("the command lost HOME")
	}
}
