package pgephemeral

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coffer-backup/coffer/engine/command"
)

// A restored server runs on a data directory that coffer restored (a
// physical base backup and the WAL to replay) instead of one initdb made.
// That directory came from a backup host, which may be hostile: its
// catalog, its roles and their passwords are the backup's. The hardening
// is the same as Start's, and it is coffer's, not the directory's:
//
//   - coffer's settings come last in postgresql.conf and
//     postgresql.auto.conf is emptied, so no setting of the directory
//     survives (no TCP listener, the private socket, no preloaded
//     library, no archive_command, no primary_conninfo);
//   - pg_hba.conf and pg_ident.conf are coffer's. Until recovery ends
//     nothing can log in (the server admits no connection while it
//     replays, hot_standby being off). Then only coffer's own system user
//     may log in, as the cluster's superuser, by peer authentication over
//     the private socket; coffer gives that superuser a password made for
//     this server, deletes every per-database and per-role setting of the
//     restored cluster (they would apply at logins: a library to load, a
//     role to become), and replaces pg_hba.conf with Start's:
//     scram-sha-256 over the socket and nothing else;
//   - the server runs as the throwaway user when coffer runs as root.
//
// What it cannot stop: the restored catalog is the backup's, so a query on
// it may run functions the backup defined, including C functions whose
// library is a file in the data directory. They run as the server's user,
// inside its private directory; that is why, as root, it is a throwaway
// user (docs/threat-model.md, "The PITR drill").

// Prepare makes a server's private directory and, as root, its throwaway
// user, but no cluster: the caller writes the restored data directory at
// DataDir (it does not exist yet) with its recovery settings and
// recovery.signal, then calls Recover. The caller must Stop the server
// (also when Recover failed); Remove and Sweep clean up after a kill.
func Prepare(ctx context.Context, opts Options) (*Server, error) {
	s, _, err := prepare(ctx, opts)
	return s, err
}

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.dataDir() }

// TablespaceDir is the directory, inside the server's private directory,
// where the caller restores the user tablespaces of the data directory at
// DataDir (one directory per tablespace); pg_tblspc may link only there.
func (s *Server) TablespaceDir() string { return filepath.Join(s.Dir, "tablespaces") }

// BinDir is the directory of the server's PostgreSQL programs, whose
// clients (pg_amcheck) fit it.
func (s *Server) BinDir() string { return s.binDir }

// Recover starts the server on the data directory at DataDir, which must
// hold recovery.signal, waits until archive recovery has ended and the
// server was promoted, and secures it as described above. superuser is
// the restored cluster's superuser (the one initdb made), which coffer
// logs in as. A recovery that fails (WAL missing before the target, the
// target not reached) ends the server, and the error has the tail of its
// log.
func (s *Server) Recover(ctx context.Context, superuser string) error {
	if superuser == "" || len(superuser) > 63 || strings.ContainsAny(superuser, "\"\n\r\x00") {
		return fmt.Errorf("ephemeral PostgreSQL: %q is not a role name coffer logs in as (at most 63 characters, no double quote or line break)", superuser)
	}
	s.role = superuser
	data := s.dataDir()
	if err := s.checkRestored(data); err != nil {
		return err
	}
	var err error
	if s.Password, err = randomHex(24); err != nil {
		return s.fail("make a password", err)
	}
	if s.Port, err = freePort(); err != nil {
		return s.fail("pick a port", err)
	}
	if err := s.configureRestored(); err != nil {
		return s.fail("configure", err)
	}
	if err := s.chownData(); err != nil {
		return s.fail("give the data directory to user "+s.User, err)
	}
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return s.fail("create log", err)
	}
	defer log.Close()
	s.setDSN("postgres")
	if err := s.launch(log); err != nil {
		return err
	}
	c, err := s.waitRecovered(ctx)
	if err != nil {
		return s.fail("recover", err)
	}
	err = s.secure(ctx, c)
	c.Close(context.WithoutCancel(ctx))
	if err != nil {
		return s.fail("secure the restored server", err)
	}
	return nil
}

