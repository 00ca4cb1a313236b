package mysql

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
)

// Accounts coffer makes on a target server, and only these, begin with
// these prefixes:
//
//   - coffer_load_<random>@<coffer's host> loads one database of a
//     snapshot. It has a random password that only coffer's memory holds
//     (the server gets its hash) and ALL PRIVILEGES on that database, and
//     nothing else: no global privilege, no other database. It is dropped
//     when the load ends; one that a killed coffer left behind is dropped
//     by the next load on that server (see sweepLoadAccounts), and is
//     harmless meanwhile: nobody knows its password.
//   - coffer_definer_<database>@localhost is the definer of the views,
//     triggers, routines and events a load created: locked, with a
//     password nobody knows, and ALL PRIVILEGES on that database only. It
//     stays while the database does (DropDatabase, Abort and --drop-old
//     drop it with the database).
const (
	loadPrefix    = "coffer_load_"
	definerPrefix = "coffer_definer_"
	definerHost   = "localhost"
)

// account is a MariaDB/MySQL account.
type account struct{ user, host string }

// sql is the account as a statement names it.
func (a account) sql() string { return quoteIdent(a.user) + "@" + quoteIdent(a.host) }

// definer is the account as information_schema's DEFINER columns write it.
func (a account) definer() string { return a.user + "@" + a.host }

// clause is the account's DEFINER clause as SHOW CREATE writes it.
func (a account) clause() string { return "DEFINER=" + a.sql() }

// maxUser is the longest account name MySQL 8 takes (MariaDB takes 80).
const maxUser = 32

// definerFor is the definer account of the objects of database db:
// coffer_definer_<db> when that fits in maxUser, otherwise
// coffer_definer_<first 4 characters of db>_<12 hex digits of SHA-256 of db>.
// A readable suffix is at most 16 characters and a hashed one exactly 17,
// so no database name can be chosen to share another's definer (which
// would give the objects of one the rights of the other).
func definerFor(db string) account {
	if utf8.RuneCountInString(db) <= maxUser-len(definerPrefix)-1 {
		return account{definerPrefix + db, definerHost}
	}
	sum := sha256.Sum256([]byte(db))
	return account{definerPrefix + string([]rune(db)[:4]) + "_" + hex.EncodeToString(sum[:6]), definerHost}
}

// legacyDefinerFor is the name earlier versions of coffer gave every definer,
// for dropping what they made.
func legacyDefinerFor(db string) account { return account{definerPrefix + db, definerHost} }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// grantOn names database db in GRANT … ON db.*, where _ and % are
// wildcards: a grant on `coffer_t` unescaped would also grant coffer-t
// and coffer9t.
func grantOn(db string) string { return quoteIdent(grantEscape(db)) + ".*" }

func grantEscape(db string) string {
	return strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(db)
}

// grantable reports whether a GRANT can name database db alone: the
// server refuses a name longer than 64 characters once _ and % are
// escaped, and an unescaped one would grant other databases too.
func grantable(db string) bool { return utf8.RuneCountInString(grantEscape(db)) <= maxName }

// notGrantable explains why a database cannot be loaded by a limited
// account.
func notGrantable(db string) error {
	return fmt.Errorf("the name of database %q is too long to grant a limited account the use of it alone (with its _ and %% escaped it has more than %d characters): restore into a shorter name, or, only if you trust the snapshot, restore with --trust-snapshot", db, maxName)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// nativeHash is password's mysql_native_password hash, so that the
// password itself never reaches the server's logs.
func nativeHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// admin is one connection as the address's user, which makes and drops
// coffer's accounts and databases and holds the named locks that say a
// load account or a new database is in use.
type admin struct {
	c       *conn
	db      *sql.DB
	conn    *sql.Conn
	host    string // the host the server sees coffer connect from
	mariadb bool
}

func (c *conn) admin(ctx context.Context) (*admin, error) {
	db, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	a := &admin{c: c, db: db}
	if a.conn, err = db.Conn(ctx); err != nil {
		db.Close()
		return nil, c.explain(err)
	}
	var user, version string
	if err := a.conn.QueryRowContext(ctx, "SELECT USER(), VERSION()").Scan(&user, &version); err != nil {
		a.close()
		return nil, fmt.Errorf("MySQL server at %s: %w", c.addr(), err)
	}
	a.host = user[strings.LastIndexByte(user, '@')+1:]
	a.mariadb = strings.Contains(version, "MariaDB")
	return a, nil
}

func (a *admin) close() {
	a.conn.Close()
	a.db.Close()
}

func (a *admin) exec(ctx context.Context, query string, args ...any) error {
	_, err := a.conn.ExecContext(ctx, query, args...)
	return err
}

// lock takes the named lock name, held by this connection until it ends
// or unlock: it tells other coffer processes that what it names is in use.
func (a *admin) lock(ctx context.Context, name string) error {
	var got sql.NullInt64
	if err := a.conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got); err != nil {
		return err
	}
	if got.Int64 != 1 {
		return fmt.Errorf("lock %q is held by another session", name)
	}
	return nil
}

func (a *admin) unlock(ctx context.Context, name string) {
	a.exec(ctx, "DO RELEASE_LOCK(?)", name)
}

// free reports whether nobody holds the named lock name.
func (a *admin) free(ctx context.Context, name string) bool {
	var free sql.NullInt64
	err := a.conn.QueryRowContext(ctx, "SELECT IS_FREE_LOCK(?)", name).Scan(&free)
	return err == nil && free.Int64 == 1
}

// loadAccount is a temporary account that may use one database only.
type loadAccount struct {
	account
	password string
}

