// Package postgres backs up PostgreSQL servers with pg_dump and
// pg_dumpall, restores them with pg_restore, and computes per-table
// digests of a dump as it passes, and of a live database from a fresh
// dump by the same code.
//
// Each database is dumped in the custom format without compression
// (pg_dump -Fc -Z0): unchanged rows give unchanged bytes, which the
// repository deduplicates across nights, and pg_restore -j restores it in
// parallel. The server's roles and tablespaces come first, from
// pg_dumpall --globals-only. Each database's dump is one consistent
// snapshot of it; several databases are dumped one after the other, so
// they are not consistent with one another.
//
// A snapshot is input from an adversary (the backup host may be one):
// restoring never gives its bytes to psql or a shell, loads them as a
// throwaway role that is not a superuser, and applies owners, grants and
// roles with statements coffer builds itself (see Target).
//
// Passwords never appear on a command line or in an address: the child
// programs get the server, port, user and database through PGHOST,
// PGPORT, PGUSER and PGDATABASE, and PGPASSWORD or PGPASSFILE (or
// ~/.pgpass) pass through from coffer's environment.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
	"github.com/coffer-backup/coffer/engine/pgaddr"
)

// Format names the stream this package writes: the globals as SQL
// (globals.sql), then one pg_dump custom-format archive, without
// compression, per database (<database>.pgdump).
const Format = "pg_dump-custom"

// GlobalsPart names the part that holds the server's roles and
// tablespaces.
const GlobalsPart = "globals.sql"

// partSuffix ends the name of a database's part.
const partSuffix = ".pgdump"

// ConnectTimeout bounds connecting to the server.
const ConnectTimeout = 10 * time.Second

// conn is where a server is and how to reach it.
type conn struct {
	// password, when set, is given to coffer's connections and child
	// programs instead of PGPASSWORD or the password file.
	password string
	user     string
	host     string
	port     int
	db       string
	sslmode  string
}

// parseDSN reads a server's address in any form libpq takes (a URL, a
// conninfo string or a bare database name, with PGHOST, PGPORT, PGUSER,
// PGDATABASE and PGSSLMODE for what it leaves out). A password in it is
// refused: it would show in ps and in shell history.
func parseDSN(dsn string) (*conn, error) {
	a, err := pgaddr.Parse(dsn, os.Getenv)
	if err != nil {
		return nil, err
	}
	return &conn{user: a.User, host: a.Host, port: a.Port, db: a.DB, sslmode: a.SSLMode}, nil
}

// socket reports whether the address is a Unix socket directory.
func (c *conn) socket() bool { return strings.HasPrefix(c.host, "/") }

func redact(u *url.URL) string { return engine.Redact(u) }

// addr names the server in messages: host:port, or the socket's path.
func (c *conn) addr() string {
	if c.socket() {
		return filepath.Join(c.host, ".s.PGSQL."+strconv.Itoa(c.port))
	}
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

// url is the address of database db, without secrets.
func (c *conn) url(db string) *url.URL {
	if c.socket() {
		return &url.URL{Scheme: "postgres", User: url.User(c.user), Path: "/" + db,
			RawQuery: url.Values{"host": {c.host}, "port": {strconv.Itoa(c.port)}}.Encode()}
	}
	return &url.URL{Scheme: "postgres", User: url.User(c.user), Host: c.addr(), Path: "/" + db}
}

// String names the server and database, without secrets.
func (c *conn) String() string { return c.url(c.db).String() }

// connect opens a connection to database db and explains the usual
// failures. The password comes, as for libpq, from PGPASSWORD or the
// password file.
func (c *conn) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := c.config(db)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	pc, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		if ctx.Err() == nil && cctx.Err() != nil {
			return nil, fmt.Errorf("cannot reach the PostgreSQL server at %s: no answer within %s; is it running, and are the host and port right?", c.addr(), ConnectTimeout)
		}
		return nil, c.explain(err, db)
	}
	return pc, nil
}

