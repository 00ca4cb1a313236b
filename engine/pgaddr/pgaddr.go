// Package pgaddr reads the address of a PostgreSQL server in the forms that
// libpq, and so pg_dump and psql, take: a URL (postgres://USER@HOST:PORT/DB,
// every part optional), a conninfo string (host=… port=… dbname=…), or a
// bare database name, with what is left out taken from PGHOST, PGPORT,
// PGUSER, PGDATABASE and PGSSLMODE and then from libpq's defaults.
//
// An address never holds a password: it is given in flags and files that
// show in ps, shell history and version control. The password comes, as
// for libpq, from PGPASSWORD or the password file.
package pgaddr

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Addr is a resolved server address.
type Addr struct {
	User string
	// Host is a host name or IP address, or the absolute path of a Unix
	// socket directory.
	Host    string
	Port    int
	DB      string // "" when neither the address nor PGDATABASE names one
	SSLMode string // "" when neither the address nor PGSSLMODE sets one
}

// DefaultPort is PostgreSQL's port.
const DefaultPort = 5432

// PasswordHint says where a password goes instead of the address.
const PasswordHint = "PGPASSWORD or a ~/.pgpass file (PGPASSFILE)"

// socketDirs are where libpq builds look for the server's socket when no
// host is given (Debian's, then the upstream default), as pgx does.
var socketDirs = []string{"/var/run/postgresql", "/run/postgresql", "/tmp"}

// keys are the settings an address may give: where the server is, who
// logs in, which database, and TLS. Others (options, service, passfile…)
// would change what coffer connects to behind its back, and are refused.
var keys = map[string]bool{"host": true, "port": true, "user": true, "dbname": true, "sslmode": true}

var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// Parse reads s. getenv looks up the PG* variables (os.Getenv; tests pass
// their own).
func Parse(s string, getenv func(string) string) (*Addr, error) {
	kv, err := settings(s)
	if err != nil {
		return nil, err
	}
	shown := show(kv)
	for k := range kv {
		switch {
		case k == "password" || k == "passfile":
			return nil, fmt.Errorf("postgres address %s holds a password: remove it, and put it in %s, never in a flag", shown, PasswordHint)
		case !keys[k]:
			return nil, fmt.Errorf("postgres address %s: setting %q is not supported (only host, port, user, dbname and sslmode)", shown, k)
		}
	}
	pick := func(k, env string) string {
		if v, ok := kv[k]; ok {
			return v
		}
		return getenv(env)
	}
	a := &Addr{User: pick("user", "PGUSER"), Host: pick("host", "PGHOST"), DB: pick("dbname", "PGDATABASE"), SSLMode: pick("sslmode", "PGSSLMODE")}
	if a.User == "" {
		u, err := user.Current()
		if err != nil || u.Username == "" {
			return nil, fmt.Errorf("postgres address %s names no user, and the login name is unknown: give one (user=NAME, postgres://NAME@HOST/DB or PGUSER)", shown)
		}
		a.User = u.Username
	}
	a.Port = DefaultPort
	if p := pick("port", "PGPORT"); p != "" {
		if a.Port, err = strconv.Atoi(p); err != nil || a.Port <= 0 || a.Port > 65535 {
			return nil, fmt.Errorf("postgres address %s: bad port %q", shown, p)
		}
	}
	switch {
	case strings.Contains(a.Host, ","):
		return nil, fmt.Errorf("postgres address %s: several hosts (%q): give the one server to back up or restore", shown, a.Host)
	case a.Host == "":
		a.Host = defaultSocketDir(a.Port)
	case strings.HasPrefix(a.Host, "@"):
		return nil, fmt.Errorf("postgres address %s: abstract Unix sockets (%q) are not supported: give a socket directory", shown, a.Host)
	case filepath.IsAbs(a.Host):
		a.Host = filepath.Clean(a.Host)
	case strings.ContainsAny(a.Host, "/ \t\n"):
		return nil, fmt.Errorf("postgres address %s: host %q is neither a host name nor an absolute socket directory", shown, a.Host)
	}
	if a.SSLMode != "" && !sslModes[a.SSLMode] {
		return nil, fmt.Errorf("postgres address %s: sslmode %q is not one of disable, allow, prefer, require, verify-ca, verify-full", shown, a.SSLMode)
	}
	return a, nil
}

// Socket reports whether a is a Unix socket directory.
func (a *Addr) Socket() bool { return strings.HasPrefix(a.Host, "/") }

// defaultSocketDir is the first socket directory that holds the server's
// socket, else the first that exists, else Debian's.
func defaultSocketDir(port int) string {
	for _, d := range socketDirs {
		if _, err := os.Stat(filepath.Join(d, ".s.PGSQL."+strconv.Itoa(port))); err == nil {
			return d
		}
	}
	for _, d := range socketDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return socketDirs[0]
}

