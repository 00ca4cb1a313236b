// Package mysql backs up MariaDB and MySQL databases with mariadb-dump (or
// mysqldump), restores them by executing their statements itself, and
// computes per-table digests of a dump as it passes, and of a live
// database from a fresh dump by the same code.
//
// Each database is dumped on its own, in one transaction
// (--single-transaction: consistent for InnoDB tables, not for MyISAM),
// without CREATE DATABASE or USE, so that it can be loaded into a database
// of another name. Rows come in primary-key order and the dump carries no
// date, so that an unchanged table dumps to the same bytes every night and
// deduplicates. Several databases are dumped one after the other, each in
// its own transaction: they are each consistent, not consistent with one
// another.
//
// Passwords never appear on a command line or in a file: the dump reads
// its password from an option file passed through a pipe
// (--defaults-extra-file=/dev/fd/3), which nothing outlives.
//
// Restores never use the mariadb client: coffer splits a dump into
// statements itself (parse.go) and executes them one by one, as a
// temporary account that may use only the target database (see Target
// and account.go). The dump's DEFINER clauses are taken out, since that
// account may not name another; its views, triggers, routines and events
// are then defined by coffer_definer_<database>@localhost, a locked
// account with a password nobody knows and the rights of that database
// only, which stays as long as the database (DropDatabase, Abort and
// --drop-old drop it with it). A snapshot's objects therefore work within
// their database and can reach nothing else, whoever the snapshot said
// defined them; restore with TrustSnapshot to keep the snapshot's
// definers (the load then runs as the address's user).
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
)

// Format names the stream this package writes: one mariadb-dump/mysqldump
// SQL script per database, each a part named <database>.sql.
const Format = "mysqldump-sql"

// The environment variables a password may come from. mariadb and mysql
// read MYSQL_PWD themselves; the file is coffer's.
const (
	EnvPassword     = "MYSQL_PWD"
	EnvPasswordFile = "COFFER_MYSQL_PASSWORD_FILE"
)

// ConnectTimeout bounds connecting to the server.
const ConnectTimeout = 10 * time.Second

// systemDatabases are never dumped with AllDatabases.
var systemDatabases = []string{"information_schema", "performance_schema", "sys", "mysql"}

// dumpFlags make a dump consistent, complete and the same bytes for the
// same data. No --databases: the dump has no CREATE DATABASE or USE.
var dumpFlags = []string{
	"--single-transaction", "--routines", "--triggers", "--events",
	"--hex-blob", "--skip-dump-date", "--default-character-set=utf8mb4",
	"--order-by-primary", "--no-tablespaces", "--tz-utc",
	"--max-allowed-packet=1G",
}

// conn is where a server is and how to reach it.
type conn struct {
	user, password string
	host           string
	port           int
	socket         string // a Unix socket's path, instead of host and port
	db             string
}

// parseDSN reads mysql://user@host:port/db (or mariadb://), or
// mysql://user@/db?socket=/run/mysqld/mysqld.sock for the server's Unix
// socket; ?defaults-file=PATH names an option file (~/.my.cnf style) for
// what the address leaves out, read by newConn. A password in the
// address is refused: it would show in ps and in shell history.
func parseDSN(dsn string) (*conn, error) {
	c, _, _, err := parseAddress(dsn)
	return c, err
}

func parseAddress(dsn string) (c *conn, gave addressParts, defaults string, err error) {
	if u, perr := url.Parse(dsn); perr == nil && u.Query().Has(DefaultsParam) && u.User.Username() == "" {
		// The option file may give the user; ParseAddress wants one.
		gave.user = false
		u.User = url.User("-")
		dsn = u.String()
	} else {
		gave.user = true
	}
	a, err := engine.ParseAddress(dsn, "mysql", []string{"mysql", "mariadb"}, 3306, EnvPassword+", in a file named by "+EnvPasswordFile+" or in an option file (?"+DefaultsParam+"=PATH)")
	if err != nil {
		return nil, gave, "", err
	}
	gave.host, gave.port = a.URL.Host != "" && a.URL.Hostname() != "", a.URL.Port() != ""
	c = &conn{user: a.User, host: a.Host, port: a.Port, db: a.DB}
	if !gave.user {
		c.user = ""
	}
	for k, v := range a.Query {
		switch {
		case k == DefaultsParam && len(v) == 1 && v[0] != "":
			defaults = v[0]
		case k == DefaultsParam:
			return nil, gave, "", fmt.Errorf("mysql address %s: give one option file, e.g. ?%s=/home/me/.my.cnf", engine.Redact(a.URL), DefaultsParam)
		case k != "socket":
			return nil, gave, "", fmt.Errorf("mysql address %s: option %q is not supported (only socket=PATH and %s=PATH)", engine.Redact(a.URL), k, DefaultsParam)
		case len(v) != 1 || !filepath.IsAbs(v[0]) || a.URL.Host != "":
			return nil, gave, "", fmt.Errorf("mysql address %s: give one socket as an absolute path, with no host before the path, e.g. mysql://USER@/DB?socket=/run/mysqld/mysqld.sock", engine.Redact(a.URL))
		default:
			c.socket = filepath.Clean(v[0])
			gave.host = true
		}
	}
	return c, gave, defaults, nil
}

