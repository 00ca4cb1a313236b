package postgres

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const attackName = "s WITH TEMPLATE = template0 OWNER = evil --"

func TestParseCreateDatabase(t *testing.T) {
	for _, tc := range []struct {
		name, defn string
		want       DBOptions
		sql        string // of SQL(attackName)
	}{
		{"pg15", "CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'en_US.UTF-8';\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "libc", Locale: "en_US.UTF-8"},
			`CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'en_US.UTF-8'`},
		{"attack name", `CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';` + "\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "libc", Locale: "C.UTF-8"}, ""},
		{"quoted name", "CREATE DATABASE \"h'q\"\"\nx\" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.utf8' TABLESPACE = \"ts'x\";\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "libc", Locale: "C.utf8", Tablespace: "ts'x"}, ""},
		{"collate and ctype", "CREATE DATABASE mix WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LC_COLLATE = 'C' LC_CTYPE = 'C.utf8';\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "libc", LCCollate: "C", LCCtype: "C.utf8"},
			`CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LC_COLLATE = 'C' LC_CTYPE = 'C.utf8'`},
		{"icu", "CREATE DATABASE icu WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu LOCALE = 'C.utf8' ICU_LOCALE = 'de-DE-u-co-phonebk';\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "icu", Locale: "C.utf8", ICULocale: "de-DE-u-co-phonebk"}, ""},
		{"icu rules (16)", "CREATE DATABASE r WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu LOCALE = 'en_US.UTF-8' ICU_LOCALE = 'und' ICU_RULES = '&a < g';\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "icu", Locale: "en_US.UTF-8", ICULocale: "und", ICURules: "&a < g"},
			`CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = icu LOCALE = 'en_US.UTF-8' ICU_LOCALE = 'und' ICU_RULES = '&a < g'`},
		{"builtin (17)", "CREATE DATABASE b WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = builtin LOCALE = 'C.UTF-8' BUILTIN_LOCALE = 'C.UTF-8';\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "builtin", Locale: "C.UTF-8", BuiltinLocale: "C.UTF-8"}, ""},
		{"pg13", "CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'LATIN1' LOCALE = 'de_DE@euro';\n",
			DBOptions{Encoding: "LATIN1", Locale: "de_DE@euro"},
			`CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0 ENCODING = 'LATIN1' LOCALE = 'de_DE@euro'`},
		{"pg11", "CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'SQL_ASCII' LC_COLLATE = 'English_United States.1252' LC_CTYPE = 'C';\n",
			DBOptions{Encoding: "SQL_ASCII", LCCollate: "English_United States.1252", LCCtype: "C"}, ""},
		{"binary upgrade", "CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C' COLLATION_VERSION = '2.36';\n",
			DBOptions{Encoding: "UTF8", LocaleProvider: "libc", Locale: "C", CollationVersion: "2.36"},
			`CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C'`},
		{"bare", "CREATE DATABASE shop WITH TEMPLATE = template0;", DBOptions{},
			`CREATE DATABASE "s WITH TEMPLATE = template0 OWNER = evil --" WITH TEMPLATE = template0`},
		{"comment after", "CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8'; -- the end\n", DBOptions{Encoding: "UTF8"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseCreateDatabase(tc.defn)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*o, tc.want) {
				t.Errorf("got %+v, want %+v", *o, tc.want)
			}
			if tc.sql != "" && o.SQL(attackName) != tc.sql {
				t.Errorf("SQL:\n got %s\nwant %s", o.SQL(attackName), tc.sql)
			}
		})
	}
}

// No option outside DBOptions, and no value outside its character set,
// reaches the statement coffer builds.
func TestParseCreateDatabaseRejects(t *testing.T) {
	base := "CREATE DATABASE shop WITH TEMPLATE = template0 "
	for defn, why := range map[string]string{
		base + "OWNER = evil;":                                   "OWNER is not carried over",
		base + "ENCODING = 'UTF8' CONNECTION LIMIT = 3;":         "CONNECTION is not carried over",
		base + "IS_TEMPLATE = true;":                             "IS_TEMPLATE is not carried over",
		base + "ALLOW_CONNECTIONS = false;":                      "ALLOW_CONNECTIONS is not carried over",
		base + "OID = 16384;":                                    "OID is not carried over",
		base + "STRATEGY = file_copy;":                           "STRATEGY is not carried over",
		"CREATE DATABASE shop WITH TEMPLATE = template1;":        "not WITH TEMPLATE = template0",
		"CREATE DATABASE shop ENCODING = 'UTF8';":                "not WITH TEMPLATE = template0",
		"CREATE DATABASE shop;":                                  "not WITH TEMPLATE = template0",
		"CREATE DATABASE WITH TEMPLATE = template0;":             "not a database name",
		"DROP DATABASE shop;":                                    "not a CREATE DATABASE",
		base + "ENCODING = 'UTF8'; DROP DATABASE other;":         "more than one statement",
		base + "ENCODING = 'UTF8';\n\\! id\n":                    "more than one statement",
		base + "ENCODING = 'UTF8'":                               "not an option",
		base + "ENCODING = 'UTF8' ENCODING = 'LATIN1';":          "given twice",
		base + "ENCODING = UTF8;":                                "not a string literal",
		base + "ENCODING 'UTF8';":                                "no = after ENCODING",
		base + "ENCODING = 'UTF8; x';":                           "is not a name coffer accepts",
		base + "LOCALE = 'C'' OWNER = evil';":                    "is not a name coffer accepts",
		base + "LOCALE = 'C\nx';":                                "is not a name coffer accepts",
		base + "LOCALE = E'C\\x1b[2J';":                          "is not a name coffer accepts",
		base + "LOCALE = ' C';":                                  "is not a name coffer accepts",
		base + "LOCALE = '';":                                    "LOCALE is empty",
		base + "LC_CTYPE = '" + strings.Repeat("x", 200) + "';":  "is not a name coffer accepts",
		base + "COLLATION_VERSION = '1 2';":                      "is not a name coffer accepts",
		base + "ICU_RULES = E'&a\\x01';":                         "not printable",
		base + "LOCALE_PROVIDER = evil;":                         "not libc, icu or builtin",
		base + "LOCALE_PROVIDER = 'libc' LOCALE_PROVIDER = icu;": "given twice",
		base + "TABLESPACE = 'ts';":                              "TABLESPACE is not a name",
		base + `"owner" = evil;`:                                 "not an option",
		base + "LOCALE = $$C$$;":                                 "not a string literal",
		base + "LOCALE = 'C":                                     "unterminated",
	} {
		o, err := ParseCreateDatabase(defn)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "CREATE DATABASE") {
			t.Errorf("%q: got %+v, %v; want an error with %q", defn, o, err, why)
		}
	}
}

func TestDBOptionsForServer(t *testing.T) {
	icu := &DBOptions{Encoding: "UTF8", LocaleProvider: "icu", Locale: "en_US.UTF-8", ICULocale: "und", ICURules: "&a < g"}
	builtin := &DBOptions{Encoding: "UTF8", LocaleProvider: "builtin", Locale: "C.UTF-8", BuiltinLocale: "C.UTF-8"}
	libc := &DBOptions{Encoding: "UTF8", LocaleProvider: "libc", Locale: "C"}
	for _, tc := range []struct {
		in    *DBOptions
		major int
		want  DBOptions
		notes int
	}{
		{icu, 17, *icu, 0},
		{icu, 16, *icu, 0},
		{icu, 15, DBOptions{Encoding: "UTF8", LocaleProvider: "icu", Locale: "en_US.UTF-8", ICULocale: "und"}, 1},
		{icu, 14, DBOptions{Encoding: "UTF8", Locale: "en_US.UTF-8"}, 3},
		{builtin, 17, *builtin, 0},
		{builtin, 16, DBOptions{Encoding: "UTF8", LocaleProvider: "libc", Locale: "C.UTF-8"}, 1},
		{libc, 14, DBOptions{Encoding: "UTF8", Locale: "C"}, 0},
		{libc, 12, DBOptions{Encoding: "UTF8", LCCollate: "C", LCCtype: "C"}, 0},
	} {
		got, notes := tc.in.ForServer(tc.major)
		if !reflect.DeepEqual(*got, tc.want) || len(notes) != tc.notes {
			t.Errorf("%+v for %d: got %+v, notes %q; want %+v and %d notes", *tc.in, tc.major, *got, notes, tc.want, tc.notes)
		}
	}
}

// Databases created with odd names and the locales of this machine are
// dumped by pg_dump; the options read back from the archive's DATABASE
// entry create a database with the same encoding and locale, owned by
// the user who creates it: never by the role an attacking name names.
func TestHostileCreateDatabase(t *testing.T) {
	// Names stay within 63 bytes, which PostgreSQL would cut short.
	p := uniqueName("")[len("coffer_pg__"):][:6] + " "
	evil := "cev_" + p[:6]
	pc := connect(t, "postgres")
	run(t, "postgres", "CREATE ROLE "+quoteIdent(evil))
	t.Cleanup(func() {
		if _, err := pc.Exec(context.Background(), "DROP ROLE "+quoteIdent(evil)); err != nil {
			t.Errorf("drop role %s: %v", evil, err)
		}
	})
	for _, tc := range []struct{ name, opts string }{
		{p + "s WITH TEMPLATE = template0 OWNER = " + evil + " --", "TEMPLATE template0"},
		{p + "'q\"\nx; DROP DATABASE postgres; --", "TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.utf8'"},
		{p + "application_name=a host=127.0.0.1 port=45999", "TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'POSIX'"},
		{p + "sql_ascii", "TEMPLATE template0 ENCODING 'SQL_ASCII' LOCALE 'C'"},
		{p + "mix", "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.utf8'"},
		{p + "icu é", "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE-u-co-phonebk' LOCALE 'C.utf8'"},
	} {
		target := tc.name + "_r"
		if len(target) > maxIdentLen {
			t.Fatalf("%q is too long", target)
		}
		for _, db := range []string{tc.name, target} {
			t.Cleanup(func() {
				if err := dropDatabase(db); err != nil {
					t.Errorf("drop database %q: %v", db, err)
				}
			})
		}
		run(t, "postgres", "CREATE DATABASE "+quoteIdent(tc.name)+" "+tc.opts)
		entries, _ := dumpTOC(t, tc.name, "--schema-only", "--create")
		i := slices.IndexFunc(entries, func(e *tocEntry) bool { return e.desc == "DATABASE" })
		if i < 0 {
			t.Fatalf("%q: no DATABASE entry", tc.name)
		}
		o, err := ParseCreateDatabase(entries[i].defn)
		if err != nil {
			t.Fatalf("%q: %v", tc.name, err)
		}
		execAll(t, pc, []string{o.SQL(target)})
		state := func(db string) []string {
			return queryStrings(t, pc, `SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider,
				coalesce(to_jsonb(d)->>'daticulocale', to_jsonb(d)->>'datlocale', ''), datdba::regrole
				FROM pg_database d WHERE datname = $1`, db)
		}
		want, got := state(tc.name), state(target)
		if len(want) != 1 || !slices.Equal(got, want) {
			t.Errorf("%q: restored as %q, want %q", tc.name, got, want)
		}
		if len(got) == 1 && strings.HasSuffix(got[0], "|"+evil) {
			t.Errorf("%q: the restored database is owned by %s", tc.name, evil)
		}
	}
	if got := queryStrings(t, pc, "SELECT count(*) FROM pg_database WHERE datname = 'postgres'"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("database postgres: %v", got)
	}
}