// createLoadAccount makes a load account for database db with the given
// privileges on it (ALL PRIVILEGES when empty), holding a lock of its
// name while it exists.
func (a *admin) createLoadAccount(ctx context.Context, db string, privileges ...string) (*loadAccount, error) {
	privs := "ALL PRIVILEGES"
	if len(privileges) > 0 {
		privs = strings.Join(privileges, ", ")
	}
	l := &loadAccount{account: account{loadPrefix + randomHex(8), a.host}, password: randomHex(24)}
	if err := a.lock(ctx, l.user); err != nil {
		return nil, fmt.Errorf("create the load account: %w", err)
	}
	identified := "IDENTIFIED BY PASSWORD '" + nativeHash(l.password) + "'"
	if !a.mariadb {
		identified = "IDENTIFIED BY '" + l.password + "'" // hex: nothing to escape
	}
	if err := a.exec(ctx, "CREATE USER "+l.sql()+" "+identified+" WITH MAX_USER_CONNECTIONS 2"); err != nil {
		a.unlock(ctx, l.user)
		return nil, a.needs(err, "CREATE USER")
	}
	if err := a.exec(ctx, "GRANT "+privs+" ON "+grantOn(db)+" TO "+l.sql()); err != nil {
		a.dropLoadAccount(context.WithoutCancel(ctx), l)
		return nil, a.needs(err, fmt.Sprintf("ALL PRIVILEGES on database %q WITH GRANT OPTION", db))
	}
	return l, nil
}

// needs explains a refused statement of the admin connection.
func (a *admin) needs(err error, what string) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && (me.Number == 1044 || me.Number == 1045 || me.Number == 1142 || me.Number == 1227 || me.Number == 1410) {
		return fmt.Errorf("user %q at %s may not do what a restore needs (%s): coffer loads a snapshot as a temporary account limited to the target database, which this user must create; grant it CREATE USER and ALL PRIVILEGES WITH GRANT OPTION on the databases it restores, or, only if you trust the snapshot, restore with --trust-snapshot (%w)", a.c.user, a.c.addr(), what, err)
	}
	return fmt.Errorf("MySQL server at %s: %w", a.c.addr(), err)
}

func (a *admin) dropLoadAccount(ctx context.Context, l *loadAccount) error {
	err := a.exec(ctx, "DROP USER IF EXISTS "+l.sql())
	a.unlock(ctx, l.user)
	if err != nil {
		return fmt.Errorf("drop the load account %s at %s: %w; drop it by hand (DROP USER %s)", l.sql(), a.c.addr(), err, l.sql())
	}
	return nil
}

// sweepLoadAccounts drops the load accounts whose lock nobody holds: a
// coffer that was killed left them. It returns how many it dropped. A
// user that may not read mysql.user sweeps nothing.
func (a *admin) sweepLoadAccounts(ctx context.Context) int {
	rows, err := a.conn.QueryContext(ctx, `SELECT User, Host FROM mysql.user WHERE User LIKE 'coffer\_load\_%'`)
	if err != nil {
		return 0
	}
	var stale []account
	for rows.Next() {
		var x account
		if rows.Scan(&x.user, &x.host) == nil && isLoadAccount(x.user) {
			stale = append(stale, x)
		}
	}
	rows.Close()
	n := 0
	for _, x := range stale {
		if a.free(ctx, x.user) && a.exec(ctx, "DROP USER IF EXISTS "+x.sql()) == nil {
			n++
		}
	}
	return n
}

func isLoadAccount(user string) bool {
	h, ok := strings.CutPrefix(user, loadPrefix)
	if !ok || len(h) != 16 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// ensureDefiner makes db's definer account, or makes it again what it
// must be: locked, with a password nobody knows, and ALL PRIVILEGES on db
// and nothing else.
func (a *admin) ensureDefiner(ctx context.Context, db string) (account, error) {
	d := definerFor(db)
	hash := "'" + nativeHash(randomHex(24)) + "'"
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + d.sql() + " IDENTIFIED BY PASSWORD " + hash + " ACCOUNT LOCK",
		"ALTER USER " + d.sql() + " IDENTIFIED BY PASSWORD " + hash + " ACCOUNT LOCK",
		"REVOKE ALL PRIVILEGES, GRANT OPTION FROM " + d.sql(),
		"GRANT ALL PRIVILEGES ON " + grantOn(db) + " TO " + d.sql(),
	}
	if !a.mariadb {
		stmts[0] = "CREATE USER IF NOT EXISTS " + d.sql() + " IDENTIFIED BY '" + randomHex(24) + "' ACCOUNT LOCK"
		stmts[1] = "ALTER USER " + d.sql() + " ACCOUNT LOCK"
	}
	for _, s := range stmts {
		if err := a.exec(ctx, s); err != nil {
			return d, a.needs(err, "CREATE USER, to make the definer account "+d.sql())
		}
	}
	return d, nil
}

// dropDefiner drops db's definer account, if there is one (and the one
// an older coffer named after the whole database name).
func (a *admin) dropDefiner(ctx context.Context, db string) error {
	d := definerFor(db)
	if old := legacyDefinerFor(db); old != d && utf8.RuneCountInString(old.user) <= 80 {
		if err := a.dropAccount(ctx, old); err != nil {
			return err
		}
	}
	return a.dropAccount(ctx, d)
}

func (a *admin) dropAccount(ctx context.Context, d account) error {
	err := a.exec(ctx, "DROP USER IF EXISTS "+d.sql())
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1227 {
		return nil // a user that may not drop accounts made none
	}
	if err != nil {
		return fmt.Errorf("drop the definer account %s at %s: %w", d.sql(), a.c.addr(), err)
	}
	return nil
}
