package pgaddr

import (
	"os/user"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseForms(t *testing.T) {
	login, _ := user.Current()
	pg := map[string]string{"PGHOST": "db.internal", "PGPORT": "6543", "PGUSER": "backup", "PGDATABASE": "shop", "PGSSLMODE": "require"}
	for _, tc := range []struct {
		in   string
		env  map[string]string
		want Addr
	}{
		{"postgres://postgres@127.0.0.1:5432/shop", nil, Addr{User: "postgres", Host: "127.0.0.1", Port: 5432, DB: "shop"}},
		{"postgresql://postgres@[::1]:5433/shop?sslmode=disable", nil, Addr{User: "postgres", Host: "::1", Port: 5433, DB: "shop", SSLMode: "disable"}},
		{"postgres://postgres@/shop?host=/run/postgresql&port=5433", nil, Addr{User: "postgres", Host: "/run/postgresql", Port: 5433, DB: "shop"}},
		{"postgres://%2Fvar%2Frun%2Fpostgresql/shop", map[string]string{"PGUSER": "u"}, Addr{User: "u", Host: "/var/run/postgresql", Port: 5432, DB: "shop"}},
		{"postgres://u@%2Frun%2Fpg:5433/shop", nil, Addr{User: "u", Host: "/run/pg", Port: 5433, DB: "shop"}},
		{"postgres:///shop", pg, Addr{User: "backup", Host: "db.internal", Port: 6543, DB: "shop", SSLMode: "require"}},
		{"postgres://", pg, Addr{User: "backup", Host: "db.internal", Port: 6543, DB: "shop", SSLMode: "require"}},
		{"postgres://other@h/crm", pg, Addr{User: "other", Host: "h", Port: 6543, DB: "crm", SSLMode: "require"}},
		{"host=127.0.0.1 port=5432 dbname=shop user=postgres", nil, Addr{User: "postgres", Host: "127.0.0.1", Port: 5432, DB: "shop"}},
		{"  host = /var/run/postgresql  dbname='my shop' user='o\\'brien' ", nil, Addr{User: "o'brien", Host: "/var/run/postgresql", Port: 5432, DB: "my shop"}},
		{"dbname=a\\ b", map[string]string{"PGUSER": "u", "PGHOST": "h"}, Addr{User: "u", Host: "h", Port: 5432, DB: "a b"}},
		{"shop", pg, Addr{User: "backup", Host: "db.internal", Port: 6543, DB: "shop", SSLMode: "require"}},
		{"crm", pg, Addr{User: "backup", Host: "db.internal", Port: 6543, DB: "crm", SSLMode: "require"}},
		{"postgres://u@h", nil, Addr{User: "u", Host: "h", Port: 5432}},
		{"postgres://h/db", nil, Addr{User: login.Username, Host: "h", Port: 5432, DB: "db"}},
	} {
		got, err := Parse(tc.in, env(tc.env))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if *got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, *got, tc.want)
		}
	}
}

func TestParseDefaultSocket(t *testing.T) {
	a, err := Parse("dbname=shop user=u", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Socket() {
		t.Fatalf("no host should mean a Unix socket directory, as in libpq: %+v", a)
	}
}

func TestParseRefused(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres:s3cret@127.0.0.1/shop", "holds a password"},
		{"postgres://postgres@127.0.0.1/shop?password=s3cret", "holds a password"},
		{"host=h password=s3cret dbname=shop", "holds a password"},
		{"host=h password='s3cret word' dbname=shop", "holds a password"},
		{"host=h passfile=/tmp/p dbname=shop", "holds a password"},
		{"host=h options='-c search_path=evil' dbname=shop", `"options" is not supported`},
		{"service=prod", `"service" is not supported`},
		{"postgres://u@h1,h2/shop", "several hosts"},
		{"host=h1,h2 dbname=shop", "several hosts"},
		{"host=@abstract dbname=x", "abstract"},
		{"host=rel/dir dbname=x", "neither a host name nor an absolute socket directory"},
		{"host=h port=0 dbname=x", "bad port"},
		{"host=h port=x dbname=x", "bad port"},
		{"host=h sslmode=maybe dbname=x", "sslmode"},
		{"host=h dbname='open", "does not end"},
		{"host=h dbname=a dbname=b", "given twice"},
		{"postgres://u@h/a?dbname=b", "given twice"},
		{"postgres://u@h/a/b", "one database name"},
		{"host x=1", "keyword=value"},
		{"mysql://root@h/db", "scheme"},
		{"", "empty"},
	} {
		_, err := Parse(tc.in, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows the password: %v", tc.in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"postgres://u@h:1/d?sslmode=require", "host='a b' dbname=\\'x", "shop", "password=p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s, env(map[string]string{"PGUSER": "u"}))
		if err != nil {
			return
		}
		if a.Port <= 0 || a.Port > 65535 || a.User == "" || a.Host == "" || strings.Contains(a.Host, ",") {
			t.Fatalf("%q parsed to %+v", s, a)
		}
	})
}