// config is how coffer connects to database db.
func (c *conn) config(db string) (*pgx.ConnConfig, error) {
	u := c.url(db)
	q := u.Query()
	q.Set("connect_timeout", strconv.Itoa(int(ConnectTimeout/time.Second)))
	if c.sslmode != "" {
		q.Set("sslmode", c.sslmode)
	}
	u.RawQuery = q.Encode()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres address %s: %w", c, err)
	}
	// A restored database is the snapshot's: its owner may have set a
	// search_path (ALTER DATABASE … SET) that puts its own functions and
	// operators before the system's. Settings sent at connection time win
	// over those, so every name coffer's statements use resolves in
	// pg_catalog, and temporary objects come last. String literals that
	// coffer builds double their quotes and nothing else.
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	cfg.RuntimeParams["standard_conforming_strings"] = "on"
	if c.password != "" {
		cfg.Password = c.password
	}
	return cfg, nil
}

func (c *conn) explain(err error, db string) error {
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &pe) && pe.Code == "28P01":
		return fmt.Errorf("password authentication failed for user %q at %s: check the user in the address and the password in PGPASSWORD or the password file (~/.pgpass, or PGPASSFILE) (%s)", c.user, c.addr(), pe.Message)
	case errors.As(err, &pe) && pe.Code == "28000" && strings.Contains(pe.Message, "does not exist"):
		return fmt.Errorf("user %q cannot log in at %s: %s; check the user in the address", c.user, c.addr(), pe.Message)
	case errors.As(err, &pe) && pe.Code == "28000":
		return fmt.Errorf("user %q may not connect to database %q at %s: %s; allow it in pg_hba.conf or use another user", c.user, db, c.addr(), pe.Message)
	case errors.As(err, &pe) && pe.Code == "3D000":
		return fmt.Errorf("database %q does not exist at %s: check its name (psql -l lists them)", db, c.addr())
	case errors.As(err, &pe):
		return fmt.Errorf("PostgreSQL server at %s: %s (SQLSTATE %s)", c.addr(), pe.Message, pe.Code)
	case errors.As(err, &ne), pgconn.Timeout(err):
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe // "dial tcp …: connection refused", without pgx's per-attempt lines
		}
		return fmt.Errorf("cannot reach the PostgreSQL server at %s: %w; is it running, and are the host and port right?", c.addr(), err)
	}
	return fmt.Errorf("connect to PostgreSQL at %s: %w", c.addr(), err)
}

// env is the environment of a PostgreSQL client program connected to
// database db, built from nothing (command.Env): the server, port, user
// and database, and the password from PGPASSWORD or the password file
// (PGPASSFILE, else ~/.pgpass), which the program needs. Nothing else of
// coffer's environment reaches it (no identity, no storage credentials,
// no PGSERVICE or PGOPTIONS that would override the address). PGTZ fixes
// the time zone that timestamps are written in, so that digests do not
// depend on the server's default. The database is a value of PGDATABASE,
// which libpq never reads as a connection string.
func (c *conn) env(db string) []string { return c.envAs(db, c.user, c.password) }

// envAs is env for another user of the same server, e.g. the role a
// snapshot is loaded as: with a password, it is the only one the program
// gets (PGPASSWORD), and coffer's own password and password file do not
// reach it.
func (c *conn) envAs(db, user, password string) []string {
	extra := []string{"PGHOST=" + c.host, "PGPORT=" + strconv.Itoa(c.port), "PGUSER=" + user, "PGDATABASE=" + db,
		"PGTZ=UTC", "PGAPPNAME=coffer", "PGCONNECT_TIMEOUT=" + strconv.Itoa(int(ConnectTimeout/time.Second))}
	if c.sslmode != "" {
		extra = append(extra, "PGSSLMODE="+c.sslmode)
	}
	pass := []string{"PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL"}
	switch {
	case password != "":
		extra = append(extra, "PGPASSWORD="+password)
	default:
		pass = append(pass, "PGPASSWORD", "PGPASSFILE")
		if os.Getenv("PGPASSFILE") == "" {
			if home, err := os.UserHomeDir(); err == nil {
				extra = append(extra, "PGPASSFILE="+filepath.Join(home, ".pgpass"))
			}
		}
	}
	return command.Env(pass, extra...)
}

