// Package pgephemeral runs a throwaway PostgreSQL server for restore drills:
// initdb in a private temporary directory, a server reachable only through
// a Unix socket in that directory, with a random superuser password, and
// removal of the whole directory (which holds customer data) when the
// drill ends — or, after the drill was killed, by Remove and Sweep.
//
// The server listens on no TCP address. Its socket lives in its private
// directory (mode 0700), and pg_hba.conf allows nothing but
// scram-sha-256 over that socket, with a password made for this server
// and given to its clients only through PGPASSWORD in the environment
// coffer builds for them. The drill's copy of the customer data is thus
// out of reach of other local users, who could otherwise connect as
// superuser and run programs as the server's user.
//
// When coffer runs as root, the server runs as a user created for this
// one server (coffer-drill-XXXXXXXX, a system user without a home or a
// shell), which can read neither the identity file nor any file of the
// operator's, and which is removed, after every process of it was
// killed, when the server stops. When coffer runs as an ordinary user,
// the server runs as that user: then only the directory's mode and the
// password keep other users out, and a program the server runs (a
// hostile snapshot loaded with TrustSnapshot) would run as coffer's user.
//
// A server's directory is laid out as
//
//	pgephemeral-NNN/          0700, owned by the server's user
//	  data/                   the cluster (initdb -D), or one coffer restored (Prepare, Recover)
//	  postgres.log            initdb's and the server's output
//	  .s.PGSQL.PORT           the server's Unix socket (PORT only names it)
package pgephemeral

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine/command"
)

// Install says how to get the PostgreSQL server binaries.
const Install = "install PostgreSQL's server binaries (apt-get install postgresql on Debian and Ubuntu), or put initdb and postgres on PATH"

// dirPrefix starts the name of every server directory. Remove refuses
// directories without it, so a damaged marker cannot make it delete
// something else.
const dirPrefix = "pgephemeral-"

// dirPattern is the whole name of a server directory (os.MkdirTemp).
var dirPattern = regexp.MustCompile(`^` + dirPrefix + `[0-9]+$`)

// IsDirName reports whether name is one Start gives a server's directory
// (pgephemeral-NNN), for callers that check a recorded path before
// handing it to Remove.
func IsDirName(name string) bool { return dirPattern.MatchString(name) }

const (
	startTimeout = 60 * time.Second // initdb, server start, first connection
	stopTimeout  = 30 * time.Second // stopping, and then each kill round
	logName      = "postgres.log"
	superuser    = "postgres"
)

var tools = []string{"initdb", "postgres"}

// Available returns the directory holding initdb and postgres: the one of
// initdb on PATH (symbolic links resolved), else the newest
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
		missing = []string{"initdb and postgres in one directory"}
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
	BinDir string // holds initdb and postgres; default Available()
	// Created, when set, is called with the server's directory as soon as
	// it exists, before anything is put in it: a drill records it, so that
	// being killed at any later point leaves nothing it does not know of.
	// An error from it makes Start fail.
	Created func(dir string) error
}

// Server is a running ephemeral PostgreSQL server. Its superuser is
// postgres, with the password Password (scram-sha-256), reachable only
// through the Unix socket in Dir.
type Server struct {
	// DSN is postgres://postgres@/postgres?host=DIR&port=PORT, without the
	// password: give it to clients in PGPASSWORD (see Env), never in an
	// address, a flag or a log.
	DSN      string
	Password string
	Port     int    // names the socket (.s.PGSQL.PORT); nothing listens on it
	Dir      string // the private directory; Stop or Remove deletes it
	User     string // the system user the server runs as

	binDir  string
	role    string   // the superuser clients log in as
	acct    *account // the throwaway user, or nil: run as ourselves
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the postmaster has exited
	mu      sync.Mutex    // guards stopped, stopErr
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
// it and starts a server on a Unix socket there, returning once the server
// accepts connections. The server is tuned for scratch data (fsync,
// full_page_writes and synchronous_commit off), and dies with coffer
// (parent-death signal). On failure nothing is left behind. The caller
// must Stop the server; if the caller dies first, Remove(Server.Dir) and
// Sweep clean up.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, fail, err := prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return fail(err)
	}
	return s, nil
}

