package engine

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Address is a database server's address as coffer takes it, a URL such
// as postgres://USER@HOST:PORT/DATABASE. It never holds a password.
type Address struct {
	User, Host string
	Port       int
	DB         string // empty: none named
	Query      url.Values
	URL        *url.URL
}

// ParseAddress reads addr for engine (named in messages), accepting the
// given schemes. A password in it is refused, with passwordHint saying
// where to put it instead: in a flag it would show in ps and in shell
// history.
func ParseAddress(addr, engine string, schemes []string, defaultPort int, passwordHint string) (*Address, error) {
	want := fmt.Sprintf("want %s://USER@HOST:%d/DATABASE", schemes[0], defaultPort)
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("%s address: %w; %s", engine, err, want)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return nil, fmt.Errorf("%s address %q: %s", engine, Redact(u), want)
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("%s address %s holds a password: remove it, and put it in %s, never in a flag", engine, Redact(u), passwordHint)
	}
	a := &Address{User: u.User.Username(), Host: u.Hostname(), Port: defaultPort, Query: u.Query(), URL: u}
	if a.User == "" {
		return nil, fmt.Errorf("%s address %s: give the user, as in %s://USER@HOST:%d/DATABASE", engine, Redact(u), schemes[0], defaultPort)
	}
	if a.Host == "" {
		a.Host = "127.0.0.1"
	}
	if p := u.Port(); p != "" {
		if a.Port, err = strconv.Atoi(p); err != nil || a.Port <= 0 || a.Port > 65535 {
			return nil, fmt.Errorf("%s address %s: bad port %q", engine, Redact(u), p)
		}
	}
	a.DB = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(a.DB, "/") {
		return nil, fmt.Errorf("%s address %s: the path must be one database name", engine, Redact(u))
	}
	return a, nil
}

// Redact returns u without password and query, for messages.
func Redact(u *url.URL) string {
	v := *u
	if v.User != nil {
		v.User = url.User(v.User.Username())
	}
	v.RawQuery = ""
	return v.String()
}