// server is what Open learns about the server.
type server struct {
	version   string // e.g. "PostgreSQL 15.20"
	major     int
	superuser bool
}

func (c *conn) describe(ctx context.Context, pc *pgx.Conn) (*server, error) {
	var v string
	var num int
	s := &server{}
	if err := pc.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)").Scan(&v, &num, &s.superuser); err != nil {
		return nil, fmt.Errorf("PostgreSQL server at %s: read its version: %w", c.addr(), err)
	}
	s.major = num / 10000
	if f := strings.Fields(v); len(f) > 0 {
		v = f[0]
	}
	s.version = "PostgreSQL " + v
	return s, nil
}

func listDatabases(ctx context.Context, pc *pgx.Conn) ([]string, error) {
	rows, err := pc.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Options choose what Open dumps.
type Options struct {
	// AllDatabases dumps every database that is not a template and
	// allows connections; the address's database is then only used to
	// connect (postgres when it names none).
	AllDatabases bool
	// Databases, when not empty, are dumped instead of the address's.
	Databases []string
}

// Source is a checked plan to dump the globals and one or several
// databases of a server.
type Source struct {
	c     *conn
	t     *tools
	srv   *server
	dbs   []string
	notes []string
	dg    *engine.Digester
	sizes []int64 // per part (globals first), -1 until it ended complete
}

// Open checks, before anything is written, that the server at dsn
// (postgres://USER@HOST:PORT/DATABASE) answers, that the user may log in,
// that the databases exist, and that pg_dump and pg_dumpall are installed
// and not older than the server.
func Open(ctx context.Context, dsn string, opts Options) (*Source, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	connectDB := c.db
	if connectDB == "" {
		if !opts.AllDatabases && len(opts.Databases) == 0 {
			return nil, fmt.Errorf("postgres address %s names no database: give one (postgres://USER@HOST:5432/DATABASE) or back up all databases", c)
		}
		connectDB = "postgres"
	}
	pc, err := c.connect(ctx, connectDB)
	if err != nil {
		return nil, err
	}
	defer pc.Close(context.Background())
	s := &Source{c: c, dg: engine.NewDigester()}
	if s.srv, err = c.describe(ctx, pc); err != nil {
		return nil, err
	}
	all, err := listDatabases(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("list the databases at %s: %w", c.addr(), err)
	}
	switch {
	case opts.AllDatabases:
		s.dbs = all
	case len(opts.Databases) > 0:
		s.dbs = slices.Clone(opts.Databases)
	default:
		s.dbs = []string{c.db}
	}
	if len(s.dbs) == 0 {
		return nil, fmt.Errorf("the server at %s has no database to back up", c.addr())
	}
	for _, d := range s.dbs {
		if !slices.Contains(all, d) {
			return nil, fmt.Errorf("database %q does not exist at %s, or does not allow connections (it has: %s)", d, c.addr(), strings.Join(all, ", "))
		}
	}
	if s.t, err = findTools(ctx, s.srv.major, "pg_dump", "pg_dumpall"); err != nil {
		return nil, err
	}
	if !s.srv.superuser {
		s.notes = append(s.notes, fmt.Sprintf("user %q is not a superuser: the roles are backed up without their passwords (pg_dumpall --no-role-passwords)", c.user))
	}
	s.sizes = make([]int64, 1+len(s.dbs))
	for i := range s.sizes {
		s.sizes[i] = -1
	}
	return s, nil
}

// ServerVersion is the server's product and version, e.g. "PostgreSQL 15.20".
func (s *Source) ServerVersion() string { return s.srv.version }

// Databases are the databases dumped, in order.
func (s *Source) Databases() []string { return slices.Clone(s.dbs) }

// Notes are what the user should know about the backup, e.g. that role
// passwords are left out.
func (s *Source) Notes() []string { return slices.Clone(s.notes) }

// Parts are the globals (globals.sql) and then each database's dump
// (<database>.pgdump), to be read in order (engine.NewConcat). A database
// part computes its tables' digests as it passes and fails if the dump
// fails or is incomplete.
func (s *Source) Parts() []engine.PartSource {
	out := []engine.PartSource{{Name: GlobalsPart, Open: func(ctx context.Context) (io.ReadCloser, error) {
		s.sizes[0] = -1
		return s.startGlobals(ctx, func(n int64) { s.sizes[0] = n })
	}}}
	for i, db := range s.dbs {
		out = append(out, engine.PartSource{Name: db + partSuffix, Open: func(ctx context.Context) (io.ReadCloser, error) {
			s.sizes[i+1] = -1
			return startDump(ctx, s.c, s.t, db, db, s.dg, func(n int64) { s.sizes[i+1] = n }, nil)
		}})
	}
	return out
}

// Report is the per-table digests ("database.schema.table") and the
// parts of the stream. It is complete once every part has been read to
// its end.
func (s *Source) Report() engine.Report {
	rep := engine.Report{Tables: s.dg.Result()}
	var off int64
	for i, p := range s.Parts() {
		if s.sizes[i] < 0 {
			break
		}
		rep.Parts = append(rep.Parts, engine.Part{Name: p.Name, Offset: off, Size: s.sizes[i]})
		off += s.sizes[i]
	}
	return rep
}

func (s *Source) startGlobals(ctx context.Context, ended func(int64)) (io.ReadCloser, error) {
	args := []string{"--globals-only", "--no-sync", "--no-password"}
	if !s.srv.superuser {
		args = append(args, "--no-role-passwords")
	}
	// pg_dumpall connects to the postgres database (or template1) of its
	// own accord; PGDATABASE names one that exists, never a name from
	// the server's list, which may be anything.
	connectDB := s.c.db
	if connectDB == "" {
		connectDB = "postgres"
	}
	st, err := command.StartArgs(ctx, "pg_dumpall --globals-only", s.c.env(connectDB), append([]string{s.t.path["pg_dumpall"]}, args...)...)
	if err != nil {
		return nil, err
	}
	return &countStream{Stream: st, ended: ended}, nil
}

// dumpArgs make a dump that deduplicates (no compression) and restores
// in parallel (custom format).
var dumpArgs = []string{"--format=custom", "--compress=0", "--no-sync", "--no-password"}

// startDump runs pg_dump of db and returns its stream, digested into dg
// under label (the database's name in the snapshot).
//
// env is pg_dump's environment (nil: c.env(db), the address's user).
func startDump(ctx context.Context, c *conn, t *tools, db, label string, dg *engine.Digester, ended func(int64), env []string, args ...string) (io.ReadCloser, error) {
	if env == nil {
		env = c.env(db)
	}
	st, err := command.StartArgs(ctx, "pg_dump "+db, env, append(append([]string{t.path["pg_dump"]}, dumpArgs...), args...)...)
	if err != nil {
		return nil, err
	}
	return &dumpStream{digestReader: newDigestReader(st, label, dg, ended), s: st}, nil
}

type dumpStream struct {
	*digestReader
	s *command.Stream
}

func (d *dumpStream) Close() error {
	err := d.s.Close()
	d.digestReader.Close()
	return err
}

// countStream counts a command's output and reports its size once it
// ended complete.
type countStream struct {
	*command.Stream
	n     int64
	ended func(int64)
}

func (c *countStream) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	c.n += int64(n)
	if err == io.EOF && c.ended != nil {
		c.ended(c.n)
		c.ended = nil
	}
	return n, err
}

// Digests computes the per-table digests of a live database by dumping
// it as a backup does and discarding the bytes. Without a database in dsn
// it digests every database that is not a template.
func Digests(ctx context.Context, dsn string) ([]engine.TableDigest, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, dsn, Options{AllDatabases: c.db == ""})
	if err != nil {
		return nil, err
	}
	for _, p := range s.Parts()[1:] {
		if err := p.Drain(ctx); err != nil {
			return nil, err
		}
	}
	return s.dg.Result(), nil
}
