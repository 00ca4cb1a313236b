package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/coffer-backup/coffer/engine/mysql"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/internal/pgephemeral"
	"github.com/coffer-backup/coffer/restore"
)

// scratch is where a drill restores: a database created for the drill on a
// server (named coffer_drill_…, so it cannot be a real one), or a file. It
// is recorded in the drill's marker, so a drill killed before it dropped
// its scratch can have it dropped later.
type scratch struct {
	Engine   string `json:"engine"`             // postgres, mysql, sqlite
	Server   string `json:"server,omitempty"`   // the server's address, no database, no password
	Database string `json:"database,omitempty"` // the scratch database
	File     string `json:"file,omitempty"`     // the scratch SQLite file

	password string // an ephemeral server's superuser password; never in a marker
}

// newScratch plans the scratch for a snapshot of engine: on server (a
// postgres:// or mysql:// address) or, for SQLite, in dir.
func newScratch(engineName, server, dir, name string) (*scratch, error) {
	s := &scratch{Engine: engineName, Database: name}
	switch engineName {
	case "sqlite":
		s.Database, s.File = "", filepath.Join(dir, name+".db")
		return s, nil
	case "postgres", "mysql":
		if server == "" {
			return nil, fmt.Errorf("a %s snapshot needs a scratch server: give --scratch '%s://USER@HOST:PORT/'%s", engineName, engineName, map[bool]string{true: " or --ephemeral", false: ""}[engineName == "postgres"])
		}
		u, err := url.Parse(server)
		if err != nil || !strings.HasPrefix(u.Scheme, engineName[:4]) && !(engineName == "mysql" && u.Scheme == "mariadb") {
			return nil, fmt.Errorf("--scratch %q is not a %s address (%s://USER@HOST:PORT/)", redact(server), engineName, engineName)
		}
		if s.Server, err = serverAddress(server); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("a %s snapshot holds no database: a drill needs a postgres, mysql or sqlite snapshot", engineName)
}

// serverAddress is a scratch server's address as markers record it:
// without a database, and never with a password.
func serverAddress(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("--scratch %q: %w", redact(server), err)
	}
	if _, ok := u.User.Password(); ok {
		return "", fmt.Errorf("--scratch: put the password in the environment (PGPASSWORD, MYSQL_PWD) or a file, never in an address")
	}
	u.Path, u.RawPath = "/", ""
	return u.String(), nil
}

// dsn is the scratch database's address.
func (s *scratch) dsn() string {
	u, _ := url.Parse(s.Server)
	u.Path = "/" + s.Database
	return u.String()
}

func (s *scratch) String() string {
	if s.File != "" {
		return "sqlite:" + s.File
	}
	return s.dsn()
}

// target is the scratch as a restore target: loaded as a drill's
// throwaway database (the roles its objects need are created NOLOGIN and
// dropped with it), spooling, when the engine must, in the work directory.
func (s *scratch) target(jobs int, work string, m *restore.Masking) (restore.Target, error) {
	return restore.ParseTarget(s.String(), restore.TargetOptions{Scratch: true, Jobs: jobs, TempDir: work, Password: s.password, Mask: m})
}

// open connects to the scratch database, for assertions.
func (s *scratch) open(ctx context.Context) (*sql.DB, error) {
	switch s.Engine {
	case "sqlite":
		// The snapshot's schema: its views may not call unsafe functions.
		return sql.Open("sqlite", "file:"+(&url.URL{Path: s.File}).EscapedPath()+"?_pragma=trusted_schema(0)")
	case "mysql":
		return mysql.OpenDatabase(ctx, s.Server, s.Database)
	default:
		cfg, err := pgx.ParseConfig(s.dsn())
		if err != nil {
			return nil, err
		}
		if s.password != "" {
			cfg.Password = s.password
		}
		db := stdlib.OpenDB(*cfg)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
}

// drop removes the scratch database or file; one already gone is fine.
func (s *scratch) drop(ctx context.Context) error {
	switch s.Engine {
	case "sqlite":
		var errs []error
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Remove(s.File + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case "mysql":
		return mysql.DropDatabase(ctx, s.Server, s.Database)
	default:
		if !databasePattern.MatchString(s.Database) {
			return fmt.Errorf("refusing to drop %q on %s: not a scratch database of coffer's (%s…)", s.Database, s.Server, scratchPrefix)
		}
		db, err := sql.Open("pgx", s.Server)
		if err != nil {
			return err
		}
		err = endSessions(ctx, db, s.Database)
		db.Close()
		if err == nil {
			// The database and the roles the load made for it.
			err = postgres.DropScratch(ctx, s.Server, s.Database)
		}
		if err != nil {
			return fmt.Errorf("drop scratch database %s on %s: %w", s.Database, s.Server, err)
		}
		return nil
	}
}

// endSessions ends the server's sessions that use scratch database name
// or whose statement names it, and waits until they are gone: a killed
// drill's last statement (CREATE DATABASE, say) may still be running, and
// would otherwise create the database after it was dropped.
func endSessions(ctx context.Context, db *sql.DB, name string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND (datname = $1 OR state = 'active' AND usename = current_user AND strpos(query, $1) > 0)`, name).Scan(&n)
		if err != nil || n == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sessions of the killed drill still run", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "(unparsable address)"
	}
	return u.Redacted()
}

// prepareScratch plans the scratch for a snapshot of engineName and, with
// Ephemeral, starts the PostgreSQL server it lives on, recording its
// directory in the marker m as soon as it exists.
func prepareScratch(ctx context.Context, engineName, dir, name string, opts Options, m *marker) (*scratch, *stopper, error) {
	st := &stopper{}
	server, password := opts.Scratch, ""
	if opts.Ephemeral {
		if engineName != "postgres" {
			return nil, nil, fmt.Errorf("--ephemeral starts a PostgreSQL server; this is a %s snapshot: give --scratch", engineName)
		}
		// Its own private directory in the temporary directory: the work
		// directory is ours alone, and the server may run as a throwaway
		// user.
		srv, err := pgephemeral.Start(ctx, pgephemeral.Options{Dir: tempDir(opts.TempDir), Created: func(d string) error {
			m.Ephemeral = d
			return m.save(opts.StateDir)
		}})
		if err != nil {
			return nil, nil, err
		}
		server, st.dir, st.stop = srv.DSN, srv.Dir, srv.Stop
		password = srv.Password
	}
	sc, err := newScratch(engineName, server, dir, name)
	if err == nil {
		sc.password = password
	}
	if err != nil {
		if st.stop != nil {
			st.stop(context.WithoutCancel(ctx))
		}
		return nil, nil, err
	}
	return sc, st, nil
}
