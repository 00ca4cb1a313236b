package main_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needRoot skips a test that must create users, except in CI, which runs
// as root and must run it.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test creates users and runs programs as them: run it as root")
		}
		t.Skip("needs root, to create users")
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// localUser is another local user of the drill host.
type localUser struct {
	name     string
	uid, gid int
}

func newLocalUser(t *testing.T) localUser {
	t.Helper()
	name := "coffer-atk-" + randomHex(t, 4)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		exec.Command("pkill", "-KILL", "-u", name).Run()
		exec.Command("userdel", name).Run()
		exec.Command("groupdel", name).Run()
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	l := localUser{name: name}
	l.uid, _ = strconv.Atoi(u.Uid)
	l.gid, _ = strconv.Atoi(u.Gid)
	return l
}

// as runs a shell script as u, with env.
func (u localUser) sh(t *testing.T, script string, env ...string) {
	t.Helper()
	cmd := exec.Command("setpriv", "--reuid="+strconv.Itoa(u.uid), "--regid="+strconv.Itoa(u.gid), "--clear-groups", "--", "/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/"}, env...)
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u.name, script, err, out)
	}
}

// homeless runs coffer as c would, but with neither HOME nor
// XDG_STATE_HOME (cron, containers) and the system temporary directory.
func (c *cli) homeless(args ...string) result {
	c.t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "XDG_STATE_HOME" && k != "TMPDIR" {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cofferBin, args...)
	cmd.Env = append(env, c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// TestHostileDrillMarkers: a local user pre-creates the state directory
// that coffer used when HOME was unset (/tmp/coffer-drills), with markers
// naming a file of root's and real databases, one of them named like a
// scratch database. Neither drill --cleanup nor a drill, as root with
// HOME unset, may delete that file or drop those databases; nor may they
// when such markers reach coffer's own state directory as a symbolic
// link or a file of the other user's, which are ignored with a warning.
func TestHostileDrillMarkers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	suffix := randomHex(t, 3)
	attacker := newLocalUser(t)
	scratchURL := "postgres://postgres@127.0.0.1:5432/"

	canary := "/etc/important-file-copy-" + suffix
	if err := os.WriteFile(canary, []byte("root's precious file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(canary) })
	// Two real databases that are not scratch databases of a drill of
	// ours: one named like any other, one named like a scratch database.
	id := "20250101t000000_" + suffix + "_0"
	victims := []string{"coffer_victim_" + suffix, "coffer_drill_" + id}
	admin := postgres(t, "postgres")
	for _, db := range victims {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
		if _, err := postgres(t, db).Exec(ctx, "CREATE TABLE customers AS SELECT g AS id FROM generate_series(1, 100) g"); err != nil {
			t.Fatal(err)
		}
	}
	intact := func(when string) {
		t.Helper()
		if b, err := os.ReadFile(canary); err != nil || string(b) != "root's precious file\n" {
			t.Fatalf("%s: %s was deleted or changed: %v", when, canary, err)
		}
		for _, db := range victims {
			var n int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%s: database %s was dropped (%v)", when, db, err)
			}
		}
	}

	// The attacker's markers: one as an old coffer would have written it
	// for a killed drill, but naming the canary and a real database, and
	// one of exactly coffer's shape naming the database that looks like a
	// scratch database.
	dead := exec.Command("true")
	dead.Run()
	hostile := map[string]any{
		"id": "20250101t000000_" + suffix + "_1", "pid": dead.Process.Pid, "started": time.Now(),
		"dir": canary, "ephemeral": canary,
		"scratch": map[string]string{"engine": "postgres", "server": scratchURL, "database": victims[0]},
	}
	shaped := map[string]any{
		"id": id, "pid": dead.Process.Pid, "started": time.Now(), "dir": filepath.Join("/tmp", "coffer-drill-"+id),
		"scratch": map[string]string{"engine": "postgres", "server": scratchURL, "database": victims[1]},
	}
	planted := "/tmp/coffer-drills" // the old fallback when HOME was unset
	os.RemoveAll(planted)
	t.Cleanup(func() { os.RemoveAll(planted) })
	h, _ := json.Marshal(hostile)
	s, _ := json.Marshal(shaped)
	attacker.sh(t, `mkdir -m 0777 "$D" && printf %s "$H" > "$D/$HN.json" && printf %s "$S" > "$D/$SN.json" && chmod 0666 "$D"/*`,
		"D="+planted, "H="+string(h), "S="+string(s), "HN="+hostile["id"].(string), "SN="+id)

	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	// HOME unset: the drill refuses to pick a state directory itself.
	for _, args := range [][]string{
		{"drill", "--cleanup"},
		{"drill", "--cleanup", "--scratch", scratchURL},
		{"drill", "--source", "pg", "--scratch", scratchURL},
	} {
		r := c.homeless(args...)
		t.Logf("coffer %s: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
		if r.code == 0 || !strings.Contains(r.stderr, "--state-dir") || !strings.Contains(r.stderr, "HOME") {
			t.Errorf("coffer %s with HOME unset: exit %d, want a refusal asking for --state-dir:\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		intact("coffer " + strings.Join(args, " "))
	}
	// Pointed at the attacker's directory: refused, for its owner.
	r := c.homeless("drill", "--cleanup", "--state-dir", planted, "--scratch", scratchURL)
	t.Logf("drill --cleanup --state-dir %s: exit %d: %s", planted, r.code, strings.TrimSpace(r.stderr))
	if r.code == 0 || !strings.Contains(r.stderr, "owned by uid "+strconv.Itoa(attacker.uid)) {
		t.Errorf("drill --cleanup --state-dir %s (another user's): exit %d, want a refusal naming its owner:\n%s", planted, r.code, r.stderr)
	}
	intact("drill --cleanup --state-dir " + planted)

	// In coffer's own state directory: a symbolic link to the attacker's
	// marker, a marker that is the attacker's file, and a marker of ours
	// that names the canary.
	state := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(planted, id+".json"), filepath.Join(state, id+".json"))
	theirs := filepath.Join(state, "20250101t000000_"+suffix+"_2.json")
	shaped["id"] = "20250101t000000_" + suffix + "_2"
	b, _ := json.Marshal(shaped)
	os.WriteFile(theirs, b, 0o600)
	os.Chown(theirs, attacker.uid, attacker.gid)
	ours := filepath.Join(state, hostile["id"].(string)+".json")
	os.WriteFile(ours, h, 0o600)
	r = c.homeless("drill", "--cleanup", "--state-dir", state, "--scratch", scratchURL)
	t.Logf("drill --cleanup --state-dir (ours): exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Errorf("drill --cleanup in our own state directory: exit %d", r.code)
	}
	for _, want := range []string{id + ".json ignored: it is a symbolic link", filepath.Base(theirs) + " ignored: it is owned by uid " + strconv.Itoa(attacker.uid),
		filepath.Base(ours) + " ignored: its work directory"} {
		if !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, want) {
			t.Errorf("no warning %q in:\n%s", want, r.stderr)
		}
	}
	intact("drill --cleanup in our state directory")
	for _, p := range []string{filepath.Join(planted, id+".json"), filepath.Join(planted, hostile["id"].(string)+".json")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the attacker's marker %s was removed (coffer must not touch it): %v", p, err)
		}
	}
}
