package pgephemeral

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestRecoverHostileDataDirectory starts a server on a data directory
// that is not coffer's: a cluster whose own configuration trusts every
// local and loopback login, listens on TCP, preloads a library that does
// not exist, whose database loads another at every login, and whose
// superuser's statements are logged. Recover
// replays it (archive recovery to the end of its WAL) and must leave the
// same server Start makes: no TCP listener, the 0700 socket directory, no
// login without the password, none of the cluster's own settings.
func TestRecoverHostileDataDirectory(t *testing.T) {
	ctx := context.Background()
	s, err := Prepare(ctx, Options{Dir: parent(t), BinDir: binDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	run := func(stdin string, tool string, args ...string) {
		t.Helper()
		cmd := s.command(ctx, tool, args...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Stdin = strings.NewReader(stdin)
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", tool, err, logTail(s.logPath()))
		}
	}
	data := s.DataDir()
	run("", "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
	run("ALTER DATABASE postgres SET session_preload_libraries = 'coffer_no_such_library'\nALTER ROLE postgres SET log_statement = 'all'\n", "postgres", "--single", "-D", data, "-c", "fsync=off", "postgres")
	tcpPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	hostile := "listen_addresses = '127.0.0.1'\nport = " + strconv.Itoa(tcpPort) + "\nshared_preload_libraries = 'coffer_no_such_library'\n" +
		"unix_socket_permissions = 0777\n"
	for name, content := range map[string]string{
		"postgresql.auto.conf": hostile,
		"pg_hba.conf":          "local all all trust\nhost all all 127.0.0.1/32 trust\n",
		// What pitr.Configure adds: recovery with an archive that has nothing.
		"recovery.signal": "",
	} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n" + hostile + "restore_command = 'false'\n")
	f.Close()
	if err := s.Recover(ctx, "postgres"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(s.logPath()); strings.Contains(string(b), s.Password) {
		t.Error("the superuser's password is in the server's log")
	}
	for _, port := range []int{tcpPort, s.Port} {
		if listening(port) {
			t.Errorf("something listens on 127.0.0.1:%d", port)
		}
	}
	if fi, err := os.Stat(s.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the socket directory: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, ".s.PGSQL."+strconv.Itoa(s.Port))); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the socket: %v, %v", fi, err)
	}
	nopw, err := s.ConnConfig("")
	if err != nil {
		t.Fatal(err)
	}
	nopw.Password = ""
	if c, err := pgx.ConnectConfig(ctx, nopw); err == nil {
		c.Close(ctx)
		t.Fatal("a login without the password was admitted")
	}
	pc := connect(t, ctx, s)
	defer pc.Close(ctx)
	var settings int
	var inRecovery bool
	var preload string
	if err := pc.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_db_role_setting), pg_is_in_recovery(), current_setting('session_preload_libraries')").Scan(&settings, &inRecovery, &preload); err != nil {
		t.Fatal(err)
	}
	if settings != 0 || inRecovery || preload != "" {
		t.Fatalf("after Recover: %d per-database settings, in recovery %v, session_preload_libraries %q", settings, inRecovery, preload)
	}
	if out, err := s.Client(ctx, "psql", "-X", "-tAc", "SELECT 1"); err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("a client through Client: %v\n%s", err, out)
	}
}

// TestRecoverRefusesTablespaceLinksOut: pg_tblspc of a restored data
// directory may hold only links into the server's tablespace directory;
// a link elsewhere, a relative one, a nested one or a directory is
// refused, and Recover starts nothing.
func TestRecoverRefusesTablespaceLinksOut(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	for name, plant := range map[string]func(s *Server, at string) error{
		"link outside":   func(_ *Server, at string) error { return os.Symlink(outside, at) },
		"relative link":  func(_ *Server, at string) error { return os.Symlink("../../tablespaces/16390", at) },
		"dot-dot link":   func(s *Server, at string) error { return os.Symlink(s.TablespaceDir()+"/../..", at) },
		"nested link":    func(s *Server, at string) error { return os.Symlink(s.TablespaceDir()+"/16390/x", at) },
		"the dir itself": func(s *Server, at string) error { return os.Symlink(s.TablespaceDir(), at) },
		"directory":      func(_ *Server, at string) error { return os.Mkdir(at, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Prepare(ctx, Options{Dir: parent(t), BinDir: binDir(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Stop(context.Background()) })
			tblspc := filepath.Join(s.DataDir(), "pg_tblspc")
			if err := os.MkdirAll(tblspc, 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(s.DataDir(), "recovery.signal"), nil, 0o600)
			if err := plant(s, filepath.Join(tblspc, "16390")); err != nil {
				t.Fatal(err)
			}
			err = s.Recover(ctx, "postgres")
			if err == nil || !strings.Contains(err.Error(), "pg_tblspc") {
				t.Fatalf("Recover: %v, want a refusal naming pg_tblspc", err)
			}
			if s.cmd != nil {
				t.Fatal("a server was started")
			}
		})
	}
	s, err := Prepare(ctx, Options{Dir: parent(t), BinDir: binDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	os.MkdirAll(filepath.Join(s.DataDir(), "pg_tblspc"), 0o700)
	os.Symlink(filepath.Join(s.TablespaceDir(), "16390"), filepath.Join(s.DataDir(), "pg_tblspc", "16390"))
	if err := s.checkTablespaceLinks(s.DataDir()); err != nil {
		t.Fatalf("a link into the tablespace directory: %v", err)
	}
}
