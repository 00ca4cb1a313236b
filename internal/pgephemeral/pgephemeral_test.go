package pgephemeral

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	helperEnv  = "COFFER_PGEPHEMERAL_HELPER_DIR"
	helperMode = "COFFER_PGEPHEMERAL_HELPER_MODE"
)

// binDir returns the real PostgreSQL binaries; without them the tests
// fail with the install hint.
func binDir(t *testing.T) string {
	t.Helper()
	dir, err := Available()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// parent is a directory for servers that a throwaway user can reach when
// the tests run as root (t.TempDir is 0700). At the end it must be empty:
// no server may leave anything behind.
func parent(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "coffer-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			t.Errorf("left behind in %s: %s", dir, e.Name())
			Remove(context.Background(), filepath.Join(dir, e.Name()))
		}
		os.RemoveAll(dir)
	})
	return dir
}

func start(t *testing.T, ctx context.Context, opts Options) *Server {
	t.Helper()
	t0 := time.Now()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v (%s, user %s)", time.Since(t0).Round(time.Millisecond), s.Dir, s.User)
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func connect(t *testing.T, ctx context.Context, s *Server) *pgx.Conn {
	t.Helper()
	cfg, err := s.ConnConfig("")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func TestAvailable(t *testing.T) {
	dir := binDir(t)
	for _, tool := range tools {
		if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
			t.Errorf("Available() = %s, without %s: %v", dir, tool, err)
		}
	}
	t.Logf("PostgreSQL binaries in %s", dir)
}

func TestStartStop(t *testing.T) {
	ctx := context.Background()
	var created string
	s := start(t, ctx, Options{Dir: parent(t), BinDir: binDir(t), Created: func(dir string) error {
		created = dir
		return nil
	}})
	if created != s.Dir {
		t.Errorf("Created was called with %q, want %q", created, s.Dir)
	}
	want := fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d", s.Dir, s.Port)
	if s.DSN != want {
		t.Errorf("DSN = %q, want %q", s.DSN, want)
	}
	if strings.Contains(s.DSN, s.Password) || len(s.Password) < 32 {
		t.Errorf("password %d characters long, or in the DSN %s", len(s.Password), s.DSN)
	}
	fi, err := os.Stat(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("server directory mode %v, want 0700", perm)
	}
	hba, _ := os.ReadFile(filepath.Join(s.Dir, "data", "pg_hba.conf"))
	var rules []string
	for _, l := range strings.Split(string(hba), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, strings.Join(strings.Fields(l), " "))
		}
	}
	if strings.Join(rules, "\n") != "local all all scram-sha-256" {
		t.Errorf("pg_hba.conf rules %q, want only local all all scram-sha-256", rules)
	}

	pc := connect(t, ctx, s)
	for _, q := range []string{
		"CREATE TABLE customers (id int PRIMARY KEY, name text)",
		"INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 1000) g",
	} {
		if _, err := pc.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	var fsync, listen, enc string
	if err := pc.QueryRow(ctx, "SELECT (SELECT count(*) FROM customers), current_setting('fsync'), current_setting('listen_addresses'), current_setting('password_encryption')").Scan(&n, &fsync, &listen, &enc); err != nil {
		t.Fatal(err)
	}
	pc.Close(ctx)
	if n != 1000 || fsync != "off" || listen != "" || enc != "scram-sha-256" {
		t.Errorf("rows %d, fsync %s, listen_addresses %q, password_encryption %s; want 1000, off, '', scram-sha-256", n, fsync, listen, enc)
	}

	gone := snapshot(t, s)
	t0 := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(t0).Round(time.Millisecond))
	gone.check(t)
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestTwoServers(t *testing.T) {
	ctx := context.Background()
	opts := Options{Dir: parent(t), BinDir: binDir(t)}
	servers := make([]*Server, 2)
	errs := make(chan error, len(servers))
	for i := range servers {
		go func() {
			t0 := time.Now()
			var err error
			servers[i], err = Start(ctx, opts)
			if err == nil {
				t.Logf("server %d: Start took %v (%s)", i, time.Since(t0).Round(time.Millisecond), servers[i].Dir)
			}
			errs <- err
		}()
	}
	for range servers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, s := range servers {
		if s != nil {
			t.Cleanup(func() { s.Stop(ctx) })
		}
	}
	if t.Failed() {
		return
	}
	a, b := servers[0], servers[1]
	if a.Dir == b.Dir || a.Password == b.Password || (os.Geteuid() == 0 && a.User == b.User) {
		t.Fatalf("servers share a directory (%s), a password or a user (%s)", a.Dir, a.User)
	}
	for i, s := range servers {
		pc := connect(t, ctx, s)
		if _, err := pc.Exec(ctx, fmt.Sprintf("CREATE TABLE only_on_%d (x int)", i)); err != nil {
			t.Fatal(err)
		}
		pc.Close(ctx)
	}
	for i, s := range servers {
		pc := connect(t, ctx, s)
		rows, _ := pc.Query(ctx, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'only_on_%' ORDER BY 1")
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		pc.Close(ctx)
		if err != nil || len(tables) != 1 || tables[0] != fmt.Sprintf("only_on_%d", i) {
			t.Errorf("server %d has tables %v (%v), want only its own", i, tables, err)
		}
	}
	// One's password does not open the other.
	cfg, _ := a.ConnConfig("")
	cfg.Password = b.Password
	if pc, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		pc.Close(ctx)
		t.Error("server 0 accepted server 1's password")
	}
	for _, s := range servers {
		gone := snapshot(t, s)
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
		gone.check(t)
	}
}