// prepare makes the server's private directory and, as root, its user;
// fail undoes that and returns err.
func prepare(ctx context.Context, opts Options) (*Server, func(error) (*Server, error), error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = Available(); err != nil {
			return nil, nil, err
		}
	} else if err := checkBinDir(binDir); err != nil {
		return nil, nil, err
	}
	parent := opts.Dir
	if parent == "" {
		parent = os.TempDir()
	}
	parent, err := filepath.Abs(parent)
	if err != nil {
		return nil, nil, err
	}
	asRoot := os.Geteuid() == 0
	if asRoot {
		if err := checkReachable(parent); err != nil {
			return nil, nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, dirPrefix) // mode 0700
	if err != nil {
		return nil, nil, fmt.Errorf("ephemeral PostgreSQL: %w", err)
	}
	s := &Server{Dir: dir, binDir: binDir, User: currentUser(), role: superuser}
	fail := func(err error) (*Server, error) {
		// The directory may already hold a cluster and a running server.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		s.signal()
		return nil, errors.Join(err, remove(cleanup, dir, s.pid(), s.acct))
	}
	fail2 := func(err error) (*Server, func(error) (*Server, error), error) {
		_, err = fail(err)
		return nil, nil, err
	}
	if opts.Created != nil {
		if err := opts.Created(dir); err != nil {
			return fail2(err)
		}
	}
	if asRoot {
		// initdb and postgres refuse to run as root; and the server must
		// not run as a user that can read the identity or the operator's
		// files, nor as the shared postgres user.
		if s.acct, err = createUser(ctx, dir); err != nil {
			return fail2(fmt.Errorf("ephemeral PostgreSQL: %w", err))
		}
		s.User = s.acct.name
		if err := os.Chown(dir, int(s.acct.uid), int(s.acct.gid)); err != nil {
			return fail2(s.fail("give the directory to user "+s.acct.name, err))
		}
	}
	return s, fail, nil
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
	if s.Password, err = randomHex(24); err != nil {
		return s.fail("make a password", err)
	}
	if err := s.initdb(ctx, log); err != nil {
		return s.fail("initdb", err)
	}
	// The port only names the socket: one free on 127.0.0.1 now, so that
	// a TCP connection to it reaches nothing of ours.
	if s.Port, err = freePort(); err != nil {
		return s.fail("pick a port", err)
	}
	if err := s.configure(); err != nil {
		return s.fail("configure", err)
	}
	s.setDSN("postgres")
	if err := s.launch(log); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		return s.fail("connect", err)
	}
	return nil
}

// setDSN sets DSN to the superuser's address of database db.
func (s *Server) setDSN(db string) {
	host := strings.ReplaceAll(url.QueryEscape(s.Dir), "%2F", "/")
	s.DSN = fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d", url.PathEscape(s.role), url.PathEscape(db), host, s.Port)
}

