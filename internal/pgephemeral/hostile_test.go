package pgephemeral

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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

// localUser is another local user of the drill host.
type localUser struct {
	name     string
	uid, gid int
}

// newLocalUser creates a system user for the test, removed at its end.
func newLocalUser(t *testing.T, prefix string) localUser {
	t.Helper()
	suffix, _ := randomHex(4)
	name := prefix + suffix
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	l := localUser{name: name}
	l.uid, _ = strconv.Atoi(u.Uid)
	l.gid, _ = strconv.Atoi(u.Gid)
	t.Cleanup(func() {
		killUser(context.Background(), uint32(l.uid))
		exec.Command("userdel", name).Run()
		exec.Command("groupdel", name).Run()
	})
	return l
}

// as runs argv as the user uid:gid, without supplementary groups, with a
// bare environment plus env; it returns the combined output.
func as(uid, gid int, env []string, argv ...string) (string, error) {
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--"}, argv...)...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/", "LC_ALL=C", "PGCONNECT_TIMEOUT=5"}, env...)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestHostileEphemeralServer attacks a running ephemeral server as another
// local user: no TCP listener to reach, no way into the socket's
// directory, no connection without the password; and the server runs as a
// throwaway user that cannot read root's identity file, and is gone with
// its directory after Stop.
func TestHostileEphemeralServer(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	p := parent(t)
	secrets := t.TempDir()
	os.Chmod(secrets, 0o755) // the file's own mode is what protects it
	identity := filepath.Join(secrets, "identity.txt")
	const canary = "AGE-SECRET-KEY-1HOSTILETESTCANARY"
	if err := os.WriteFile(identity, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COFFER_IDENTITY_FILE", identity)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-secret")
	t.Setenv("PGPASSWORD", "canary-pgpassword")

	s := start(t, ctx, Options{Dir: p, BinDir: binDir(t)})
	gone := snapshot(t, s)
	attacker := newLocalUser(t, "coffer-atk-")
	port := strconv.Itoa(s.Port)

	// The server runs as its throwaway user: not root, not postgres.
	uid, err := procUID(s.pid())
	if err != nil {
		t.Fatal(err)
	}
	owner, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		t.Fatal(err)
	}
	if uid == 0 || owner.Username == "postgres" || owner.Username != s.User || !userPattern.MatchString(owner.Username) {
		t.Fatalf("the postmaster runs as %s (uid %d), want the throwaway user %s", owner.Username, uid, s.User)
	}
	t.Logf("postmaster %d runs as %s (uid %d)", s.pid(), owner.Username, uid)

	// No TCP listener: ss lists none for any of the server's processes.
	out, err := exec.Command("ss", "-ltnpH").CombinedOutput()
	if err != nil {
		t.Fatalf("ss -ltnp: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, pid := range userProcesses(uid) {
			if strings.Contains(line, "pid="+strconv.Itoa(pid)+",") {
				t.Errorf("the server listens on TCP: %s", line)
			}
		}
	}
	if listening(s.Port) {
		t.Errorf("something accepts TCP connections on 127.0.0.1:%d", s.Port)
	}

	// The other user: over TCP, through the socket (even with the
	// password), and by reading the directory.
	attacks := []struct {
		name string
		env  []string
		argv []string
		want string // in the failure
	}{
		{"psql over TCP", nil, []string{"psql", "-w", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"}, "refused"},
		{"psql over ::1", nil, []string{"psql", "-w", "-h", "::1", "-p", port, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"}, ""},
		{"psql through the socket", nil, []string{"psql", "-w", "-h", s.Dir, "-p", port, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"}, "Permission denied"},
		{"psql through the socket with the password", []string{"PGPASSWORD=" + s.Password}, []string{"psql", "-w", "-h", s.Dir, "-p", port, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"}, "Permission denied"},
		{"list the directory", nil, []string{"ls", "-la", s.Dir}, "Permission denied"},
		{"read the log", nil, []string{"cat", filepath.Join(s.Dir, logName)}, "Permission denied"},
	}
	for _, a := range attacks {
		out, err := as(attacker.uid, attacker.gid, a.env, a.argv...)
		t.Logf("%s as %s: %v: %s", a.name, attacker.name, err, strings.TrimSpace(out))
		if err == nil || !strings.Contains(out, a.want) {
			t.Errorf("%s as another user: %v, want a failure mentioning %q:\n%s", a.name, err, a.want, out)
		}
	}

	// Through the socket (root can enter the directory): a wrong
	// password and no password fail, the right one works.
	for _, pw := range []string{"wrong", ""} {
		cfg, _ := s.ConnConfig("")
		cfg.Password = pw
		if pc, err := pgx.ConnectConfig(ctx, cfg); err == nil {
			pc.Close(ctx)
			t.Errorf("the server accepted password %q", pw)
		} else if !isAuthFailure(err) && !strings.Contains(err.Error(), "password") {
			t.Errorf("password %q: %v, want an authentication failure", pw, err)
		}
	}
	if out, err := exec.Command("psql", "-w", "-X", "-c", "SELECT 1", socketURL(s, "wrong")).CombinedOutput(); err == nil || !strings.Contains(string(out), "password authentication failed") {
		t.Errorf("psql with a wrong password: %v\n%s", err, out)
	}
	cmd := exec.Command("psql", "-w", "-X", "-At", "-d", "postgres", "-c", "SELECT current_user")
	cmd.Env = s.Env()
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "postgres" {
		t.Errorf("psql with Server.Env: %v\n%s", err, out)
	}

	// The throwaway user cannot read root's identity file, nor root's home.
	for _, argv := range [][]string{{"cat", identity}, {"ls", "/root"}} {
		out, err := as(int(uid), int(s.acct.gid), nil, argv...)
		if err == nil || strings.Contains(out, canary) {
			t.Errorf("%v as the server's user: %v\n%s", argv, err, out)
		}
	}

	// The server's environment holds none of coffer's secrets.
	env, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid()) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range strings.Split(string(env), "\x00") {
		if strings.HasPrefix(v, "COFFER_") || strings.HasPrefix(v, "AWS_") || strings.HasPrefix(v, "PGPASSWORD") || strings.Contains(v, s.Password) {
			t.Errorf("the server's environment holds %s", v)
		}
	}

	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	gone.check(t)
}

// TestStartAsOrdinaryUser runs Start as a user that is not root (the
// test binary, copied where that user can run it): the server then runs
// as that user, on a socket only.
func TestStartAsOrdinaryUser(t *testing.T) {
	needRoot(t)
	u := newLocalUser(t, "coffer-pgt-")
	bin, err := os.MkdirTemp("", "coffer-pgtest-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bin)
	os.Chmod(bin, 0o755)
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "pgephemeral.test"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	work := parent(t)
	own, err := os.MkdirTemp(work, "own-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(own)
	os.Chown(own, u.uid, u.gid)
	out, err := as(u.uid, u.gid, []string{helperEnv + "=" + own, helperMode + "=self", "COFFER_PGEPHEMERAL_BIN=" + binDir(t)},
		filepath.Join(bin, "pgephemeral.test"), "-test.run=^TestHelperServer$", "-test.v")
	t.Logf("as %s:\n%s", u.name, out)
	if err != nil || !strings.Contains(out, "SELF OK") {
		t.Fatalf("Start as an ordinary user: %v", err)
	}
	want := "SELF user=" + u.name + " postmaster-uid=" + strconv.Itoa(u.uid) + " my-uid=" + strconv.Itoa(u.uid) + ` listen=""`
	if !strings.Contains(out, want) {
		t.Errorf("want %q in the helper's output", want)
	}
	if ents, _ := os.ReadDir(own); len(ents) != 0 {
		t.Errorf("left in %s: %v", own, ents)
	}
}
