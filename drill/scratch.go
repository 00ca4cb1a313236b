package drill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" driver

	"github.com/coffer-backup/coffer/engine/mysql"
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
}

// newScratch plans the scratch for a snapshot of engine: on server (a
// postgres:// or mysql:// address) or, for SQLite, in dir.
func newScratch(engineName, server, dir, name string) (*scratch, error) {
	s := &scratch{Engine: engineName, Database: name}
	switch engineName {
	case "sqlite":
		s.Database, s.File = "", dir+"/"+name+".db"
		return s, nil
	case "postgres", "mysql":
		if server == "" {
			return nil, fmt.Errorf("a %s snapshot needs a scratch server: give --scratch '%s://USER@HOST:PORT/'%s", engineName, engineName, map[bool]string{true: " or --ephemeral", false: ""}[engineName == "postgres"])
		}
		u, err := url.Parse(server)
		if err != nil || !strings.HasPrefix(u.Scheme, engineName[:4]) && !(engineName == "mysql" && u.Scheme == "mariadb") {
			return nil, fmt.Errorf("--scratch %q is not a %s address (%s://USER@HOST:PORT/)", redact(server), engineName, engineName)
		}
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("--scratch: put the password in the environment (PGPASSWORD, MYSQL_PWD) or a file, never in an address")
		}
		u.Path = "/"
		s.Server = u.String()
		return s, nil
	}
	return nil, fmt.Errorf("a %s snapshot holds no database: a drill needs a postgres, mysql or sqlite snapshot", engineName)
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

func (s *scratch) target(jobs int) (restore.Target, error) {
	return restore.ParseTarget(s.String(), restore.TargetOptions{Jobs: jobs})
}

// open connects to the scratch database, for assertions.
func (s *scratch) open(ctx context.Context) (*sql.DB, error) {
	switch s.Engine {
	case "sqlite":
		return sql.Open("sqlite", "file:"+s.File)
	case "mysql":
		return mysql.OpenDatabase(ctx, s.Server, s.Database)
	default:
		db, err := sql.Open("pgx", s.dsn())
		if err == nil {
			err = db.PingContext(ctx)
		}
		return db, err
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
		db, err := sql.Open("pgx", s.Server)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+s.Database+`" WITH (FORCE)`)
		if err != nil {
			return fmt.Errorf("drop scratch database %s on %s: %w", s.Database, s.Server, err)
		}
		return nil
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
// Ephemeral, starts the PostgreSQL server it lives on.
func prepareScratch(ctx context.Context, engineName, dir, name string, opts Options) (*scratch, *stopper, error) {
	st := &stopper{}
	server := opts.Scratch
	if opts.Ephemeral {
		if engineName != "postgres" {
			return nil, nil, fmt.Errorf("--ephemeral starts a PostgreSQL server; this is a %s snapshot: give --scratch", engineName)
		}
		// Its own private directory under the system temp dir: the work
		// directory is root-only, and the server may run as user postgres.
		srv, err := pgephemeral.Start(ctx, pgephemeral.Options{})
		if err != nil {
			return nil, nil, err
		}
		server, st.dir, st.stop = srv.DSN, srv.Dir, srv.Stop
	}
	sc, err := newScratch(engineName, server, dir, name)
	if err != nil {
		if st.stop != nil {
			st.stop(context.WithoutCancel(ctx))
		}
		return nil, nil, err
	}
	return sc, st, nil
}
