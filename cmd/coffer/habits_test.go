package main_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCLIHabits: the verbs and flags of restic and pgBackRest point to
// coffer's, `version` exists, and `dump` restores to standard output.
func TestCLIHabits(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"info"}, []string{`unknown command "info"`, "snapshots", "stats"}},
		{[]string{"expire"}, []string{"forget"}},
		{[]string{"stanza-create"}, []string{"init"}},
		{[]string{"archive-push", "x"}, []string{"wal-push"}},
		{[]string{"archive-get", "x", "y"}, []string{"wal-fetch"}},
		{[]string{"restore", "latest", "--target", "/tmp/x"}, []string{"no --target", "--output FILE", "--to URL", "--pgdata DIR"}},
		{[]string{"backup", "--stdin-filename", "db.dump"}, []string{"--source NAME"}},
		{[]string{"snapshots", "--bogus"}, []string{"unknown flag: --bogus", "coffer snapshots --help"}},
	} {
		out := c.fail(nil, tc.args...)
		mustContain(t, strings.Join(tc.args, " "), out, tc.want...)
		if strings.Contains(out, `\x09`) {
			t.Errorf("%v: escaped tab in %q", tc.args, out)
		}
	}
	mustContain(t, "coffer version", c.ok(nil, "version"), "coffer 0.1.0", runtime.Version())
	var v map[string]string
	if err := json.Unmarshal([]byte(c.ok(nil, "version", "--json")), &v); err != nil || v["version"] != "0.1.0" || v["go"] == "" {
		t.Fatalf("version --json: %v %v", v, err)
	}

	c.init()
	in := bytes.Repeat([]byte("a synthetic stream for dump\n"), 5000)
	c.backup(bytes.NewReader(in), "--source", "s", "--stdin")
	if got := c.ok(nil, "dump", "latest"); got != string(in) {
		t.Fatalf("coffer dump latest wrote %d bytes, want %d", len(got), len(in))
	}
}
