package postgres

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// This file reads the CREATE DATABASE statement of a pg_dump archive's
// DATABASE entry, keeps the encoding and locale options, and builds the
// statement again for the target's name: a database named
// `s WITH TEMPLATE = template0 OWNER = evil --` is one quoted name, and
// no option but those of DBOptions reaches the server.

// DBOptions are the options of pg_dump's CREATE DATABASE statement that
// coffer carries over; the values are checked against strict character
// sets and written back as quoted literals.
type DBOptions struct {
	Encoding       string // ENCODING, e.g. UTF8
	LocaleProvider string // LOCALE_PROVIDER: libc, icu or builtin
	Locale         string // LOCALE
	LCCollate      string // LC_COLLATE
	LCCtype        string // LC_CTYPE
	ICULocale      string // ICU_LOCALE
	ICURules       string // ICU_RULES (PostgreSQL 16)
	BuiltinLocale  string // BUILTIN_LOCALE (PostgreSQL 17)
	// CollationVersion (pg_dump --binary-upgrade) is recorded, and not
	// carried over: the server computes the version of its own library.
	CollationVersion string
	// Tablespace is recorded, and not carried over: a tablespace is
	// outside the target database.
	Tablespace string
}

var (
	encodingName = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	localeName   = regexp.MustCompile(`^[A-Za-z0-9_.@=;,+-]([A-Za-z0-9_.@=;,+() -]{0,126}[A-Za-z0-9_.@=;,+)-])?$`)
	versionName  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// validRules says whether s can be ICU collation rules: printable text,
// with spaces, tabs and newlines, of at most 4 KiB.
func validRules(s string) bool {
	return len(s) <= 4096 && badText(s) == "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) && r != '\n' && r != '\t'
	})
}

// ParseCreateDatabase reads pg_dump's `CREATE DATABASE name WITH TEMPLATE
// = template0 OPTION = value …;` (PostgreSQL 11 to 17). The name is
// ignored: the target's name is coffer's. An option not in DBOptions, a
// value outside its character set, or anything after the statement
// fails, with an error naming the option.
func ParseCreateDatabase(defn string) (*DBOptions, error) {
	fail := func(format string, args ...any) (*DBOptions, error) {
		return nil, fmt.Errorf("the archive's CREATE DATABASE statement %s: %s", display(defn), fmt.Sprintf(format, args...))
	}
	toks, err := tokenize(defn)
	if err != nil {
		return fail("%v", err)
	}
	c := &cursor{toks: toks}
	if !c.word("create", "database") {
		return fail("not a CREATE DATABASE")
	}
	if _, ok := c.ident(); !ok {
		return fail("not a database name")
	}
	if !c.word("with", "template") || !c.sym("=") || !c.word("template0") {
		return fail("not WITH TEMPLATE = template0")
	}
	o := &DBOptions{}
	str := map[string]*string{"encoding": &o.Encoding, "locale": &o.Locale, "lc_collate": &o.LCCollate,
		"lc_ctype": &o.LCCtype, "icu_locale": &o.ICULocale, "icu_rules": &o.ICURules,
		"builtin_locale": &o.BuiltinLocale, "collation_version": &o.CollationVersion}
	seen := map[string]bool{}
	for !c.sym(";") {
		key, ok := c.anyWord()
		if !ok {
			return fail("not an option")
		}
		if seen[key] {
			return fail("option %s given twice", strings.ToUpper(key))
		}
		seen[key] = true
		dst := str[key]
		if dst == nil && key != "locale_provider" && key != "tablespace" {
			return fail("option %s is not carried over: coffer restores only the encoding and locale", keyword(key))
		}
		if !c.sym("=") {
			return fail("no = after %s", strings.ToUpper(key))
		}
		switch key {
		case "locale_provider":
			v, ok := c.anyWord()
			if !ok {
				v, ok = c.str()
			}
			if v = strings.ToLower(v); !ok || v != "libc" && v != "icu" && v != "builtin" {
				return fail("LOCALE_PROVIDER is not libc, icu or builtin")
			}
			o.LocaleProvider = v
		case "tablespace":
			if o.Tablespace, ok = c.ident(); !ok {
				return fail("TABLESPACE is not a name")
			}
		default:
			if *dst, ok = c.str(); !ok {
				return fail("%s is not a string literal", strings.ToUpper(key))
			}
			if *dst == "" {
				return fail("%s is empty", strings.ToUpper(key))
			}
		}
	}
	if !c.done() {
		return fail("more than one statement")
	}
	if err := o.check(); err != nil {
		return fail("%v", err)
	}
	return o, nil
}