func redact(u *url.URL) string { return engine.Redact(u) }

// password reads the password from the environment: MYSQL_PWD, or the
// file named by COFFER_MYSQL_PASSWORD_FILE. None is an empty password.
func password() (string, error) {
	env, file := os.Getenv(EnvPassword), os.Getenv(EnvPasswordFile)
	if env != "" && file != "" {
		return "", fmt.Errorf("both %s and %s are set: set only one", EnvPassword, EnvPasswordFile)
	}
	if file == "" {
		return env, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the MySQL password from %s (%s): %w", file, EnvPasswordFile, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// newConn reads dsn, the password from the environment, and the option
// file the address names, if any.
func newConn(ctx context.Context, dsn string) (*conn, error) {
	c, gave, defaults, err := parseAddress(dsn)
	if err != nil {
		return nil, err
	}
	if c.password, err = password(); err != nil {
		return nil, err
	}
	if defaults != "" {
		o, err := readDefaults(ctx, defaults)
		if err != nil {
			return nil, err
		}
		c.applyDefaults(o, gave)
	}
	if c.user == "" {
		return nil, fmt.Errorf("mysql address %s: give the user, in the address (mysql://USER@HOST:3306/DATABASE) or as user= in the option file's [client] group", c)
	}
	return c, nil
}

// addr names the server in messages: host:port, or the socket's path.
func (c *conn) addr() string {
	if c.socket != "" {
		return c.socket
	}
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

// String names the server and database, without secrets.
func (c *conn) String() string {
	if c.socket != "" {
		return "mysql://" + url.User(c.user).String() + "@/" + c.db + "?" + url.Values{"socket": {c.socket}}.Encode()
	}
	return "mysql://" + url.User(c.user).String() + "@" + c.addr() + "/" + c.db
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// open connects to the server as the address's user and explains the
// usual failures.
func (c *conn) open(ctx context.Context) (*sql.DB, error) {
	return c.openAs(ctx, c.user, c.password, "")
}

// openAs connects as user to database dbName (none when empty). Queries
// without arguments go to the server as they are: no client-side
// interpolation, one statement each (no multiStatements), and no LOAD
// DATA LOCAL reads a file here.
func (c *conn) openAs(ctx context.Context, user, password, dbName string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", c.addr(), dbName
	if c.socket != "" {
		cfg.Net = "unix"
	}
	cfg.Timeout, cfg.Logger = ConnectTimeout, nopLogger{}
	cfg.InterpolateParams, cfg.MultiStatements, cfg.AllowAllFiles = false, false, false
	cfg.MaxAllowedPacket = 0 // the server's limit, as the mariadb client's 1G was
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	pctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		if ctx.Err() == nil && pctx.Err() != nil {
			return nil, fmt.Errorf("cannot reach the MySQL/MariaDB server at %s: no answer within %s; is it running, and are the host and port right?", c.addr(), ConnectTimeout)
		}
		return nil, c.explain(err)
	}
	return db, nil
}

func (c *conn) explain(err error) error {
	var me *mysql.MySQLError
	var ne net.Error
	switch {
	case errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698):
		return fmt.Errorf("access denied for user %q at %s: check the user in the address and the password in %s or the file named by %s (%w)", c.user, c.addr(), EnvPassword, EnvPasswordFile, err)
	case errors.As(err, &me):
		return fmt.Errorf("MySQL server at %s: %w", c.addr(), err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach the MySQL/MariaDB server at %s: %w; is it running, and are the host and port right?", c.addr(), err)
	}
	return fmt.Errorf("connect to MySQL/MariaDB at %s: %w", c.addr(), err)
}

// serverVersion reads the version, e.g. "MariaDB 10.11.19" or "MySQL 8.0.36".
func serverVersion(ctx context.Context, db *sql.DB) (string, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return "", err
	}
	if i := strings.Index(v, "-MariaDB"); i >= 0 {
		return "MariaDB " + v[:i], nil
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	return "MySQL " + v, nil
}

func listDatabases(ctx context.Context, db *sql.DB) ([]string, error) {
	return engine.QueryStrings(ctx, db, "SHOW DATABASES")
}

// tools is the dump program found on PATH. coffer loads dumps itself,
// statement by statement: the mariadb client is never used, because it
// runs client commands (\!, system, source…) that a dump may hold.
type tools struct {
	dump      string
	mysqlDump bool // Oracle's mysqldump, not MariaDB's
}

func findTools(ctx context.Context) (*tools, error) {
	t := &tools{}
	var err error
	if t.dump, err = lookPath("mariadb-dump", "mysqldump"); err != nil {
		return nil, err
	}
	out, err := command.New(ctx, command.Env(nil), t.dump, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s --version: %w", t.dump, err)
	}
	t.mysqlDump = !strings.Contains(string(out), "MariaDB")
	return t, nil
}

func lookPath(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("neither %s is on PATH: install the MariaDB or MySQL client programs (e.g. apt install mariadb-client)", strings.Join(names, " nor "))
}

// optionFD is the descriptor the dump reads its option file from: the
// first of cmd.ExtraFiles.
const optionFD = 3

// connArgs are the options every command gets. The option file, when
// there is a password, must come first; it is read from a pipe, so no
// file holds the password, not even after kill -9.
func (c *conn) connArgs() []string {
	var a []string
	if c.password != "" {
		a = append(a, "--defaults-extra-file=/dev/fd/"+strconv.Itoa(optionFD))
	}
	if c.socket != "" {
		return append(a, "--protocol=SOCKET", "--socket="+c.socket, "--user="+c.user)
	}
	return append(a, "--protocol=TCP", "--host="+c.host, "--port="+strconv.Itoa(c.port), "--user="+c.user)
}

// optionPipe returns the read end of a pipe that holds the option file
// with the password, for cmd.ExtraFiles; nil when there is no password.
// The caller closes it once the command has started.
func (c *conn) optionPipe() (*os.File, error) {
	if c.password == "" {
		return nil, nil
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	cnf := "[client]\npassword=\"" + r.Replace(c.password) + "\"\n"
	if len(cnf) > 4096 {
		return nil, fmt.Errorf("the MySQL password is longer than 4000 bytes")
	}
	pr, err := command.SecretPipe(cnf)
	if err != nil {
		return nil, fmt.Errorf("pass the password to the dump: %w", err)
	}
	return pr, nil
}

// dumpArgs is the command line of one database's dump. The name comes
// after "--": a database named --result-file=/etc/x is a name, not an
// option.
func (c *conn) dumpArgs(t *tools, db string, extra ...string) []string {
	a := append([]string{t.dump}, c.connArgs()...)
	a = append(a, dumpFlags...)
	a = append(a, extra...)
	if t.mysqlDump {
		a = append(a, "--set-gtid-purged=OFF")
	}
	return append(a, "--", db)
}

// startDump runs the dump of db and returns its stream, digested into dg
// under label (the database's name in the snapshot). done is called with
// the dump's size when it ended complete.
//
// extra flags go after the usual ones, and win over them.
func (c *conn) startDump(ctx context.Context, t *tools, db, label string, dg *engine.Digester, done func(int64), extra ...string) (io.ReadCloser, error) {
	opt, err := c.optionPipe()
	if err != nil {
		return nil, err
	}
	cmd := command.New(ctx, command.Env(nil), c.dumpArgs(t, db, extra...)...)
	if opt != nil {
		cmd.ExtraFiles = []*os.File{opt}
	}
	s, err := command.StartCmd(cmd, fmt.Sprintf("%s %s", filepath.Base(t.dump), db))
	if opt != nil {
		opt.Close() // the child has its own copy
	}
	if err != nil {
		return nil, err
	}
	return &dumpStream{digestReader: digestReader{r: s, p: newParser(label, dg), done: done}, s: s}, nil
}

type dumpStream struct {
	digestReader
	s *command.Stream
}

func (d *dumpStream) Close() error { return d.s.Close() }

// Options choose what Open dumps.
type Options struct {
	// AllDatabases dumps every database the user can see but
	// information_schema, performance_schema, sys and mysql; the
	// address's database, if any, is ignored.
	AllDatabases bool
	// Databases, when not empty, are dumped instead of the address's.
	Databases []string
}

// Source is a checked plan to dump one or several databases of a server.
type Source struct {
	c       *conn
	t       *tools
	version string
	dbs     []string
	dg      *engine.Digester
	sizes   []int64 // per part, -1 until it ended complete
}

// Open checks, before anything is written, that the server at dsn
// (mysql://USER@HOST:PORT/DATABASE) answers, that the user may log in,
// that the databases exist and that the dump program is
// installed. The password comes from MYSQL_PWD or the file named by
// COFFER_MYSQL_PASSWORD_FILE.
func Open(ctx context.Context, dsn string, opts Options) (*Source, error) {
	c, err := newConn(ctx, dsn)
	if err != nil {
		return nil, err
	}
	t, err := findTools(ctx)
	if err != nil {
		return nil, err
	}
	db, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	s := &Source{c: c, t: t, dg: engine.NewDigester()}
	if s.version, err = serverVersion(ctx, db); err != nil {
		return nil, fmt.Errorf("MySQL server at %s: %w", c.addr(), err)
	}
	all, err := listDatabases(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("list the databases at %s: %w", c.addr(), err)
	}
	switch {
	case opts.AllDatabases:
		for _, d := range all {
			if !slices.Contains(systemDatabases, d) {
				s.dbs = append(s.dbs, d)
			}
		}
		if len(s.dbs) == 0 {
			return nil, fmt.Errorf("the server at %s has no database to back up that user %q can see", c.addr(), c.user)
		}
	case len(opts.Databases) > 0:
		s.dbs = slices.Clone(opts.Databases)
	case c.db != "":
		s.dbs = []string{c.db}
	default:
		return nil, fmt.Errorf("mysql address %s names no database: give one (mysql://USER@HOST:3306/DATABASE) or back up all databases", c)
	}
	for _, d := range s.dbs {
		if !slices.Contains(all, d) {
			if len(all) > 20 {
				all = append(all[:20], "…")
			}
			return nil, fmt.Errorf("database %q does not exist at %s, or user %q may not see it (it sees: %s)", d, c.addr(), c.user, strings.Join(all, ", "))
		}
	}
	s.sizes = make([]int64, len(s.dbs))
	for i := range s.sizes {
		s.sizes[i] = -1
	}
	return s, nil
}

// ServerVersion is the server's product and version, e.g. "MariaDB 10.11.19".
func (s *Source) ServerVersion() string { return s.version }

// Databases are the databases dumped, in order.
func (s *Source) Databases() []string { return slices.Clone(s.dbs) }

// Parts are the dumps, one per database, named <database>.sql, to be read
// in order (engine.NewConcat). Each computes its tables' digests as it
// passes and fails at its end if the dump is incomplete.
func (s *Source) Parts() []engine.PartSource {
	out := make([]engine.PartSource, len(s.dbs))
	for i, db := range s.dbs {
		out[i] = engine.PartSource{Name: db + ".sql", Open: func(ctx context.Context) (io.ReadCloser, error) {
			s.sizes[i] = -1
			return s.c.startDump(ctx, s.t, db, db, s.dg, func(n int64) { s.sizes[i] = n })
		}}
	}
	return out
}

// Report is the per-table digests ("database.table") and the parts of the
// stream. It is complete once every part has been read to its end.
func (s *Source) Report() engine.Report {
	rep := engine.Report{Tables: s.dg.Result()}
	var off int64
	for i, db := range s.dbs {
		if s.sizes[i] < 0 {
			break
		}
		rep.Parts = append(rep.Parts, engine.Part{Name: db + ".sql", Offset: off, Size: s.sizes[i]})
		off += s.sizes[i]
	}
	return rep
}

// Digests computes the per-table digests of a live database by dumping it
// as a backup does and discarding the bytes. Without a database in dsn it
// digests all databases but the system ones.
func Digests(ctx context.Context, dsn string) ([]engine.TableDigest, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, dsn, Options{AllDatabases: c.db == ""})
	if err != nil {
		return nil, err
	}
	for _, p := range s.Parts() {
		if err := p.Drain(ctx); err != nil {
			return nil, err
		}
	}
	return s.dg.Result(), nil
}