// checkRestored refuses what would make the server leave its directory
// or wait forever, and removes what a running server leaves.
func (s *Server) checkRestored(data string) error {
	if _, err := os.Stat(filepath.Join(data, "recovery.signal")); err != nil {
		return s.fail("check the data directory", fmt.Errorf("no recovery.signal: %w", err))
	}
	// tablespace_map makes the server create symbolic links to the paths
	// it names, and replay writes through them. pg_basebackup writes an
	// empty one when there are no tablespaces.
	if fi, err := os.Lstat(filepath.Join(data, "tablespace_map")); err == nil && (!fi.Mode().IsRegular() || fi.Size() > 0) {
		return s.fail("check the data directory", errors.New("it holds a tablespace_map naming tablespaces: the restored server would write to the directories it names, outside its own; refused"))
	}
	if err := s.checkTablespaceLinks(data); err != nil {
		return s.fail("check the data directory", err)
	}
	// standby.signal would make the server wait for a primary forever;
	// a postmaster.pid would make it refuse to start.
	for _, name := range []string{"standby.signal", "postmaster.pid", "postmaster.opts"} {
		if err := os.Remove(filepath.Join(data, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.fail("prepare the data directory", err)
		}
	}
	return nil
}

// checkTablespaceLinks refuses a pg_tblspc entry that is not a symbolic
// link to a directory in TablespaceDir: the server would write through it.
func (s *Server) checkTablespaceLinks(data string) error {
	ents, err := os.ReadDir(filepath.Join(data, "pg_tblspc"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := filepath.Join(data, "pg_tblspc", e.Name())
		target, err := os.Readlink(name)
		if err != nil {
			return fmt.Errorf("pg_tblspc/%q is not a symbolic link to a tablespace: refused", e.Name())
		}
		rel, err := filepath.Rel(s.TablespaceDir(), target)
		if err != nil || !filepath.IsAbs(target) || rel == "." || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator)) {
			return fmt.Errorf("pg_tblspc/%q links to %q, outside the server's tablespace directory %s: refused", e.Name(), target, s.TablespaceDir())
		}
	}
	return nil
}

// configureRestored appends coffer's settings to postgresql.conf, after
// the caller's recovery settings, so that they win over anything before
// them; empties postgresql.auto.conf, which is read after it; and writes
// pg_hba.conf and pg_ident.conf for the recovery: coffer's user only.
func (s *Server) configureRestored() error {
	data := s.dataDir()
	conf := "\n# coffer ephemeral server on a restored data directory: these settings come last and win\n" +
		"listen_addresses = ''\n" +
		"port = " + strconv.Itoa(s.Port) + "\n" +
		"unix_socket_directories = " + confQuote(s.Dir) + "\n" +
		"unix_socket_permissions = 0700\n" +
		"unix_socket_group = ''\n" +
		"hba_file = " + confQuote(filepath.Join(data, "pg_hba.conf")) + "\n" +
		"ident_file = " + confQuote(filepath.Join(data, "pg_ident.conf")) + "\n" +
		"external_pid_file = ''\n" +
		"password_encryption = 'scram-sha-256'\n" +
		"ssl = off\n" +
		"shared_preload_libraries = ''\n" +
		"session_preload_libraries = ''\n" +
		"local_preload_libraries = ''\n" +
		"dynamic_library_path = '$libdir'\n" +
		"archive_mode = off\n" +
		"archive_cleanup_command = ''\n" +
		"recovery_end_command = ''\n" +
		"primary_conninfo = ''\n" +
		"primary_slot_name = ''\n" +
		// No connection while the backup's WAL is replayed.
		"hot_standby = off\n" +
		"logging_collector = off\n" +
		"fsync = off\n" +
		"full_page_writes = off\n" +
		"synchronous_commit = off\n" +
		"max_wal_senders = 0\n" +
		"dynamic_shared_memory_type = mmap\n"
	if err := appendConf(data, conf); err != nil {
		return err
	}
	me := currentUserName()
	files := map[string]string{
		"postgresql.auto.conf": "# emptied by coffer: the restored directory's settings are not used\n",
		"pg_hba.conf": "# coffer ephemeral server, until recovery ended and the superuser has a password of coffer's:\n" +
			"# coffer's own system user, as the cluster's superuser, over the private socket\n" +
			"local all \"" + s.role + "\" peer map=coffer\n",
		"pg_ident.conf": "coffer \"" + me + "\" \"" + s.role + "\"\n",
	}
	for name, content := range files {
		if err := writeReplace(filepath.Join(data, name), content); err != nil {
			return err
		}
	}
	return nil
}

func confQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
}

// currentUserName is coffer's system user name, for peer authentication.
func currentUserName() string {
	u := currentUser()
	if strings.ContainsAny(u, "\" \n") {
		return "" // matches no one: logging in fails, clearly
	}
	return u
}