// keyword renders a word of the statement in a message: upper-cased if
// it is plain ASCII, else quoted and escaped.
func keyword(w string) string {
	if plainWord.MatchString(w) {
		return strings.ToUpper(w)
	}
	return display(w)
}

var plainWord = regexp.MustCompile(`^[a-z0-9_$]{1,40}$`)

// check validates every value against its character set.
func (o *DBOptions) check() error {
	for _, v := range []struct {
		name, val string
		re        *regexp.Regexp
	}{{"ENCODING", o.Encoding, encodingName}, {"LOCALE", o.Locale, localeName}, {"LC_COLLATE", o.LCCollate, localeName},
		{"LC_CTYPE", o.LCCtype, localeName}, {"ICU_LOCALE", o.ICULocale, localeName},
		{"BUILTIN_LOCALE", o.BuiltinLocale, localeName}, {"COLLATION_VERSION", o.CollationVersion, versionName}} {
		if v.val != "" && !v.re.MatchString(v.val) {
			return fmt.Errorf("%s %s is not a name coffer accepts (%s)", v.name, display(v.val), v.re)
		}
	}
	if o.ICURules != "" && !validRules(o.ICURules) {
		return fmt.Errorf("ICU_RULES %s is not printable text of at most 4 KiB", display(o.ICURules))
	}
	return nil
}

// SQL is CREATE DATABASE name WITH TEMPLATE = template0 and the options
// of o that are set, as quoted literals. It is built from the values of
// o alone: neither the collation version nor the tablespace is included.
func (o *DBOptions) SQL(name string) string {
	var b strings.Builder
	b.WriteString("CREATE DATABASE " + quoteIdent(name) + " WITH TEMPLATE = template0")
	opt := func(key, val string) {
		if val != "" {
			b.WriteString(" " + key + " = " + quoteLiteral(val))
		}
	}
	opt("ENCODING", o.Encoding)
	if o.LocaleProvider != "" {
		b.WriteString(" LOCALE_PROVIDER = " + o.LocaleProvider)
	}
	opt("LOCALE", o.Locale)
	opt("LC_COLLATE", o.LCCollate)
	opt("LC_CTYPE", o.LCCtype)
	opt("ICU_LOCALE", o.ICULocale)
	opt("ICU_RULES", o.ICURules)
	opt("BUILTIN_LOCALE", o.BuiltinLocale)
	return b.String()
}

// ForServer returns the options a server of major version major takes,
// with notes on what was left out: LOCALE_PROVIDER and ICU_LOCALE before
// 15, ICU_RULES before 16, the builtin provider before 17, and LOCALE
// before 13 (written as LC_COLLATE and LC_CTYPE).
func (o *DBOptions) ForServer(major int) (*DBOptions, []string) {
	n := *o
	var notes []string
	drop := func(dst *string, what string, since int) {
		if *dst != "" && major < since {
			notes = append(notes, fmt.Sprintf("%s %s left out: PostgreSQL %d does not have it (it came with %d)", what, display(*dst), major, since))
			*dst = ""
		}
	}
	if n.LocaleProvider == "builtin" {
		drop(&n.BuiltinLocale, "BUILTIN_LOCALE", 17)
		if major < 17 {
			n.LocaleProvider = "libc"
		}
	}
	drop(&n.ICURules, "ICU_RULES", 16)
	drop(&n.ICULocale, "ICU_LOCALE", 15)
	if n.LocaleProvider == "libc" && major < 15 {
		n.LocaleProvider = "" // the only provider before 15
	}
	drop(&n.LocaleProvider, "LOCALE_PROVIDER", 15)
	if n.Locale != "" && major < 13 {
		if n.LCCollate == "" {
			n.LCCollate = n.Locale
		}
		if n.LCCtype == "" {
			n.LCCtype = n.Locale
		}
		n.Locale = ""
	}
	return &n, notes
}
