package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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
	var v map[string]any
	if err := json.Unmarshal([]byte(c.ok(nil, "version", "--json")), &v); err != nil || v["version"] != "0.1.0" || v["go"] == "" {
		t.Fatalf("version --json: %v %v", v, err)
	}

	c.init()
	in := bytes.Repeat([]byte("a synthetic stream for dump\n"), 5000)
	c.backup(bytes.NewReader(in), "--source", "s", "--stdin")
	if got := c.ok(nil, "dump", "latest"); got != string(in) {
		t.Fatalf("coffer dump latest wrote %d bytes, want %d", len(got), len(in))
	}
	// --output /dev/null verifies and keeps nothing; a missing directory is
	// named as such.
	mustContain(t, "restore --output /dev/null", c.run(nil, "restore", "latest", "--output", "/dev/null").stderr, "to /dev/null")
	missing := filepath.Join(t.TempDir(), "no", "such")
	mustContain(t, "restore into a missing directory", c.fail(nil, "restore", "latest", "--output", filepath.Join(missing, "x.dump")), "the directory "+missing+" of --output", "does not exist")
	// stats: singular for one, and the two savings apart.
	st := c.ok(nil, "stats")
	mustContain(t, "coffer stats", st, "1 snapshot holding", "in 1 pack,", "deduplication 1.0×, compression ")
	for _, bad := range []string{"1 snapshots", "1 packs", " 0.0×"} {
		if strings.Contains(st, bad) {
			t.Errorf("coffer stats says %q:\n%s", bad, st)
		}
	}
	var sj struct {
		Dedup       float64 `json:"dedup_factor"`
		Compression float64 `json:"compression_factor"`
	}
	if err := json.Unmarshal([]byte(c.ok(nil, "stats", "--json")), &sj); err != nil || sj.Dedup != 1 || sj.Compression < 10 {
		t.Fatalf("stats --json: %+v %v", sj, err)
	}
}

// TestCLISnapshotsFilters: snapshots --source, --host, --tag and --latest
// pick as restic's do.
func TestCLISnapshotsFilters(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	for i, b := range []struct{ source, host, tags string }{
		{"shop", "db1", "nightly"}, {"shop", "db1", "nightly,monthly"}, {"shop", "db2", "nightly"},
		{"crm", "db1", "weekly"}, {"shop", "db1", "nightly"},
	} {
		args := []string{"--source", b.source, "--stdin", "--host", b.host}
		for _, tag := range strings.Split(b.tags, ",") {
			args = append(args, "--tag", tag)
		}
		c.backup(strings.NewReader(strings.Repeat("row\n", 100+i)), args...)
	}
	count := func(args ...string) int { return len(c.snapshots(args...)) }
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 5},
		{[]string{"--source", "shop"}, 4},
		{[]string{"--host", "db2"}, 1},
		{[]string{"--source", "shop", "--host", "db1"}, 3},
		{[]string{"--tag", "monthly"}, 1},
		{[]string{"--tag", "nightly,monthly"}, 1},
		{[]string{"--tag", "monthly", "--tag", "weekly"}, 2},
		{[]string{"--latest", "1"}, 3}, // shop@db1, shop@db2, crm@db1
		{[]string{"--latest", "2", "--source", "shop"}, 3},
	} {
		if got := count(tc.args...); got != tc.want {
			t.Errorf("snapshots %v: %d snapshots, want %d", tc.args, got, tc.want)
		}
	}
	rows := c.snapshots("--latest", "1", "--source", "shop", "--host", "db1")
	if len(rows) != 1 || rows[0].Size != 4*104 {
		t.Fatalf("--latest 1 did not give the newest snapshot: %+v", rows)
	}
	mustContain(t, "--latest -1", c.fail(nil, "snapshots", "--latest", "-1"), "positive")
}

// TestCLIRestoreNamesLatest: restore latest says which snapshot it took,
// and a snapshot id of another source than --source is refused.
func TestCLIRestoreNamesLatest(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	shop := c.backup(strings.NewReader("shop rows\n"), "--source", "shop", "--stdin")
	c.backup(strings.NewReader("crm rows\n"), "--source", "crm", "--stdin")
	r := c.run(nil, "restore", "latest", "--output", "-")
	if r.code != 0 || r.stdout != "crm rows\n" {
		t.Fatalf("restore latest: %d %q %s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "restore latest", r.stderr, "latest is snapshot", "of source crm")
	mustContain(t, "restore ID --source other", c.fail(nil, "restore", shop.Snapshot[:8], "--source", "crm", "--output", "-"),
		`is of source "shop", not "crm"`)
}

// TestCLIConfigCheckOffline: --offline checks a config on a workstation
// without its secrets; without it, a missing secret is named with its line.
func TestCLIConfigCheckOffline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "coffer.yaml")
	yml := "repository:\n  url: s3://bucket/coffer\n  writer_key_file: /nonexistent/writer.key\n  access_key_id_env: NO_SUCH_VAR_COFFER\n  secret_access_key_file: /nonexistent/s3-secret\n" +
		"sources:\n  - name: shop\n    postgres: 'host=db1 dbname=shop user=backup'\n    schedule: \"@daily\"\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, filepath.Join(dir, "repo"))
	mustContain(t, "config check --offline", c.ok(nil, "config", "check", "--offline", path), "is valid", "--offline")
	mustContain(t, "config check", c.fail(nil, "config", "check", path),
		path+":3:20: repository.writer_key_file", path+":4:22: repository.access_key_id", "NO_SUCH_VAR_COFFER", path+":5:27: repository.secret_access_key")
}

// TestCLIInterrupted: Ctrl-C (SIGINT) during a backup says that no
// snapshot was written, not "context canceled", and exits 130; a backup
// of a terminal is refused before it reads anything.
func TestCLIInterrupted(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, nil, "backup", "--source", "slow", "--exec", "head -c 3000000 /dev/urandom; sleep 30")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted backup: %v\n%s", err, stderr.String())
	}
	mustContain(t, "interrupted backup", stderr.String(), "interrupted: no snapshot was written")
	if strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("the message says %q", stderr.String())
	}
	if n := len(c.snapshots()); n != 0 {
		t.Fatalf("%d snapshots after an interrupted backup", n)
	}

	r := c.runScript("typed by hand\n", "backup", "--source", "tty", "--stdin")
	if r.code == 0 {
		t.Fatalf("a backup of a terminal succeeded:\n%s", r.stdout)
	}
	mustContain(t, "backup --stdin on a terminal", r.stdout, "standard input is a terminal", "pg_dump -Fc shop | coffer backup")
}