// ownerKilled starts a server from a child process and kills the child
// with SIGKILL (as a drill killed mid-restore). The server dies with it
// (parent-death signal); its directory and throwaway user are left.
func ownerKilled(t *testing.T) leftovers {
	t.Helper()
	bin := binDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+parent(t), "COFFER_PGEPHEMERAL_BIN="+bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var l leftovers
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "SERVER %d %d %s %s", &l.pid, &l.port, &l.user, &l.dir); err == nil {
			break
		}
		t.Logf("helper: %s", sc.Text())
	}
	if l.dir == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the helper process started no server")
	}
	l.dataDir = filepath.Join(l.dir, "data")
	if os.Geteuid() == 0 {
		a := lookupThrowaway(t, l.user)
		if a == nil {
			t.Fatalf("the throwaway user %s of a running server is not in /etc/passwd", l.user)
		}
		l.uid = a.uid
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(l.pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(l.pid) {
		t.Errorf("the postmaster %d outlived its owner", l.pid)
	}
	if _, err := os.Stat(l.dir); err != nil {
		// Only another test process's drill cleanup may have removed it.
		t.Logf("the server's directory is gone already (swept by another process?): %v", err)
	}
	return l
}

// TestRemoveAfterOwnerKilled cleans up after a killed owner with Remove,
// as drill --cleanup does with the directory in its marker.
func TestRemoveAfterOwnerKilled(t *testing.T) {
	l := ownerKilled(t)
	t0 := time.Now()
	if err := Remove(context.Background(), l.dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("Remove took %v", time.Since(t0).Round(time.Millisecond))
	l.check(t)
	if err := Remove(context.Background(), l.dir); err != nil {
		t.Errorf("Remove again: %v", err)
	}
}

// TestSweepAfterOwnerKilled cleans up after a killed owner whose marker
// is lost: Sweep finds the throwaway user in /etc/passwd.
func TestSweepAfterOwnerKilled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root has throwaway users")
	}
	ctx := context.Background()
	running := start(t, ctx, Options{Dir: parent(t), BinDir: binDir(t)}) // ours: Sweep must leave it
	l := ownerKilled(t)
	swept, err := Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range swept {
		found = found || s.User == l.user && s.Dir == l.dir
		if s.User == running.User {
			t.Errorf("Sweep removed the user %s of a running server", s.User)
		}
	}
	if !found {
		// Another test process's drill cleanup (go test ./... runs
		// packages in parallel) may have swept it first: then it is gone.
		if _, err := user.Lookup(l.user); err == nil {
			t.Errorf("Sweep = %+v, want %s and %s among them", swept, l.user, l.dir)
		} else {
			t.Logf("%s was swept by another process", l.user)
		}
	}
	l.check(t)
	pc := connect(t, ctx, running)
	pc.Close(ctx)
}

