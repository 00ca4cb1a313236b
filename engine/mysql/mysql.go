// Package mysql backs up MariaDB and MySQL databases with mariadb-dump (or
// mysqldump), restores them with the mariadb (or mysql) client, and
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
// Passwords never appear on a command line: the dump and the client read
// theirs from a private option file (--defaults-extra-file, mode 0600)
// that is removed when the command ends.
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
	db             string
}

// parseDSN reads mysql://user@host:port/db (or mariadb://). A password in
// it is refused: it would show in ps and in shell history.
func parseDSN(dsn string) (*conn, error) {
	a, err := engine.ParseAddress(dsn, "mysql", []string{"mysql", "mariadb"}, 3306, EnvPassword+" or in a file named by "+EnvPasswordFile)
	if err != nil {
		return nil, err
	}
	if len(a.Query) > 0 {
		return nil, fmt.Errorf("mysql address %s: options after '?' are not supported", engine.Redact(a.URL))
	}
	return &conn{user: a.User, host: a.Host, port: a.Port, db: a.DB}, nil
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

func newConn(dsn string) (*conn, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if c.password, err = password(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *conn) addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// String names the server and database, without secrets.
func (c *conn) String() string {
	return "mysql://" + url.User(c.user).String() + "@" + c.addr() + "/" + c.db
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// open connects to the server and explains the usual failures.
func (c *conn) open(ctx context.Context) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = c.user, c.password, "tcp", c.addr()
	cfg.Timeout, cfg.Logger = ConnectTimeout, nopLogger{}
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

// tools are the dump program and the client found on PATH.
type tools struct {
	dump, client string
	mysqlDump    bool // Oracle's mysqldump, not MariaDB's
}

func findTools(ctx context.Context) (*tools, error) {
	t := &tools{}
	var err error
	if t.dump, err = lookPath("mariadb-dump", "mysqldump"); err != nil {
		return nil, err
	}
	if t.client, err = lookPath("mariadb", "mysql"); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, t.dump, "--version").Output()
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

// connArgs are the options every command gets. The option file, when
// there is one, must come first.
func (c *conn) connArgs(optFile string) []string {
	var a []string
	if optFile != "" {
		a = append(a, "--defaults-extra-file="+optFile)
	}
	return append(a, "--protocol=TCP", "--host="+c.host, "--port="+strconv.Itoa(c.port), "--user="+c.user)
}

// optionFile writes the password into a private option file and returns
// its path and how to remove it; no file when there is no password.
func (c *conn) optionFile() (string, func(), error) {
	if c.password == "" {
		return "", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "coffer-mysql-")
	if err != nil {
		return "", nil, err
	}
	remove := func() { os.RemoveAll(dir) }
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	p := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(p, []byte("[client]\npassword=\""+r.Replace(c.password)+"\"\n"), 0o600); err != nil {
		remove()
		return "", nil, err
	}
	return p, remove, nil
}

// dumpArgs is the command line of one database's dump.
func (c *conn) dumpArgs(t *tools, optFile, db string) []string {
	a := append([]string{t.dump}, c.connArgs(optFile)...)
	a = append(a, dumpFlags...)
	if t.mysqlDump {
		a = append(a, "--set-gtid-purged=OFF")
	}
	return append(a, db)
}

// startDump runs the dump of db and returns its stream, digested into dg
// under label (the database's name in the snapshot). done is called with
// the dump's size when it ended complete.
func (c *conn) startDump(ctx context.Context, t *tools, db, label string, dg *engine.Digester, done func(int64)) (io.ReadCloser, error) {
	optFile, remove, err := c.optionFile()
	if err != nil {
		return nil, err
	}
	s, err := command.StartArgs(ctx, fmt.Sprintf("%s %s", filepath.Base(t.dump), db), command.Env(nil), c.dumpArgs(t, optFile, db)...)
	if err != nil {
		remove()
		return nil, err
	}
	return &dumpStream{digestReader: digestReader{r: s, p: newParser(label, dg), done: done}, s: s, remove: remove}, nil
}

type dumpStream struct {
	digestReader
	s      *command.Stream
	remove func()
}

func (d *dumpStream) Close() error {
	err := d.s.Close()
	d.remove()
	return err
}

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
// that the databases exist and that the dump and client programs are
// installed. The password comes from MYSQL_PWD or the file named by
// COFFER_MYSQL_PASSWORD_FILE.
func Open(ctx context.Context, dsn string, opts Options) (*Source, error) {
	c, err := newConn(dsn)
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