// settings reads the keywords and values of s in any of its forms.
func settings(s string) (map[string]string, error) {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return urlSettings(s)
	case strings.Contains(s, "="):
		return conninfo(s)
	case strings.TrimSpace(s) == "":
		return nil, errors.New("postgres address is empty: give a database name, a URL (postgres://USER@HOST:5432/DB) or host=… dbname=…")
	case strings.Contains(s, "://"):
		return nil, fmt.Errorf("postgres address %q: the scheme must be postgres:// or postgresql://", redactURL(s))
	}
	return map[string]string{"dbname": s}, nil
}

func urlSettings(s string) (map[string]string, error) {
	s, socket, socketPort := socketHost(s)
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("postgres address: %v; want postgres://USER@HOST:%d/DATABASE", redactErr(err), DefaultPort)
	}
	kv := map[string]string{}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("postgres address %s holds a password: remove it, and put it in %s, never in a flag", redactURL(s), PasswordHint)
		}
		if n := u.User.Username(); n != "" {
			kv["user"] = n
		}
	}
	if u.Host != "" {
		if strings.Contains(u.Host, ",") {
			return nil, fmt.Errorf("postgres address %s: several hosts (%q): give the one server to back up or restore", redactURL(s), u.Host)
		}
		// A socket directory may be the host, percent-encoded.
		kv["host"] = u.Hostname()
		if p := u.Port(); p != "" {
			kv["port"] = p
		}
	}
	if socket != "" {
		kv["host"] = socket
		if socketPort != "" {
			kv["port"] = socketPort
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if strings.Contains(db, "/") {
			return nil, fmt.Errorf("postgres address %s: the path must be one database name", redactURL(s))
		}
		kv["dbname"] = db
	}
	for k, v := range u.Query() {
		if len(v) != 1 {
			return nil, fmt.Errorf("postgres address %s: setting %q is given %d times", redactURL(s), k, len(v))
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("postgres address %s: %s is given twice", redactURL(s), k)
		}
		kv[k] = v[0]
	}
	return kv, nil
}

// socketHost takes a percent-encoded socket directory out of the host part
// of a URL (postgres://%2Frun%2Fpostgresql:5433/db, which libpq takes and
// net/url refuses), returning the URL without it, the directory and port.
func socketHost(s string) (rest, dir, port string) {
	i := strings.Index(s, "://") + 3
	end := strings.IndexAny(s[i:], "/?")
	if end < 0 {
		end = len(s) - i
	}
	auth := s[i : i+end]
	at := strings.LastIndex(auth, "@") + 1
	hostport := auth[at:]
	if !strings.HasPrefix(strings.ToLower(hostport), "%2f") {
		return s, "", ""
	}
	host := hostport
	if c := strings.LastIndex(hostport, ":"); c >= 0 {
		host, port = hostport[:c], hostport[c+1:]
	}
	dir, err := url.PathUnescape(host)
	if err != nil {
		return s, "", "" // url.Parse then says what is wrong
	}
	return s[:i] + auth[:at] + s[i+end:], dir, port
}

// conninfo reads libpq's keyword/value form: keyword = value pairs
// separated by spaces, a value in single quotes when it holds spaces,
// with \' and \\ inside.
func conninfo(s string) (map[string]string, error) {
	kv := map[string]string{}
	r := []rune(s)
	i := 0
	skip := func() {
		for i < len(r) && (r[i] == ' ' || r[i] == '\t' || r[i] == '\n' || r[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i == len(r) {
			return kv, nil
		}
		start := i
		for i < len(r) && r[i] != '=' && r[i] != ' ' && r[i] != '\t' {
			i++
		}
		key := string(r[start:i])
		skip()
		if i == len(r) || r[i] != '=' || key == "" {
			return nil, fmt.Errorf("postgres address: %q is not keyword=value (as in host=127.0.0.1 dbname=shop)", truncate(key))
		}
		i++
		skip()
		var val strings.Builder
		if i < len(r) && r[i] == '\'' {
			i++
			for ; i < len(r) && r[i] != '\''; i++ {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val.WriteRune(r[i])
			}
			if i == len(r) {
				return nil, fmt.Errorf("postgres address: the quoted value of %q does not end", truncate(key))
			}
			i++
		} else {
			for ; i < len(r) && r[i] != ' ' && r[i] != '\t' && r[i] != '\n' && r[i] != '\r'; i++ {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val.WriteRune(r[i])
			}
		}
		if _, dup := kv[key]; dup {
			return nil, fmt.Errorf("postgres address: %s is given twice", truncate(key))
		}
		kv[key] = val.String()
	}
}

// show writes the settings back as conninfo for messages, without a
// password.
func show(kv map[string]string) string {
	var parts []string
	for k, v := range kv {
		if k == "password" {
			v = "xxxxx"
		}
		parts = append(parts, k+"="+quote(v))
	}
	sort.Strings(parts)
	return strconv.Quote(strings.Join(parts, " "))
}

func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return strconv.Quote(u.Redacted())
	}
	return `"(unparsable)"`
}

// redactErr keeps a URL parse error from quoting the address, which may
// hold a password.
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