// writeReplace replaces the file at path (never through a link: the
// directory came from a backup) with content, mode 0600.
func writeReplace(path, content string) error {
	tmp := path + ".coffer-tmp"
	os.Remove(tmp)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// chownData gives the data directory and the tablespaces' directories to
// the throwaway user (WalkDir follows no link).
func (s *Server) chownData() error {
	if s.acct == nil {
		return nil
	}
	for _, dir := range []string{s.dataDir(), s.TablespaceDir()} {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(s.acct.uid), int(s.acct.gid))
		})
		if err != nil && !(dir == s.TablespaceDir() && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
	}
	return nil
}

// peerConfig is a connection as the superuser without a password (peer
// authentication), with the settings a restored cluster's catalog might
// set at login neutralised by the client's, which take precedence.
func (s *Server) peerConfig(db string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return nil, err
	}
	cfg.Database = db
	cfg.ConnectTimeout = 10 * time.Second
	for k, v := range map[string]string{"session_preload_libraries": "", "local_preload_libraries": "",
		"search_path": "pg_catalog, pg_temp", "default_transaction_read_only": "off", "statement_timeout": "0",
		"log_statement": "none", "log_min_duration_statement": "-1"} { // the password is set on this connection
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

// waitRecovered waits until the server admits connections, which it does
// only once recovery has ended, and returns one as the superuser.
func (s *Server) waitRecovered(ctx context.Context) (*pgx.Conn, error) {
	db := "postgres"
	for {
		cfg, err := s.peerConfig(db)
		if err != nil {
			return nil, err
		}
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if db != "postgres" {
				s.setDSN(db)
			}
			return c, nil
		}
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "3D000" && db == "postgres":
			db = "template1" // the restored cluster has no database postgres
			continue
		case errors.As(err, &pe) && pe.Code != "57P03": // not "starting up"
			return nil, fmt.Errorf("log in as the restored cluster's superuser %q: %w (is that the name of its superuser?)", s.role, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.exited:
			return nil, fmt.Errorf("the server exited during recovery (%v)", s.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// secure gives the superuser this server's password, deletes the restored
// cluster's per-database and per-role settings, and lets nothing in but
// the password from then on.
func (s *Server) secure(ctx context.Context, c *pgx.Conn) error {
	var inRecovery, super bool
	if err := c.QueryRow(ctx, "SELECT pg_catalog.pg_is_in_recovery(), (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)").Scan(&inRecovery, &super); err != nil {
		return err
	}
	if inRecovery {
		return errors.New("the server admits connections but is still in recovery")
	}
	if !super {
		return fmt.Errorf("role %q of the restored cluster is no superuser", s.role)
	}
	ident := `"` + strings.ReplaceAll(s.role, `"`, `""`) + `"`
	for _, stmt := range []string{
		"DELETE FROM pg_catalog.pg_db_role_setting",
		"ALTER ROLE " + ident + " LOGIN PASSWORD '" + s.Password + "' VALID UNTIL 'infinity'",
	} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(stmt, " PASSWORD", 2)[0], err)
		}
	}
	hba := "# coffer ephemeral server: the password, over the private socket, and nothing else\n" +
		"local all all scram-sha-256\n"
	if err := writeReplace(filepath.Join(s.dataDir(), "pg_hba.conf"), hba); err != nil {
		return err
	}
	if err := s.chownData(); err != nil {
		return err
	}
	if _, err := c.Exec(ctx, "SELECT pg_catalog.pg_reload_conf()"); err != nil {
		return err
	}
	// The postmaster reloads pg_hba.conf when it handles the signal: wait
	// until a login without the password is refused.
	deadline := time.Now().Add(stopTimeout)
	for {
		cfg, err := s.peerConfig(c.Config().Database)
		if err != nil {
			return err
		}
		pc, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			break
		}
		pc.Close(ctx)
		if time.Now().After(deadline) {
			return errors.New("the server still admits logins without the password after reloading pg_hba.conf")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return s.waitReady(ctx)
}

// Client runs one of the server's PostgreSQL client programs (argv[0] in
// BinDir, such as pg_amcheck) against it, as coffer's user, with the
// environment Env builds, and returns its output.
func (s *Server) Client(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 || strings.ContainsRune(argv[0], '/') {
		return nil, errors.New("pgephemeral.Client: give the name of a PostgreSQL client program")
	}
	cmd := command.New(ctx, s.Env("PGDATABASE="+s.database(), "LC_ALL=C", "LANG=C", "PGOPTIONS=-c search_path=pg_catalog,pg_temp"),
		append([]string{filepath.Join(s.binDir, argv[0])}, argv[1:]...)...)
	cmd.Dir = s.Dir
	return cmd.CombinedOutput()
}

// database is the one the DSN names.
func (s *Server) database() string {
	if cfg, err := pgx.ParseConfig(s.DSN); err == nil {
		return cfg.Database
	}
	return "postgres"
}
