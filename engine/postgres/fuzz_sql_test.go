package postgres

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The parsers of globals.go, acl.go and createdb.go read what a backup
// host wrote. Fuzzed, they never panic, and what coffer builds from their
// values reads back as the same values.

func seedFiles(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

// formatGlobals writes g as pg_dumpall would.
func formatGlobals(g *Globals) string {
	var b strings.Builder
	for _, r := range g.Roles {
		q := quoteIdent(r.Name)
		fmt.Fprintf(&b, "CREATE ROLE %s;\nALTER ROLE %s %s;\n", q, q, strings.TrimPrefix(r.SQL(), "CREATE ROLE "+q+" "))
		if r.Comment != "" {
			fmt.Fprintf(&b, "COMMENT ON ROLE %s IS %s;\n", q, quoteLiteral(r.Comment))
		}
	}
	for _, m := range g.Memberships {
		b.WriteString((&planner{}).grantSQL(m, ""))
		if m.GrantedBy != "" {
			b.WriteString(" GRANTED BY " + quoteIdent(m.GrantedBy))
		}
		b.WriteString(";\n")
	}
	for _, ts := range g.Tablespaces {
		fmt.Fprintf(&b, "CREATE TABLESPACE %s OWNER %s LOCATION %s;\n", quoteIdent(ts.Name), quoteIdent(ts.Owner), quoteLiteral(ts.Location))
	}
	return b.String()
}

// checkNames fails if a name is not one PostgreSQL stores as it is.
func checkNames(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if bad := checkName(n); bad != "" {
			t.Fatalf("name %q is %s", n, bad)
		}
	}
}

func withoutLines(g *Globals) *Globals {
	c := &Globals{Roles: append([]RoleDef(nil), g.Roles...), Memberships: append([]Membership(nil), g.Memberships...),
		Tablespaces: append([]Tablespace(nil), g.Tablespaces...)}
	for i := range c.Roles {
		c.Roles[i].Line = 0
	}
	for i := range c.Memberships {
		c.Memberships[i].Line = 0
	}
	for i := range c.Tablespaces {
		c.Tablespaces[i].Line = 0
	}
	return c
}

func FuzzParseGlobals(f *testing.F) {
	seedFiles(f, "testdata/globals/*.sql")
	f.Add("CREATE ROLE \"a;b\";\nALTER ROLE \"a;b\" WITH LOGIN PASSWORD 'md5c4ca4238a0b923820dcc509a6f75849b';\nGRANT x TO \"a;b\" WITH ADMIN OPTION, SET FALSE GRANTED BY y;")
	f.Add("SET standard_conforming_strings = off;\nCOMMENT ON ROLE a IS 'x\\'; \\! id';\n")
	for _, s := range []string{"CREATE ROLE a;", "ALTER ROLE a WITH NOLOGIN CONNECTION LIMIT 3 VALID UNTIL 'infinity';",
		"GRANT a TO b WITH INHERIT TRUE GRANTED BY c;", "CREATE TABLESPACE t OWNER a LOCATION '/x';",
		"COMMENT ON ROLE a IS E'\\\\x';", "\\restrict k\n", "SET client_encoding = 'LATIN1';"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		g, err := ParseGlobals([]byte(script))
		if err != nil {
			return
		}
		for _, s := range g.Skipped {
			if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 }) {
				t.Fatalf("skipped line %q is not safe on a terminal", s)
			}
		}
		for _, r := range g.Roles {
			checkNames(t, r.Name)
			if badText(r.Comment+r.Password+r.ValidUntil) != "" {
				t.Fatalf("role %+v", r)
			}
		}
		for _, m := range g.Memberships {
			checkNames(t, m.Role, m.Member)
			if m.GrantedBy != "" {
				checkNames(t, m.GrantedBy)
			}
		}
		// The values, written again, read back the same.
		g2, err := ParseGlobals([]byte(formatGlobals(g)))
		if err != nil {
			t.Fatalf("%v\n%s", err, formatGlobals(g))
		}
		if len(g2.Skipped) != len(g.Tablespaces) {
			t.Fatalf("skipped %q of\n%s", g2.Skipped, formatGlobals(g))
		}
		if a, b := withoutLines(g), withoutLines(g2); !reflect.DeepEqual(a, b) {
			t.Fatalf("read back\n%+v\nwant\n%+v", b, a)
		}
		// The plan's statements are single statements of the shapes
		// pg_dumpall writes, about the roles the plan creates.
		for _, mode := range []string{"roles", "all"} {
			p := g.Plan(map[string]RoleInfo{"postgres": {Superuser: true}, "pg_monitor": {}}, mode)
			var back strings.Builder
			grants := 0
			for _, s := range p.Statements {
				toks, err := tokenize(s)
				if err != nil {
					t.Fatalf("%q: %v", s, err)
				}
				for _, tk := range toks {
					if tk.kind == tSym && tk.text == ";" || tk.kind == tMeta || tk.kind == tDollar || tk.bad != "" {
						t.Fatalf("%q holds %+v", s, tk)
					}
				}
				switch {
				case strings.HasPrefix(s, "CREATE ROLE "):
					q := quoteIdent(toks[2].text)
					fmt.Fprintf(&back, "CREATE ROLE %s;\nALTER ROLE %s %s;\n", q, q, strings.TrimPrefix(s, "CREATE ROLE "+q+" "))
					if mode == "roles" && strings.Contains(s, " SUPERUSER") {
						t.Fatalf("%q in mode roles", s)
					}
				case strings.HasPrefix(s, "GRANT "):
					grants++
					back.WriteString(s + ";\n")
				default:
					back.WriteString(s + ";\n")
				}
			}
			pg, err := ParseGlobals([]byte(back.String()))
			if err != nil || len(pg.Skipped) > 0 || len(pg.Roles) != len(p.Created) || len(pg.Memberships) != grants {
				t.Fatalf("plan %q reads back as %+v, %v", p.Statements, pg, err)
			}
			for i, r := range pg.Roles {
				if r.Name != p.Created[i] {
					t.Fatalf("plan creates %q, reads back %q", p.Created, r.Name)
				}
			}
		}
	})
}

