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
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/pgephemeral"
	"github.com/coffer-backup/coffer/internal/testminio"
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
	killFirst      bool   // kill -9 the first wal-push while it runs
	superuser      string // initdb's superuser; postgres when empty
	pushArgs       string // extra wal-push arguments
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
	w.run("initdb", "-D", w.data, "-U", w.su(), "--auth=trust", "--no-sync")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	// As on a database host: archive_command runs a script that reads the
	// repository's address and credentials from a file only the server's
	// user can read, so no secret is in the server's configuration.
	var env strings.Builder
	for _, name := range []string{"COFFER_REPO", "COFFER_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		if v := envOf(c, name); v != "" {
			fmt.Fprintf(&env, "%s=%s\n", name, v)
		}
	}
	fmt.Fprintf(&env, "COFFER_WRITER_KEY_FILE=%s/writer.key\n", w.dir)
	if err := os.WriteFile(filepath.Join(w.dir, "archive.env"), []byte(env.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nset -a\n. %s/archive.env\nset +a\n", w.dir)
	if w.killFirst {
		// The first archiving attempt is killed with SIGKILL while it runs.
		script += fmt.Sprintf("if [ ! -e %[1]s/killed ]; then : > %[1]s/killed; %[1]s/coffer wal-push \"$1\" & p=$!; sleep 0.05; kill -9 $p; wait $p; exit 1; fi\n", w.dir)
	}
	script += fmt.Sprintf("exec %s/coffer wal-push %s \"$1\"\n", w.dir, w.pushArgs)
	if err := os.WriteFile(filepath.Join(w.dir, "wal-push.sh"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	w.chown(w.dir)
	conf := fmt.Sprintf(`
listen_addresses = ''
port = %d
unix_socket_directories = '%s'
wal_level = replica
archive_mode = on
archive_command = '%s/wal-push.sh %%p'
fsync = off
`, w.port, w.dir, w.dir)
	f, err := os.OpenFile(filepath.Join(w.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	w.run("pg_ctl", "-D", w.data, "-l", filepath.Join(w.dir, "postgres.log"), "-w", "start")
	t.Cleanup(func() { w.runQuiet("pg_ctl", "-D", w.data, "-m", "immediate", "-w", "stop") })
}

// envOf returns the value c's environment gives name (the last setting).
func envOf(c *cli, name string) string {
	v := ""
	for _, kv := range c.env {
		if s, ok := strings.CutPrefix(kv, name+"="); ok {
			v = s
		}
	}
	return v
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
	argv := append(append([]string{}, w.as...), psql, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", w.dir, "-p", strconv.Itoa(w.port), "-U", w.su(), "-d", "postgres", "-c", stmts)
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
	w.pushArgs = "--parallel 3"
	c := newCLI(t, filepath.Join(w.dir, "repo"))
	c.init()
	w.start(c)
	var segs []string
	for i := range 6 {
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

// socketURL is a libpq address of the cluster through its socket.
func (w *walCluster) socketURL() string {
	return fmt.Sprintf("postgres://%s@/postgres?host=%s&port=%d", w.su(), w.dir, w.port)
}

// su is the cluster's superuser.
func (w *walCluster) su() string {
	if w.superuser == "" {
		return "postgres"
	}
	return w.superuser
}

// at is a psql runner for a restored server of w's with its socket in dir.
func (w *walCluster) at(dir string, port int) *walCluster {
	return &walCluster{t: w.t, dir: dir, bin: w.bin, port: port, as: w.as, owner: w.owner, superuser: w.superuser}
}

// startRestored starts a restored data directory on its own port and waits
// until recovery ended (the server promoted), then returns a psql runner.
func (w *walCluster) startRestored(dir string, port int) *walCluster {
	w.t.Helper()
	w.chown(dir)
	logf := filepath.Join(w.dir, filepath.Base(dir)+".log")
	if out, err := w.command("pg_ctl", "-D", dir, "-l", logf, "-w", "-o", fmt.Sprintf("-k %s -p %d", w.dir, port), "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logf)
		w.t.Fatalf("start the restored server: %v\n%s\n%s", err, out, log)
	}
	w.t.Cleanup(func() { w.runQuiet("pg_ctl", "-D", dir, "-m", "immediate", "-w", "stop") })
	r := w.at(w.dir, port)
	deadline := time.Now().Add(2 * time.Minute)
	for r.sql("SELECT pg_is_in_recovery()") != "f" {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf)
			w.t.Fatalf("the restored server did not end recovery in 2 minutes:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return r
}

// TestPITRRestoreToTargets is done-when 1 of the point-in-time recovery
// issue, on a local repository: a physical base backup, then three batches
// of rows committed at recorded times with WAL switches between; restores
// to a time, an LSN and a restore point between batches 2 and 3 show
// batches 1 and 2 only, and latest shows all three.
func TestPITRRestoreToTargets(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		w := newWALCluster(t)
		testPITRTargets(t, w, newCLI(t, filepath.Join(w.dir, "repo")))
	})
	t.Run("minio", func(t *testing.T) {
		m := testminio.Server(t)
		testPITRTargets(t, newWALCluster(t), newCLI(t, "", m.Env(m.Bucket(t, false), "pitr")...))
	})
}

func testPITRTargets(t *testing.T, w *walCluster, c *cli) {
	c.init()
	w.start(c)
	w.sql("CREATE TABLE orders (batch int, n int)")
	// The base backup's own configuration would run a command and load a
	// library on the restored server; neither may happen.
	canary := filepath.Join(w.dir, "canary")
	w.sql("ALTER SYSTEM SET restore_command = 'touch " + canary + "'")
	w.sql("ALTER SYSTEM SET shared_preload_libraries = 'coffer_no_such_library'")
	// A customer row in the base backup and in the WAL: nothing stored may
	// hold it in the clear (the writer key cannot read it back either).
	const marker = "coffer-plaintext-marker-4f1c9a"
	w.sql("CREATE TABLE customers (email text); INSERT INTO customers VALUES ('" + marker + "-base')")
	c.without("COFFER_IDENTITY_FILE").ok(nil, "backup", "--source", "pg", "--physical", "--postgres", w.socketURL())
	// The base backup records the cluster's superuser and version.
	mustContain(t, "snapshots --json", c.ok(nil, "--json", "snapshots"), `"superuser": "postgres"`, `"server_version_num": 1`)
	var marks []string
	var lsn2 string
	for batch := 1; batch <= 3; batch++ {
		w.sql(fmt.Sprintf("INSERT INTO orders SELECT %d, generate_series(1, 500)", batch))
		marks = append(marks, w.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"))
		if batch == 2 {
			lsn2 = w.sql("SELECT pg_current_wal_lsn()")
			w.sql("SELECT pg_create_restore_point('after-batch-2')")
		}
		last := w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
		w.sql("SELECT pg_switch_wal()")
		w.waitArchived(last)
		time.Sleep(1100 * time.Millisecond)
	}
	w.sql("INSERT INTO customers VALUES ('" + marker + "-wal')")
	last := w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
	w.sql("SELECT pg_switch_wal()")
	w.waitArchived(last)
	if repo := envOf(c, "COFFER_REPO"); strings.HasPrefix(repo, "/") {
		assertNoPlaintext(t, repo, marker)
	}
	t2, _ := time.Parse(time.RFC3339Nano, marks[1])
	mid := t2.Add(500 * time.Millisecond).Format(time.RFC3339Nano)
	for i, tc := range []struct {
		args  []string
		want  string
		state string // with --start: what the output says of the server
	}{
		{[]string{"--target-time", mid}, "1|500\n2|500", "the server promoted"},
		{[]string{"--target-lsn", lsn2, "--target-action", "pause"}, "1|500\n2|500", "the server paused"},
		{[]string{"--target-name", "after-batch-2", "--target-action", "shutdown"}, "", "the server shut down"},
		{nil, "1|500\n2|500\n3|500", ""}, // started by hand
	} {
		dir := filepath.Join(w.dir, fmt.Sprintf("restored%d", i))
		port := w.port + 1 + i
		args := append([]string{"restore", "latest", "--source", "pg", "--pgdata", dir, "--port", strconv.Itoa(port)}, tc.args...)
		var sql func(string) string
		if tc.state == "" {
			out := c.ok(nil, args...)
			mustContain(t, "restore --pgdata", out, "WAL files", "pg_ctl -D")
			sql = w.startRestored(dir, port).sql
		} else {
			out := w.restoreStarted(c, dir, port, args...)
			mustContain(t, "restore --start", out, "WAL files", "recovery reached the target", tc.state)
			if tc.want == "" { // shut down at the restore point
				mustContain(t, "restore --start shutdown", out, `recovery stopping at restore point "after-batch-2"`)
				if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !os.IsNotExist(err) {
					t.Fatalf("the server did not shut down at the target: %v", err)
				}
				continue
			}
			mustContain(t, "restore --start", out, "replayed to:", "last commit:", "psql -h "+dir, "no TCP address")
			sql = w.at(dir, port).sql
		}
		if got := sql("SELECT batch, count(*) FROM orders GROUP BY batch ORDER BY batch"); got != tc.want {
			t.Fatalf("restore %v: rows by batch\n%s\nwant\n%s", tc.args, got, tc.want)
		}
		if _, err := os.Stat(canary); !os.IsNotExist(err) {
			t.Fatalf("the restored server ran the base backup's restore_command: %v", err)
		}
	}
	// A target after the end of the archive: PostgreSQL's reason, non-zero.
	dir := filepath.Join(w.dir, "restored-beyond")
	late := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	w.stopAtCleanup(dir)
	r := c.run(nil, append([]string{"restore", "latest", "--source", "pg", "--pgdata", dir, "--port", strconv.Itoa(w.port + 9), "--start", "--target-time", late}, w.runAs()...)...)
	if r.code == 0 {
		t.Fatalf("restore --start to a target after the archive's end succeeded:\n%s", r.stdout)
	}
	t.Logf("restore --start beyond the archive:\n%s", r.stderr)
	mustContain(t, "restore --start beyond the archive", r.stderr, "recovery ended before configured recovery target was reached", "the end of the server's log")
}

// runAs is restore's --run-as for the cluster's user, when root.
func (w *walCluster) runAs() []string {
	if w.owner == nil {
		return nil
	}
	return []string{"--run-as", w.owner.Username}
}

// stopAtCleanup stops a server of a restored data directory at the end.
func (w *walCluster) stopAtCleanup(dir string) {
	w.t.Cleanup(func() { w.runQuiet("pg_ctl", "-D", dir, "-m", "immediate", "-w", "stop") })
}

// restoreStarted runs restore --start, which must succeed, and stops the
// server at the end of the test.
func (w *walCluster) restoreStarted(c *cli, dir string, port int, args ...string) string {
	w.t.Helper()
	w.stopAtCleanup(dir)
	out := c.ok(nil, append(append(args, "--start", "--start-timeout", "3m"), w.runAs()...)...)
	w.t.Logf("coffer %s:\n%s", strings.Join(args, " "), out)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		w.t.Fatalf("the restored data directory: %v %v", fi.Mode(), err)
	}
	if w.owner != nil {
		if uid := fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid); uid != w.owner.Uid {
			w.t.Fatalf("the restored data directory belongs to uid %s, not %s", uid, w.owner.Uid)
		}
	}
	return out
}

// TestPITRTimelines: a restored server promoted onto timeline 2 archives
// into the same repository; restore latest follows the switch (timeline
// 1 to the switch point, then 2) and shows the rows written on timeline
// 2, --target-timeline current stays on timeline 1, and check names the
// history file of timeline 2 once it is deleted.
func TestPITRTimelines(t *testing.T) {
	w := newWALCluster(t)
	w.superuser = "tl_admin" // restore --start logs in as the recorded superuser
	c, repo := w.backedUp()
	w.switchAndArchive(1)
	// The primary is lost; its restore becomes the new primary, archiving
	// into the same repository on timeline 2.
	w.runQuiet("pg_ctl", "-D", w.data, "-m", "immediate", "-w", "stop")
	dir := filepath.Join(w.dir, "promoted")
	c.ok(nil, append([]string{"restore", "latest", "--source", "pg", "--pgdata", dir}, w.runAs()...)...)
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "archive_mode = on\narchive_command = '%s/wal-push.sh %%p'\n", w.dir)
	f.Close()
	p := w.startRestored(dir, w.port+1)
	if tl := p.sql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"); tl != "00000002" {
		t.Fatalf("the promoted server writes timeline %s, not 2", tl)
	}
	p.switchAndArchive(2)
	p.waitArchived("00000002.history")
	c.ok(nil, "check")
	for _, tc := range []struct {
		args []string
		want string
		says string
	}{
		{nil, "1|500\n2|500", "follows timeline 2 (timelines 1 2)"},
		{[]string{"--target-timeline", "current"}, "1|500", "follows timeline 1"},
	} {
		dir := filepath.Join(w.dir, "restored-"+strconv.Itoa(len(tc.args)))
		port := w.port + 2 + len(tc.args)
		out := w.restoreStarted(c, dir, port, append([]string{"restore", "latest", "--source", "pg", "--pgdata", dir, "--port", strconv.Itoa(port)}, tc.args...)...)
		mustContain(t, "restore across a timeline switch", out, tc.says)
		r := w.at(dir, port)
		if got := r.sql("SELECT batch, count(*) FROM orders GROUP BY batch ORDER BY batch"); got != tc.want {
			t.Fatalf("restore %v: rows by batch\n%s\nwant\n%s", tc.args, got, tc.want)
		}
	}
	// A timeline that does not exist is refused before anything is replayed.
	mustContain(t, "restore --target-timeline 7", c.fail(nil, "restore", "latest", "--pgdata", filepath.Join(w.dir, "r7"), "--target-timeline", "7"), "00000007.history", "not in the archive")
	hist, _ := filepath.Glob(filepath.Join(repo, "wal", "00000002.history.g*"))
	if len(hist) != 1 {
		t.Fatalf("history objects of timeline 2: %v", hist)
	}
	os.Remove(hist[0])
	r := c.run(nil, "check")
	if r.code == 0 {
		t.Fatal("check passed with the history file of timeline 2 deleted")
	}
	mustContain(t, "check without the history file", r.stdout+r.stderr, "wal/00000002.history", "timeline 2")
}

// backedUp starts the cluster archiving into a local repository in its
// directory, makes the orders table and takes a physical base backup.
func (w *walCluster) backedUp() (*cli, string) {
	w.t.Helper()
	repo := filepath.Join(w.dir, "repo")
	c := newCLI(w.t, repo)
	c.init()
	w.start(c)
	w.sql("CREATE TABLE orders (batch int, n int)")
	c.without("COFFER_IDENTITY_FILE").ok(nil, "backup", "--source", "pg", "--physical", "--postgres", w.socketURL())
	return c, repo
}

// switchAndArchive commits a batch, switches to a new segment and waits
// until the server archived the old one, which it returns.
func (w *walCluster) switchAndArchive(batch int) string {
	w.t.Helper()
	w.sql(fmt.Sprintf("INSERT INTO orders SELECT %d, generate_series(1, 500)", batch))
	seg := w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
	w.sql("SELECT pg_switch_wal()")
	w.waitArchived(seg)
	return seg
}

// TestPITRFaults is done-when 3 of the point-in-time recovery issue: a
// wal-push killed with SIGKILL mid-upload and a repository that cannot be
// written for a while lose nothing (the server retries); a segment deleted
// from the archive is named by check; a corrupted one stops the restore,
// named, before any WAL is replayed.
func TestPITRFaults(t *testing.T) {
	w := newWALCluster(t)
	w.killFirst = true
	c, repo := w.backedUp()
	if _, err := os.Stat(filepath.Join(w.dir, "killed")); err != nil {
		t.Fatalf("no wal-push was killed: %v", err)
	}
	segs := []string{w.switchAndArchive(1)}
	// The repository cannot be written: archiving fails, PostgreSQL keeps
	// the segment and retries; once writable, it is archived.
	walDir := filepath.Join(repo, "wal")
	failedBefore := w.sql("SELECT failed_count FROM pg_stat_archiver") // the killed push counted one
	if err := os.Chmod(walDir, 0o500); err != nil {
		t.Fatal(err)
	}
	w.sql("INSERT INTO orders SELECT 2, generate_series(1, 500)")
	held := w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
	w.sql("SELECT pg_switch_wal()")
	deadline := time.Now().Add(time.Minute)
	for w.sql("SELECT failed_count FROM pg_stat_archiver") == failedBefore {
		if time.Now().After(deadline) {
			t.Fatal("archiving into a read-only repository did not fail")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustContain(t, "wal-status while archiving fails", c.fail(nil, "wal-status", "--postgres", w.socketURL()), "failed", held)
	os.Chmod(walDir, 0o700)
	w.waitArchived(held)
	mustContain(t, "wal-status once archiving works", c.ok(nil, "wal-status", "--postgres", w.socketURL()), "last archived:", "0000000", "failures")
	segs = append(segs, held, w.switchAndArchive(3), w.switchAndArchive(4))
	c.ok(nil, "check")
	mustContain(t, "stats", c.ok(nil, "stats"), "WAL archive:", segs[len(segs)-1], "point-in-time RPO")
	mustContain(t, "snapshots", c.ok(nil, "snapshots"), "postgres-physical")
	for _, seg := range segs {
		c.ok(nil, "wal-fetch", seg, filepath.Join(t.TempDir(), seg))
	}

	object := func(seg string) string {
		m, _ := filepath.Glob(filepath.Join(walDir, seg+".g*"))
		if len(m) != 1 {
			t.Fatalf("archive objects of %s: %v", seg, m)
		}
		return m[0]
	}
	// A corrupted segment: restore stops, naming it, and replays nothing.
	bad := object(segs[2])
	b, _ := os.ReadFile(bad)
	b[len(b)/2] ^= 0x40
	os.WriteFile(bad, b, 0o600)
	dir := filepath.Join(w.dir, "restored-bad")
	mustContain(t, "restore over a corrupted segment", c.fail(nil, "restore", "latest", "--pgdata", dir), segs[2], "incomplete")
	// A deleted segment: check names it.
	os.Remove(object(segs[1]))
	r := c.run(nil, "check")
	if r.code == 0 {
		t.Fatal("check passed with a segment deleted from the archive")
	}
	mustContain(t, "check with a segment deleted", r.stdout+r.stderr, "wal/"+segs[1], "missing")
}

// assertNoPlaintext fails if any file under dir holds marker.
func assertNoPlaintext(t *testing.T, dir, marker string) {
	t.Helper()
	n := 0
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		n++
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(marker)) {
			t.Fatalf("%s holds a customer row in the clear", p)
		}
		return nil
	})
	if n < 5 {
		t.Fatalf("only %d objects under %s: the plaintext check proves nothing", n, dir)
	}
}
