// Package pgephemeral runs a throwaway PostgreSQL server for restore drills:
// initdb in a private temporary directory, a server on a free loopback
// port, and removal of the whole directory (which holds customer data)
// when the drill ends — or, after the drill was killed, by Remove.
//
// A server's directory is laid out as
//
//	pgephemeral-NNN/          0700, owned by the server's user
//	  data/                   the cluster (initdb -D)
//	  postgres.log            initdb's and the server's output
//	  .s.PGSQL.PORT           the server's Unix socket
package pgephemeral

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Install says how to get the PostgreSQL server binaries.
const Install = "install PostgreSQL's server binaries (apt-get install postgresql on Debian and Ubuntu), or put initdb, pg_ctl and postgres on PATH"

// dirPrefix starts the name of every server directory. Remove refuses
// directories without it, so a damaged marker cannot make it delete
// something else.
const dirPrefix = "pgephemeral-"

const (
	startTimeout = 60 * time.Second // initdb, pg_ctl start, first connection
	stopTimeout  = 30 * time.Second // pg_ctl stop, and then each kill round
	logName      = "postgres.log"
	superuser    = "postgres"
)

var tools = []string{"initdb", "pg_ctl", "postgres"}

// Available returns the directory holding initdb, pg_ctl and postgres: the
// one of initdb on PATH (symbolic links resolved), else the newest
// /usr/lib/postgresql/MAJOR/bin. Its error names what is missing and how
// to install it.
func Available() (binDir string, err error) {
	var missing []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, dir := range dirs {
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	if len(missing) == 0 { // all on PATH, but not side by side
		missing = []string{"initdb, pg_ctl and postgres in one directory"}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries: %s not found on PATH nor in /usr/lib/postgresql/*/bin; %s",
		strings.Join(missing, ", "), Install)
}

func major(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

// checkBinDir reports which of the tools dir lacks.
func checkBinDir(dir string) error {
	var missing []string
	for _, t := range tools {
		fi, err := os.Stat(filepath.Join(dir, t))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("PostgreSQL bin directory %s has no %s; %s", dir, strings.Join(missing, ", "), Install)
	}
	return nil
}

// Options configures Start.
type Options struct {
	Dir    string // parent of the server's private directory; default os.TempDir()
	BinDir string // holds initdb, pg_ctl and postgres; default Available()
}

// Server is a running ephemeral PostgreSQL server. Its superuser is
// postgres, with trust authentication, reachable only on 127.0.0.1 and
// through the Unix socket in Dir.
type Server struct {
	DSN  string // postgres://postgres@127.0.0.1:PORT/postgres
	Port int
	Dir  string // the private directory; Stop or Remove deletes it

	binDir  string
	cred    *syscall.Credential // nil: run as ourselves
	pid     int                 // the postmaster
	mu      sync.Mutex          // guards stopped, stopErr
	stopped bool
	stopErr error
}

// Error is a failure of the server, with the tail of its log.
type Error struct {
	Op  string // "initdb", "start", "stop"…
	Dir string
	Log string // the last lines of initdb's and the server's output
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ephemeral PostgreSQL in %s: %s: %v", e.Dir, e.Op, e.Err)
	if e.Log != "" {
		s += "\nserver log (last lines):\n" + e.Log
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Start creates a private directory in opts.Dir, initialises a cluster in
// it and starts a server on a free 127.0.0.1 port, returning once the
// server accepts connections. The server is tuned for scratch data
// (fsync, full_page_writes and synchronous_commit off). On failure nothing
// is left behind. The caller must Stop the server; if the caller dies
// first, Remove(Server.Dir) cleans up.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = Available(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(binDir); err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	parent := opts.Dir
	if parent == "" {
		parent = os.TempDir()
	}
	if parent, err = filepath.Abs(parent); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := checkReachable(parent, cred); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, dirPrefix) // mode 0700
	if err != nil {
		return nil, fmt.Errorf("ephemeral PostgreSQL: %w", err)
	}
	s := &Server{Dir: dir, binDir: binDir, cred: cred}
	if err := s.start(ctx); err != nil {
		// The directory may already hold a cluster and a running server.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		return nil, errors.Join(err, remove(cleanup, dir, s.pid))
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.Dir, logName) }

func (s *Server) fail(op string, err error) error {
	return &Error{Op: op, Dir: s.Dir, Log: logTail(s.logPath()), Err: err}
}

func (s *Server) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return s.fail("create log", err)
	}
	defer log.Close()
	if s.cred != nil {
		for _, p := range []string{s.Dir, s.logPath()} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return s.fail("give the directory to user "+superuser, err)
			}
		}
	}
	if err := s.run(ctx, log, "initdb", "-D", s.dataDir(), "-U", superuser, "--auth=trust",
		"--no-sync", "--encoding=UTF8", "--locale=C"); err != nil {
		return s.fail("initdb", err)
	}
	if err := s.configure(); err != nil {
		return s.fail("configure", err)
	}
	// The port is free when we pick it, but another process (or another
	// ephemeral server) may take it before postgres binds: then try another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return s.fail("pick a port", err)
		}
		before := logSize(s.logPath())
		err = s.run(ctx, log, "pg_ctl", "start", "-w", "-t", strconv.Itoa(waitSeconds(ctx)), "-s",
			"-D", s.dataDir(), "-l", s.logPath(), "-o", "-p "+strconv.Itoa(port))
		s.pid, _ = readPID(s.dataDir())
		if err != nil {
			if attempt < 5 && bindFailed(s.logPath(), before) {
				continue
			}
			return s.fail("pg_ctl start", err)
		}
		s.Port = port
		s.DSN = fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres", superuser, port)
		break
	}
	if err := s.waitReady(ctx); err != nil {
		return s.fail("connect", err)
	}
	return nil
}

// configure appends the scratch settings to postgresql.conf, rather than
// passing them to pg_ctl -o, which goes through a shell.
func (s *Server) configure() error {
	quote := func(v string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
	}
	conf := "\n# coffer ephemeral server: scratch data, loopback only\n" +
		"listen_addresses = '127.0.0.1'\n" +
		"unix_socket_directories = " + quote(s.Dir) + "\n" +
		"unix_socket_permissions = 0700\n" +
		"fsync = off\n" +
		"full_page_writes = off\n" +
		"synchronous_commit = off\n" +
		// Bulk loads into tables created in the same transaction skip WAL.
		"wal_level = minimal\n" +
		"max_wal_senders = 0\n" +
		// Shared memory in the data directory rather than /dev/shm, so
		// that not even a killed server leaves customer data outside Dir.
		"dynamic_shared_memory_type = mmap\n"
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Server) waitReady(ctx context.Context) error {
	for {
		c, err := pgx.Connect(ctx, s.DSN)
		if err == nil {
			return c.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server does not accept connections at %s: %w", s.DSN, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run runs one of the PostgreSQL tools with its output in log.
func (s *Server) run(ctx context.Context, log io.Writer, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, tool), args...)
	cmd.Dir = s.Dir
	cmd.Env = toolEnv()
	cmd.Stdout, cmd.Stderr = log, log
	// initdb, pg_ctl and postgres refuse to run as root. When coffer runs
	// as root, they run as the postgres system user, which owns Dir.
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// toolEnv is our environment without the PG* variables (PGDATA, PGPORT…)
// that would redirect the tools, and with English messages.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// Stop stops the server (pg_ctl stop -m immediate: the data is scratch),
// kills whatever is left of its processes and removes its directory. The
// directory is removed even when stopping failed, and even when ctx is
// already cancelled: it holds customer data. Stop may be called again; it
// then returns the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	var errs []error
	if pid, err := readPID(s.dataDir()); err == nil {
		s.pid = pid
	}
	var out bytes.Buffer
	if err := s.run(ctx, &out, "pg_ctl", "stop", "-m", "immediate", "-w", "-s", "-D", s.dataDir()); err != nil {
		e := s.fail("pg_ctl stop", err).(*Error)
		e.Log = strings.TrimSpace(out.String() + "\n" + e.Log)
		errs = append(errs, e)
	}
	errs = append(errs, remove(ctx, s.Dir, s.pid))
	s.stopErr = errors.Join(errs...)
	return s.stopErr
}

// Remove cleans up after a server whose owner died without calling Stop:
// if dir/data/postmaster.pid names a running server, it stops it (SIGQUIT,
// the immediate shutdown of pg_ctl stop -m immediate, then SIGKILL for
// whatever is left), and it removes dir. A missing dir is not an error.
// Remove refuses a directory whose name is not one Start creates.
func Remove(ctx context.Context, dir string) error {
	if dir == "" {
		return errors.New("pgephemeral.Remove: no directory given")
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if !strings.HasPrefix(filepath.Base(dir), dirPrefix) {
		return fmt.Errorf("refusing to remove %s: not an ephemeral PostgreSQL directory (%s…)", dir, dirPrefix)
	}
	pid, _ := readPID(filepath.Join(dir, "data"))
	return remove(ctx, dir, pid)
}

// remove kills the server in dir, postmaster pid (0 if unknown) and any
// process working in its data directory, then deletes dir.
func remove(ctx context.Context, dir string, pid int) error {
	var errs []error
	if err := kill(ctx, filepath.Join(dir, "data"), pid); err != nil {
		errs = append(errs, fmt.Errorf("stop the PostgreSQL server in %s: %w", dir, err))
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove ephemeral PostgreSQL directory (customer data): %w", err))
	}
	return errors.Join(errs...)
}

// kill ends the server of dataDir: SIGQUIT to the postmaster, which ends
// its children, then SIGKILL to every process still working in dataDir.
func kill(ctx context.Context, dataDir string, pid int) error {
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		dataDir = real
	} else if pid == 0 {
		return nil // no data directory: nothing ever ran
	}
	if belongs(pid, dataDir) {
		syscall.Kill(pid, syscall.SIGQUIT)
	}
	left := processes(dataDir, pid)
	for round, sig := range []syscall.Signal{0, syscall.SIGKILL} {
		if round > 0 {
			for _, p := range left {
				syscall.Kill(p, sig)
			}
		}
		deadline := time.Now().Add(stopTimeout / 3)
		for len(left) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			left = processes(dataDir, pid)
		}
		if len(left) == 0 {
			return nil
		}
	}
	return fmt.Errorf("processes %v survive SIGKILL", left)
}

// processes lists the live processes of the server in dataDir: the
// postmaster pid, and (where /proc tells) all processes whose working
// directory is in dataDir, as every PostgreSQL process's is.
func processes(dataDir string, pid int) []int {
	var out []int
	if belongs(pid, dataDir) {
		out = append(out, pid)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && inDir(cwd, dataDir) && alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// belongs reports whether pid is a live process of the server in dataDir,
// so that a pid reused since postmaster.pid was written is left alone.
func belongs(pid int, dataDir string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if _, err := os.Stat("/proc/self"); err != nil {
		return true // no /proc: trust postmaster.pid
	}
	if cwd, err := os.Readlink(proc + "/cwd"); err == nil {
		return inDir(cwd, dataDir)
	}
	comm, err := os.ReadFile(proc + "/comm") // another user's: only the name is visible
	return err == nil && strings.TrimSpace(string(comm)) == "postgres"
}

func inDir(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// alive reports whether pid runs; a zombie (an orphaned postmaster whose
// new parent has not reaped it yet) does not.
func alive(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		i := bytes.LastIndexByte(b, ')')
		return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
	} else if _, serr := os.Stat("/proc/self"); serr == nil {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// readPID reads the postmaster's pid from the first line of postmaster.pid.
func readPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s/postmaster.pid: no pid on its first line", dataDir)
	}
	return pid, nil
}

// serverUser is the user to run the tools as: nil for ourselves, or, when
// we are root (which initdb and postgres refuse), the postgres system user.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(superuser)
	if err != nil {
		return nil, fmt.Errorf("coffer runs as root, and PostgreSQL refuses to run as root; it would run as the %q system user, but: %w; create that user (apt-get install postgresql does) or run coffer as an ordinary user", superuser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %s: %w", superuser, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred, nil
}

// checkReachable fails unless the server's user can enter dir and each of
// its parents: PostgreSQL changes into its data directory.
func checkReachable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("ephemeral PostgreSQL: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		bit := fs.FileMode(0o001)
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid || containsGid(cred.Groups, st.Gid):
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return fmt.Errorf("ephemeral PostgreSQL runs as user %s (coffer runs as root), which cannot enter %s (mode %v, owner uid %d): use a directory it can reach, such as %s, or make %s searchable (chmod o+x)",
				superuser, d, fi.Mode().Perm(), st.Uid, os.TempDir(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func containsGid(gids []uint32, g uint32) bool {
	for _, x := range gids {
		if x == g {
			return true
		}
	}
	return false
}

// freePort returns a TCP port on 127.0.0.1 that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitSeconds(ctx context.Context) int {
	if d, ok := ctx.Deadline(); ok {
		return max(1, int(time.Until(d).Seconds()))
	}
	return int(startTimeout.Seconds())
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// bindFailed reports whether the log, past offset, says the port was taken.
func bindFailed(path string, offset int64) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	b = b[offset:]
	return bytes.Contains(b, []byte("could not bind")) || bytes.Contains(b, []byte("could not create any TCP/IP sockets"))
}

// logTail returns the last lines of the log at path.
func logTail(path string) string {
	const maxBytes, maxLines = 4096, 20
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		f.Seek(fi.Size()-maxBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