func FuzzParseACL(f *testing.F) {
	for _, s := range []string{
		"GRANT SELECT ON TABLE public.customers TO app_ro;\n",
		"REVOKE ALL ON SCHEMA public FROM PUBLIC;\n",
		"GRANT ALL ON FUNCTION public.f(a integer, VARIADIC b text[], OUT c double precision) TO app;\n",
		"GRANT SELECT(col1),UPDATE(col1) ON TABLE \"S\".\"t;1\" TO \"we\"\"ird\nname\";\n",
		"GRANT USAGE ON SEQUENCE public.s TO app WITH GRANT OPTION;\n",
		"SET SESSION AUTHORIZATION grp;\nGRANT INSERT ON TABLE public.c TO ops;\nRESET SESSION AUTHORIZATION;\n",
		"ALTER DEFAULT PRIVILEGES FOR ROLE x IN SCHEMA s GRANT SELECT ON TABLES  TO r;\n",
		"GRANT SELECT ON LARGE OBJECT 4242 TO app;\nGRANT CONNECT,TEMPORARY ON DATABASE shop TO app;\n",
		"GRANT ALL ON FUNCTION s.g(character varying(10), timestamp(3) with time zone, numeric(10,2)[]) TO app;\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, defn string) {
		gs, err := ParseACL(defn)
		if err != nil {
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("error %q is not safe on a terminal", err)
			}
			return
		}
		var b strings.Builder
		for _, g := range gs {
			checkNames(t, append(append([]string(nil), g.Columns...), g.Roles()...)...)
			if g.ObjectKind != "LARGE OBJECT" {
				checkNames(t, g.Object...)
			}
			if g.InSchema != "" {
				checkNames(t, g.InSchema)
			}
			for _, s := range g.Statements() {
				b.WriteString(s + ";\n")
			}
		}
		back, err := ParseACL(b.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		if len(gs) == 0 && len(back) == 0 {
			return
		}
		if !reflect.DeepEqual(gs, back) {
			t.Fatalf("%s\nreads back as\n%+v\nwant\n%+v", b.String(), back, gs)
		}
	})
}

func FuzzParseCreateDatabase(f *testing.F) {
	for _, s := range []string{
		"CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'en_US.UTF-8';\n",
		"CREATE DATABASE \"s WITH TEMPLATE = template0 OWNER = evil --\" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu LOCALE = 'C' ICU_LOCALE = 'und-u-ks-level2' ICU_RULES = '&a < g';\n",
		"CREATE DATABASE x WITH TEMPLATE = template0 ENCODING = 'LATIN1' LC_COLLATE = 'de_DE@euro' LC_CTYPE = 'C' TABLESPACE = ts COLLATION_VERSION = '2.36';\n",
	} {
		f.Add(s, "target")
	}
	f.Add("CREATE DATABASE x WITH TEMPLATE = template0 OWNER = evil;", "s WITH TEMPLATE = template0 OWNER = evil --")
	f.Fuzz(func(t *testing.T, defn, name string) {
		o, err := ParseCreateDatabase(defn)
		if err != nil || checkName(name) != "" {
			return
		}
		want := *o
		want.CollationVersion, want.Tablespace = "", ""
		for _, major := range []int{0, 12, 14, 15, 16} {
			in := o
			if major > 0 {
				in, _ = o.ForServer(major)
			} else {
				in = &want
			}
			back, err := ParseCreateDatabase(in.SQL(name) + ";")
			if err != nil {
				t.Fatalf("%s: %v", in.SQL(name), err)
			}
			if major == 0 && !reflect.DeepEqual(*back, want) {
				t.Fatalf("%s reads back as %+v, want %+v", in.SQL(name), *back, want)
			}
		}
	})
}

func FuzzObjectRef(f *testing.F) {
	f.Add("FUNCTION", "public", "f(integer, text, public.mood[])")
	f.Add("FUNCTION", `Sch"x`, `g(x(character varying, double precision, timestamp with time zone, "Sch""x"."T;1")`)
	f.Add("AGGREGATE", "public", "pct(double precision ORDER BY double precision)")
	f.Add("TABLE", "public", "x; DROP TABLE t; --")
	f.Add("BLOB", "", "4242")
	f.Fuzz(func(t *testing.T, desc, ns, tag string) {
		o, err := ParseObjectRef(desc, ns, tag)
		if err != nil {
			return
		}
		if badText(ns+tag) != "" {
			t.Fatalf("%q %q: read as %+v", ns, tag, o)
		}
		if o.Args != "" || desc == "FUNCTION" || desc == "PROCEDURE" || desc == "AGGREGATE" {
			back, err := ParseObjectRef(desc, ns, o.Name+"("+o.Args+")")
			if err != nil || back != o {
				t.Fatalf("%+v reads back as %+v, %v", o, back, err)
			}
		}
		sql, ok := OwnerSQL(desc, ns, tag, "r")
		toks, err := tokenize(sql)
		if !ok || err != nil {
			t.Fatalf("%q: %v, %v", sql, ok, err)
		}
		for _, tk := range toks {
			if tk.kind == tSym && tk.text == ";" || tk.kind == tMeta || tk.kind == tDollar || tk.kind == tString {
				t.Fatalf("%q holds %+v", sql, tk)
			}
		}
	})
}