// launch starts the postmaster: postgres itself, not pg_ctl, so that it
// is our child, in its own process group, killed by the kernel if coffer
// dies.
func (s *Server) launch(log *os.File) error {
	s.cmd = s.command(context.Background(), "postgres", "-D", s.dataDir())
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return s.fail("start postgres", err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	return nil
}

// initdb makes the cluster, with the superuser's password read from a
// file that has no name: created 0600, unlinked at once, and given to
// initdb as /dev/fd/3.
func (s *Server) initdb(ctx context.Context, log io.Writer) error {
	pw, err := os.CreateTemp(s.Dir, ".pwfile-")
	if err != nil {
		return err
	}
	os.Remove(pw.Name())
	defer pw.Close()
	if _, err := pw.WriteString(s.Password + "\n"); err != nil {
		return err
	}
	if s.acct != nil {
		if err := pw.Chown(int(s.acct.uid), int(s.acct.gid)); err != nil {
			return err
		}
	}
	cmd := s.command(ctx, "initdb", "-D", s.dataDir(), "-U", superuser, "--auth=scram-sha-256", "--pwfile=/dev/fd/3",
		"--no-sync", "--encoding=UTF8", "--locale=C")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{pw}
	err = cmd.Run()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// command is one of the PostgreSQL tools, run as the server's user, with
// an environment built from nothing: no PG* variable that would redirect
// it, no secret of coffer's, English messages.
func (s *Server) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := command.New(ctx, command.Env(nil, "LC_ALL=C", "LANG=C"), append([]string{filepath.Join(s.binDir, tool)}, args...)...)
	cmd.Dir = s.Dir
	if s.acct != nil {
		// No supplementary groups: not root's, not any other.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.acct.uid, Gid: s.acct.gid, Groups: []uint32{}}
	}
	return cmd
}

// configure appends the scratch settings to postgresql.conf and replaces
// pg_hba.conf: the server listens on no TCP address, and its socket
// accepts nothing but the password.
func (s *Server) configure() error {
	quote := func(v string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
	}
	conf := "\n# coffer ephemeral server: scratch data, Unix socket only\n" +
		"listen_addresses = ''\n" +
		"port = " + strconv.Itoa(s.Port) + "\n" +
		"unix_socket_directories = " + quote(s.Dir) + "\n" +
		"unix_socket_permissions = 0700\n" +
		"password_encryption = 'scram-sha-256'\n" +
		"fsync = off\n" +
		"full_page_writes = off\n" +
		"synchronous_commit = off\n" +
		// Bulk loads into tables created in the same transaction skip WAL.
		"wal_level = minimal\n" +
		"max_wal_senders = 0\n" +
		// Shared memory in the data directory rather than /dev/shm, so
		// that not even a killed server leaves customer data outside Dir.
		"dynamic_shared_memory_type = mmap\n"
	if err := appendConf(s.dataDir(), conf); err != nil {
		return err
	}
	hba := "# coffer ephemeral server: the password, over the private socket, and nothing else\n" +
		"local all all scram-sha-256\n"
	return os.WriteFile(filepath.Join(s.dataDir(), "pg_hba.conf"), []byte(hba), 0o600)
}

// appendConf appends conf to the postgresql.conf of data directory data.
func appendConf(data, conf string) error {
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ConnConfig is the configuration of a connection as the superuser, with
// the password, for pgx.
func (s *Server) ConnConfig(db string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return nil, err
	}
	if db != "" {
		cfg.Database = db
	}
	cfg.Password = s.Password
	return cfg, nil
}

// Env is the environment for a PostgreSQL client of the server
// (command.Env with PGPASSWORD, PGHOST, PGPORT and PGUSER), plus extra.
func (s *Server) Env(extra ...string) []string {
	return command.Env(nil, append([]string{"PGPASSWORD=" + s.Password, "PGHOST=" + s.Dir,
		"PGPORT=" + strconv.Itoa(s.Port), "PGUSER=" + s.role}, extra...)...)
}

func (s *Server) waitReady(ctx context.Context) error {
	cfg, err := s.ConnConfig("")
	if err != nil {
		return err
	}
	for {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return c.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server does not accept connections at %s (%v): %w", s.DSN, err, ctx.Err())
		case <-s.exited:
			return fmt.Errorf("the server exited (%v)", s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pid is the postmaster's, or 0.
func (s *Server) pid() int {
	if s.cmd != nil && s.cmd.Process != nil {
		return s.cmd.Process.Pid
	}
	return 0
}

// signal asks the postmaster for an immediate shutdown (the data is
// scratch) and waits for it a while, then kills its process group.
func (s *Server) signal() {
	if s.exited == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout / 3):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// Stop stops the server, kills whatever is left of its processes, removes
// its directory and, when it ran as a throwaway user, that user. All of it
// happens even when stopping failed, and even when ctx is already
// cancelled: the directory holds customer data. Stop may be called again;
// it then returns the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	s.signal()
	s.stopErr = remove(ctx, s.Dir, s.pid(), s.acct)
	return s.stopErr
}

// Remove cleans up after a server whose owner died without calling Stop:
// it kills the server's processes if any still run (those of its
// throwaway user, or those working in its data directory), removes dir
// and the throwaway user. A missing dir is not an error. Remove refuses a
// directory whose name is not one Start creates, a symbolic link, and one
// owned by anyone but coffer's user or a throwaway user of Start's.
func Remove(ctx context.Context, dir string) error {
	if dir == "" {
		return errors.New("pgephemeral.Remove: no directory given")
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if !strings.HasPrefix(filepath.Base(dir), dirPrefix) {
		return fmt.Errorf("refusing to remove %s: not an ephemeral PostgreSQL directory (%s…)", dir, dirPrefix)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("refusing to remove %s: not a directory (%v), so not one of an ephemeral PostgreSQL server", dir, fi.Mode().Type())
	}
	owner := fi.Sys().(*syscall.Stat_t).Uid
	var acct *account
	if int(owner) != os.Geteuid() {
		if os.Geteuid() == 0 {
			acct = throwawayByUID(owner)
		}
		if acct == nil {
			return fmt.Errorf("refusing to remove %s: it is owned by uid %d, neither you nor a throwaway user of coffer's ephemeral servers", dir, owner)
		}
	}
	pid, _ := readPID(filepath.Join(dir, "data"))
	return remove(ctx, dir, pid, acct)
}

// remove kills the server in dir, postmaster pid (0 if unknown), and every
// process of acct or working in its data directory, then deletes dir and
// acct.
func remove(ctx context.Context, dir string, pid int, acct *account) error {
	var errs []error
	if acct != nil {
		if belongs(pid, filepath.Join(dir, "data")) {
			syscall.Kill(pid, syscall.SIGQUIT)
		}
		if err := killUser(ctx, acct.uid); err != nil {
			errs = append(errs, fmt.Errorf("stop the PostgreSQL server in %s: %w", dir, err))
		}
	} else if err := kill(ctx, filepath.Join(dir, "data"), pid); err != nil {
		errs = append(errs, fmt.Errorf("stop the PostgreSQL server in %s: %w", dir, err))
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove ephemeral PostgreSQL directory (customer data): %w", err))
	}
	if acct != nil {
		if err := deleteUser(ctx, acct); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkReachable fails unless a user without any group of the file
// owners' (a throwaway user) can enter dir and each of its parents:
// PostgreSQL changes into its data directory.
func checkReachable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("ephemeral PostgreSQL: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			st, _ := fi.Sys().(*syscall.Stat_t)
			return fmt.Errorf("ephemeral PostgreSQL runs as a throwaway user (coffer runs as root), which cannot enter %s (mode %v, owner uid %d): use a directory it can reach, such as %s, or make %s searchable (chmod o+x)",
				d, fi.Mode().Perm(), st.Uid, os.TempDir(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
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

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
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