// TestHelperServer is the owner process of ownerKilled: it starts a
// server, reports it, and waits to be killed. With helperMode "self", it
// starts a server, checks it and stops it (TestStartAsOrdinaryUser).
func TestHelperServer(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return // not run as a helper
	}
	ctx := context.Background()
	s, err := Start(ctx, Options{Dir: dir, BinDir: os.Getenv("COFFER_PGEPHEMERAL_BIN")})
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(helperMode) == "self" {
		defer s.Stop(ctx)
		pc := connect(t, ctx, s)
		var listen string
		pc.QueryRow(ctx, "SELECT current_setting('listen_addresses')").Scan(&listen)
		pc.Close(ctx)
		uid, _ := procUID(s.pid())
		fmt.Printf("SELF user=%s postmaster-uid=%d my-uid=%d listen=%q\n", s.User, uid, os.Getuid(), listen)
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stop left %s", s.Dir)
		}
		fmt.Println("SELF OK")
		return
	}
	fmt.Printf("SERVER %d %d %s %s\n", s.pid(), s.Port, s.User, s.Dir)
	time.Sleep(time.Minute)
	t.Fatal("not killed")
}

func TestRemoveMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), dirPrefix+"gone")
	if err := Remove(context.Background(), dir); err != nil {
		t.Fatalf("Remove(%s) = %v, want nil", dir, err)
	}
}

func TestRemoveRefusesForeignDirectory(t *testing.T) {
	root := t.TempDir()
	precious := filepath.Join(root, "precious")
	os.MkdirAll(precious, 0o700)
	os.WriteFile(filepath.Join(precious, "file"), []byte("x"), 0o600)
	link := filepath.Join(root, dirPrefix+"123")
	if err := os.Symlink(precious, link); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{"no prefix": precious, "symbolic link": link}
	if os.Geteuid() == 0 {
		// A directory of the right name, owned by another user (nobody).
		other := filepath.Join(root, dirPrefix+"456")
		os.Mkdir(other, 0o700)
		os.WriteFile(filepath.Join(other, "file"), []byte("x"), 0o600)
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		os.Chown(other, uid, -1)
		cases["another user's"] = other
	}
	for name, dir := range cases {
		t.Run(name, func(t *testing.T) {
			err := Remove(context.Background(), dir)
			if err == nil || !strings.Contains(err.Error(), "refusing") {
				t.Errorf("Remove(%s) = %v, want a refusal", dir, err)
			}
			t.Logf("Remove(%s): %v", dir, err)
			if _, err := os.Stat(filepath.Join(dir, "file")); err != nil {
				t.Errorf("Remove deleted a foreign directory: %v", err)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	p := parent(t)
	fake, err := os.MkdirTemp(p, "fakebin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(fake) })
	os.Chmod(fake, 0o755)
	for _, tool := range tools {
		script := "#!/bin/sh\necho 'fake " + tool + ": cluster on fire' >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(fake, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := os.MkdirTemp(p, "emptybin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(empty) })
	// The server's Unix socket path would exceed the kernel's 108 bytes.
	long := filepath.Join(p, strings.Repeat("x", 100))
	if err := os.Mkdir(long, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(long) })

	tests := []struct {
		name  string
		opts  Options
		wants []string
	}{
		{"bin dir without tools", Options{Dir: p, BinDir: empty}, []string{"initdb, postgres", "apt-get install postgresql"}},
		{"missing bin dir", Options{Dir: p, BinDir: filepath.Join(p, "nope")}, []string{"initdb", "apt-get install postgresql"}},
		{"initdb fails", Options{Dir: p, BinDir: fake}, []string{"initdb", "exit status 1", "fake initdb: cluster on fire"}},
		{"missing parent", Options{Dir: filepath.Join(p, "nope"), BinDir: binDir(t)}, []string{"nope"}},
		{"server fails", Options{Dir: long, BinDir: binDir(t)}, []string{"exited", "server log", "too long"}},
		{"Created fails", Options{Dir: p, BinDir: binDir(t), Created: func(string) error { return errors.New("no marker") }}, []string{"no marker"}},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct {
			name  string
			opts  Options
			wants []string
		}{"parent a throwaway user cannot enter", Options{Dir: t.TempDir(), BinDir: binDir(t)}, []string{"cannot enter", "chmod o+x"}})
	}
	before := throwaways()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.opts)
			if err == nil {
				s.Stop(context.Background())
				t.Fatal("Start succeeded")
			}
			t.Logf("error: %v", err)
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	var e *Error
	_, err = Start(context.Background(), Options{Dir: p, BinDir: fake})
	if !errors.As(err, &e) || e.Op != "initdb" || !strings.Contains(e.Log, "cluster on fire") {
		t.Errorf("Start with a failing initdb = %#v, want an *Error with the log", err)
	}
	noNewUsers(t, before)
}

// noNewUsers fails if /etc/passwd has throwaway users that were not in
// before, nor of a server that still runs in this process.
func noNewUsers(t *testing.T, before []account) {
	t.Helper()
	old := map[string]bool{}
	for _, a := range before {
		old[a.name] = true
	}
	for _, a := range throwaways() {
		if !old[a.name] && strings.Contains(a.gecos, fmt.Sprintf("pid=%d ", os.Getpid())) {
			t.Errorf("throwaway user %s (%s) left behind", a.name, a.gecos)
		}
	}
}

// TestStartCancelled cancels Start while initdb or the server starts: it
// must leave nothing behind (parent checks).
func TestStartCancelled(t *testing.T) {
	opts := Options{Dir: parent(t), BinDir: binDir(t)}
	before := throwaways()
	t0 := time.Now()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	full := time.Since(t0)
	s.Stop(context.Background())
	// Cancel while the user is made, during initdb, and (most likely)
	// while the server starts and the first connection.
	for _, f := range []float64{0.02, 0.1, 0.5, 0.8, 0.95} {
		after := time.Duration(f * float64(full))
		ctx, cancel := context.WithTimeout(context.Background(), after)
		s, err := Start(ctx, opts)
		cancel()
		if err == nil {
			t.Logf("cancel after %v: Start finished first", after)
			if err := s.Stop(context.Background()); err != nil {
				t.Error(err)
			}
			continue
		}
		op := "?"
		if e := (*Error)(nil); errors.As(err, &e) {
			op = e.Op
		}
		t.Logf("cancel after %v: failed in %s: %.200v", after.Round(time.Millisecond), op, err)
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "signal: killed") {
			t.Errorf("cancel after %v: %v, want context.DeadlineExceeded", after, err)
		}
	}
	noNewUsers(t, before)
}

