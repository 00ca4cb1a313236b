package pgephemeral

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const helperEnv = "COFFER_PGEPHEMERAL_HELPER_DIR"

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

// parent is a directory for servers that the postgres user can reach when
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
	t.Logf("Start took %v (port %d, %s)", time.Since(t0).Round(time.Millisecond), s.Port, s.Dir)
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
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
	s := start(t, ctx, Options{Dir: parent(t), BinDir: binDir(t)})
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", s.Port); s.DSN != want {
		t.Errorf("DSN = %q, want %q", s.DSN, want)
	}
	fi, err := os.Stat(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("server directory mode %v, want 0700", perm)
	}

	pc, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE customers (id int PRIMARY KEY, name text)",
		"INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 1000) g",
	} {
		if _, err := pc.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	var fsync, listen string
	if err := pc.QueryRow(ctx, "SELECT (SELECT count(*) FROM customers), current_setting('fsync'), current_setting('listen_addresses')").Scan(&n, &fsync, &listen); err != nil {
		t.Fatal(err)
	}
	pc.Close(ctx)
	if n != 1000 || fsync != "off" || listen != "127.0.0.1" {
		t.Errorf("rows %d, fsync %s, listen_addresses %s; want 1000, off, 127.0.0.1", n, fsync, listen)
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
				t.Logf("server %d: Start took %v (port %d)", i, time.Since(t0).Round(time.Millisecond), servers[i].Port)
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
	if a.Port == b.Port || a.Dir == b.Dir {
		t.Fatalf("servers share port %d/%d or directory %s/%s", a.Port, b.Port, a.Dir, b.Dir)
	}
	for i, s := range servers {
		pc, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.Exec(ctx, fmt.Sprintf("CREATE TABLE only_on_%d (x int)", i)); err != nil {
			t.Fatal(err)
		}
		pc.Close(ctx)
	}
	for i, s := range servers {
		pc, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		rows, _ := pc.Query(ctx, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'only_on_%' ORDER BY 1")
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
		pc.Close(ctx)
		if err != nil || len(tables) != 1 || tables[0] != fmt.Sprintf("only_on_%d", i) {
			t.Errorf("server %d has tables %v (%v), want only its own", i, tables, err)
		}
	}
	for _, s := range servers {
		gone := snapshot(t, s)
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
		gone.check(t)
	}
}

// TestRemoveAfterOwnerKilled starts a server from a child process, kills
// the child with SIGKILL (as a drill killed mid-restore), and cleans up
// with Remove.
func TestRemoveAfterOwnerKilled(t *testing.T) {
	bin := binDir(t)
	ctx := context.Background()
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
	var dir string
	var port int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "SERVER %d %s", &port, &dir); err == nil {
			break
		}
		t.Logf("helper: %s", sc.Text())
	}
	cmd.Process.Kill()
	cmd.Wait()
	if dir == "" {
		t.Fatal("the helper process started no server")
	}
	s := &Server{Dir: dir, Port: port}
	if !listening(port) {
		t.Fatalf("the server on port %d died with its owner; this test needs it to outlive it", port)
	}
	gone := snapshot(t, s)
	if gone.pid == 0 {
		t.Fatalf("no postmaster.pid in %s", dir)
	}
	t0 := time.Now()
	if err := Remove(ctx, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("Remove took %v", time.Since(t0).Round(time.Millisecond))
	gone.check(t)
	if err := Remove(ctx, dir); err != nil {
		t.Errorf("Remove again: %v", err)
	}
}

// TestHelperServer is the owner process of TestRemoveAfterOwnerKilled: it
// starts a server, reports it, and waits to be killed.
func TestHelperServer(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		return // not run as a helper
	}
	s, err := Start(context.Background(), Options{Dir: dir, BinDir: os.Getenv("COFFER_PGEPHEMERAL_BIN")})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("SERVER %d %s\n", s.Port, s.Dir)
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
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o600)
	if err := Remove(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Remove(%s) = %v, want a refusal", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Errorf("Remove deleted a foreign directory: %v", err)
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
		{"bin dir without tools", Options{Dir: p, BinDir: empty}, []string{"initdb, pg_ctl, postgres", "apt-get install postgresql"}},
		{"missing bin dir", Options{Dir: p, BinDir: filepath.Join(p, "nope")}, []string{"initdb", "apt-get install postgresql"}},
		{"initdb fails", Options{Dir: p, BinDir: fake}, []string{"initdb", "exit status 1", "fake initdb: cluster on fire"}},
		{"missing parent", Options{Dir: filepath.Join(p, "nope"), BinDir: binDir(t)}, []string{"nope"}},
		{"server fails", Options{Dir: long, BinDir: binDir(t)}, []string{"pg_ctl start", "server log", "too long"}},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct {
			name  string
			opts  Options
			wants []string
		}{"parent postgres cannot enter", Options{Dir: t.TempDir(), BinDir: binDir(t)}, []string{"cannot enter", "chmod o+x"}})
	}
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
}

// TestStartCancelled cancels Start while initdb or the server starts: it
// must leave nothing behind (parent checks).
func TestStartCancelled(t *testing.T) {
	opts := Options{Dir: parent(t), BinDir: binDir(t)}
	t0 := time.Now()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	full := time.Since(t0)
	s.Stop(context.Background())
	// Cancel during initdb, and (most likely) during pg_ctl start and the
	// first connection.
	for _, f := range []float64{0.1, 0.5, 0.8, 0.95} {
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
		t.Logf("cancel after %v: failed in %s", after.Round(time.Millisecond), op)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cancel after %v: %v, want context.DeadlineExceeded", after, err)
		}
	}
}

// leftovers is what a running server has, to check it is all gone.
type leftovers struct {
	dir, dataDir string
	port, pid    int
}

func snapshot(t *testing.T, s *Server) leftovers {
	t.Helper()
	data, err := filepath.EvalSymlinks(filepath.Join(s.Dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := readPID(data)
	if !alive(pid) {
		t.Fatalf("postmaster %d of %s is not running", pid, s.Dir)
	}
	return leftovers{dir: s.Dir, dataDir: data, port: s.Port, pid: pid}
}

func (l leftovers) check(t *testing.T) {
	t.Helper()
	if _, err := os.Lstat(l.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory %s still exists (%v)", l.dir, err)
	}
	if listening(l.port) {
		t.Errorf("port %d still accepts connections", l.port)
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
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
