package main_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/pgephemeral"
)

// walCluster is a PostgreSQL cluster of a test's own, archiving its WAL
// into a coffer repository with `coffer wal-push %p`, run as the system's
// postgres user when the test runs as root.
type walCluster struct {
	t              *testing.T
	dir, data, bin string
	port           int
	as             []string // the command prefix that runs as the cluster's user
	owner          *user.User
}

// newWALCluster makes the cluster's directory; start starts the cluster
// archiving into c's repository (which may live in that directory).
func newWALCluster(t *testing.T) *walCluster {
	t.Helper()
	bin, err := pgephemeral.Available()
	if err != nil {
		t.Fatalf("PostgreSQL server binaries: %v", err)
	}
	w := &walCluster{t: t, bin: bin}
	w.dir, err = os.MkdirTemp("", "coffer-wal-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(w.dir) })
	if os.Geteuid() == 0 {
		if w.owner, err = user.Lookup("postgres"); err != nil {
			t.Fatalf("running as root needs the postgres system user for the test cluster: %v", err)
		}
		w.as = []string{"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"}
	}
	w.data = filepath.Join(w.dir, "data")
	return w
}

func (w *walCluster) start(c *cli) {
	t := w.t
	t.Helper()
	// The cluster's user runs coffer: it gets its own copy of the binary and
	// of the writer key, as on a database host.
	copyFile(t, cofferBin, filepath.Join(w.dir, "coffer"), 0o755)
	copyFile(t, filepath.Join(c.dir, "writer.key"), filepath.Join(w.dir, "writer.key"), 0o600)
	w.chown(w.dir)
	w.run("initdb", "-D", w.data, "-U", "postgres", "--auth=trust", "--no-sync")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	repo := envOf(c, "COFFER_REPO")
	conf := fmt.Sprintf(`
listen_addresses = ''
port = %d
unix_socket_directories = '%s'
wal_level = replica
archive_mode = on
archive_command = 'env -i COFFER_REPO=%s COFFER_WRITER_KEY_FILE=%s/writer.key %s/coffer wal-push %%p'
fsync = off
`, w.port, w.dir, repo, w.dir, w.dir)
	f, err := os.OpenFile(filepath.Join(w.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	w.run("pg_ctl", "-D", w.data, "-l", filepath.Join(w.dir, "postgres.log"), "-w", "start")
	t.Cleanup(func() { w.runQuiet("pg_ctl", "-D", w.data, "-m", "immediate", "-w", "stop") })
}

func envOf(c *cli, name string) string {
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// chown gives path, recursively, to the cluster's user.
func (w *walCluster) chown(path string) {
	w.t.Helper()
	if w.owner == nil {
		return
	}
	uid, _ := strconv.Atoi(w.owner.Uid)
	gid, _ := strconv.Atoi(w.owner.Gid)
	filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, uid, gid)
		}
		return err
	})
}

func (w *walCluster) command(tool string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, w.as...), filepath.Join(w.bin, tool)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.dir
	return cmd
}

func (w *walCluster) run(tool string, args ...string) string {
	w.t.Helper()
	out, err := w.command(tool, args...).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(w.dir, "postgres.log"))
		w.t.Fatalf("%s %s: %v\n%s\n%s", tool, strings.Join(args, " "), err, out, log)
	}
	return string(out)
}

func (w *walCluster) runQuiet(tool string, args ...string) { w.command(tool, args...).Run() }

// sql runs statements with psql through the cluster's socket.
func (w *walCluster) sql(stmts string) string {
	w.t.Helper()
	psql, err := exec.LookPath("psql")
	if err != nil {
		w.t.Fatal(err)
	}
	argv := append(append([]string{}, w.as...), psql, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", w.dir, "-p", strconv.Itoa(w.port), "-U", "postgres", "-d", "postgres", "-c", stmts)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("psql %q: %v\n%s", stmts, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitArchived waits until the server archived segment (its name).
func (w *walCluster) waitArchived(segment string) {
	w.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if last := w.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"); last >= segment {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(w.dir, "postgres.log"))
	w.t.Fatalf("segment %s was not archived in 2 minutes; archiver: %s\n%s", segment, w.sql("SELECT * FROM pg_stat_archiver"), log)
}

// TestWALArchiveCommand runs coffer as a real cluster's archive_command:
// every segment the server switches away from is archived with the writer
// key only, and `coffer wal-fetch` gives back exactly the server's bytes.
func TestWALArchiveCommand(t *testing.T) {
	w := newWALCluster(t)
	c := newCLI(t, filepath.Join(w.dir, "repo"))
	c.init()
	w.start(c)
	var segs []string
	for i := range 3 {
		w.sql(fmt.Sprintf("CREATE TABLE IF NOT EXISTS t (n int); INSERT INTO t SELECT generate_series(1, 1000) + %d", i*1000))
		segs = append(segs, w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())"))
		w.sql("SELECT pg_switch_wal()")
	}
	w.waitArchived(segs[len(segs)-1])
	for _, seg := range segs {
		dest := filepath.Join(t.TempDir(), seg)
		c.ok(nil, "wal-fetch", seg, dest)
		got, _ := os.ReadFile(dest)
		if want, err := os.ReadFile(filepath.Join(w.data, "pg_wal", seg)); err == nil && !bytes.Equal(got, want) {
			t.Fatalf("wal-fetch %s gave other bytes than the server's segment", seg)
		}
		if len(got) != 16<<20 {
			t.Fatalf("wal-fetch %s: %d bytes", seg, len(got))
		}
	}
	// A segment not archived: exit 1, as restore_command must.
	if r := c.run(nil, "wal-fetch", "0000000100000000000000FF", filepath.Join(t.TempDir(), "x")); r.code != 1 {
		t.Fatalf("wal-fetch of a missing segment: exit %d\n%s", r.code, r.stderr)
	}
	if failed := w.sql("SELECT failed_count FROM pg_stat_archiver"); failed != "0" {
		t.Fatalf("the archiver failed %s times", failed)
	}
}