// leftovers is what a running server has, to check it is all gone.
type leftovers struct {
	dir, dataDir string
	port, pid    int
	user         string
	uid          uint32
}

func snapshot(t *testing.T, s *Server) leftovers {
	t.Helper()
	data, err := filepath.EvalSymlinks(filepath.Join(s.Dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	pid := s.pid()
	if !alive(pid) {
		t.Fatalf("postmaster %d of %s is not running", pid, s.Dir)
	}
	l := leftovers{dir: s.Dir, dataDir: data, port: s.Port, pid: pid, user: s.User}
	if s.acct != nil {
		l.uid = s.acct.uid
	}
	return l
}

func (l leftovers) check(t *testing.T) {
	t.Helper()
	if _, err := os.Lstat(l.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory %s still exists (%v)", l.dir, err)
	}
	if alive(l.pid) {
		t.Errorf("postmaster %d still runs", l.pid)
	}
	// A process working in a deleted directory shows "DIR (deleted)".
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err == nil && strings.HasPrefix(cwd, l.dataDir) {
			if pid, _ := strconv.Atoi(e.Name()); alive(pid) {
				t.Errorf("process %s still runs in %s", e.Name(), cwd)
			}
		}
	}
	if os.Geteuid() == 0 {
		if !userPattern.MatchString(l.user) {
			t.Errorf("the server ran as %q, not a throwaway user", l.user)
		}
		if _, err := user.Lookup(l.user); err == nil {
			t.Errorf("the throwaway user %s still exists", l.user)
		}
		if _, err := user.LookupGroup(l.user); err == nil {
			t.Errorf("the throwaway user's group %s still exists", l.user)
		}
		if l.uid != 0 {
			if p := userProcesses(l.uid); len(p) > 0 {
				t.Errorf("processes %v of uid %d still run", p, l.uid)
			}
		}
	}
}

func lookupThrowaway(t *testing.T, name string) *account {
	t.Helper()
	for _, a := range throwaways() {
		if a.name == name {
			return &a
		}
	}
	return nil
}

// procUID is the real uid of process pid.
func procUID(pid int) (uint32, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, err := strconv.ParseUint(f[0], 10, 32)
				return uint32(n), err
			}
		}
	}
	return 0, fmt.Errorf("no Uid line for pid %d", pid)
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// isAuthFailure reports whether err is PostgreSQL refusing the password.
func isAuthFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "28P01"
}

// socketURL is a libpq address of the server's socket, for psql.
func socketURL(s *Server, password string) string {
	u := url.URL{Scheme: "postgresql", User: url.User(superuser), Path: "/postgres",
		RawQuery: url.Values{"host": {s.Dir}, "port": {strconv.Itoa(s.Port)}}.Encode()}
	if password != "" {
		u.User = url.UserPassword(superuser, password)
	}
	return u.String()
}
