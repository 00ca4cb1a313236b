package postgres

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ObjectRef names the object a TOC entry of a pg_dump archive creates, in
// the form ALTER … OWNER TO takes, rebuilt from the entry's desc,
// namespace and tag (never from its SQL).
type ObjectRef struct {
	Kind   string // the ALTER keyword(s): TABLE, VIEW, FUNCTION, LARGE OBJECT…
	Schema string // empty for objects outside schemas
	Name   string // for a large object, its OID
	Args   string // routines: canonical argument list, without parentheses
}

// ownerKinds maps the TOC descs coffer can give an owner to the ALTER
// keyword and whether the object lives in a schema.
var ownerKinds = map[string]struct {
	kind     string
	inSchema bool
}{
	"TABLE": {"TABLE", true}, "VIEW": {"VIEW", true}, "MATERIALIZED VIEW": {"MATERIALIZED VIEW", true},
	"SEQUENCE": {"SEQUENCE", true}, "FOREIGN TABLE": {"FOREIGN TABLE", true},
	"TYPE": {"TYPE", true}, "DOMAIN": {"DOMAIN", true}, "COLLATION": {"COLLATION", true},
	"CONVERSION": {"CONVERSION", true}, "STATISTICS": {"STATISTICS", true},
	"TEXT SEARCH CONFIGURATION": {"TEXT SEARCH CONFIGURATION", true},
	"TEXT SEARCH DICTIONARY":    {"TEXT SEARCH DICTIONARY", true},
	"FUNCTION":                  {"FUNCTION", true}, "PROCEDURE": {"PROCEDURE", true}, "AGGREGATE": {"AGGREGATE", true},
	"SCHEMA": {"SCHEMA", false}, "PUBLICATION": {"PUBLICATION", false}, "SERVER": {"SERVER", false},
	"PROCEDURAL LANGUAGE": {"LANGUAGE", false}, "DATABASE": {"DATABASE", false},
	"BLOB": {"LARGE OBJECT", false},
}

// ownerRefused says why coffer does not give an owner to objects of the
// other descs that have one.
var ownerRefused = map[string]string{
	"EVENT TRIGGER":        "only a superuser may own an event trigger",
	"FOREIGN DATA WRAPPER": "only a superuser may own a foreign-data wrapper",
	"SUBSCRIPTION":         "a subscription connects to another server",
	"OPERATOR":             "its TOC entry does not name its operand types",
	"OPERATOR CLASS":       "its TOC entry does not name its access method",
	"OPERATOR FAMILY":      "its TOC entry does not name its access method",
	"BLOB METADATA":        "the entry stands for several large objects",
}

// checkName says why s cannot be a name as PostgreSQL stores it, or "".
func checkName(s string) string {
	return newLexer("").name(tQuoted, s, 0).bad
}

// ParseObjectRef rebuilds the name of the object of a TOC entry. For
// FUNCTION, PROCEDURE and AGGREGATE the tag is "name(argument types)",
// whose types are read and re-quoted as signatures are (signature.go).
func ParseObjectRef(desc, namespace, tag string) (ObjectRef, error) {
	what := fmt.Sprintf("%s %s", desc, display(tag))
	k, ok := ownerKinds[desc]
	if !ok {
		if why, ok := ownerRefused[desc]; ok {
			return ObjectRef{}, fmt.Errorf("%s: %s", what, why)
		}
		return ObjectRef{}, fmt.Errorf("%s: coffer does not give owners to objects of this kind", what)
	}
	o := ObjectRef{Kind: k.kind}
	if k.inSchema {
		if bad := checkName(namespace); bad != "" {
			return ObjectRef{}, fmt.Errorf("%s: its schema name is %s", what, bad)
		}
		o.Schema = namespace
	} else if namespace != "" {
		return ObjectRef{}, fmt.Errorf("%s: a %s in schema %s", what, desc, display(namespace))
	}
	switch desc {
	case "BLOB":
		if n, err := strconv.ParseUint(tag, 10, 32); err != nil || strconv.FormatUint(n, 10) != tag {
			return ObjectRef{}, fmt.Errorf("%s: not a large object OID", what)
		}
		o.Name = tag
	case "FUNCTION", "PROCEDURE", "AGGREGATE":
		name, args, err := splitSignature(tag, desc == "AGGREGATE")
		if err != nil {
			return ObjectRef{}, fmt.Errorf("%s: %w", what, err)
		}
		o.Name, o.Args = name, args
	default:
		if bad := checkName(tag); bad != "" {
			return ObjectRef{}, fmt.Errorf("%s: the name is %s", what, bad)
		}
		o.Name = tag
	}
	return o, nil
}

// splitSignature splits a routine's tag, whose name pg_dump does not
// quote, at the first "(" after which a valid argument list runs to its
// end. Only one split can be valid: a suffix of a valid list that starts
// inside it is not balanced.
func splitSignature(tag string, aggregate bool) (name, args string, err error) {
	if badText(tag) != "" {
		return "", "", errors.New("the tag is " + badText(tag))
	}
	for i := 0; i < len(tag); i++ {
		if tag[i] != '(' || checkName(tag[:i]) != "" {
			continue
		}
		// pg_dump writes no comments in a tag.
		toks, err := tokenize(tag[i:])
		if err != nil || strings.Contains(tag[i:], "--") || strings.Contains(tag[i:], "/*") {
			continue
		}
		c := &cursor{toks: toks[:len(toks)-1]}
		if args, ok := parseArgs(c, aggregate); ok && c.done() {
			return tag[:i], args, nil
		}
	}
	return "", "", errors.New("not a routine name followed by a list of argument types")
}

// String is the object's name as ALTER takes it, with every name quoted:
// FUNCTION "public"."f"(integer, "text").
func (o ObjectRef) String() string {
	s := o.Kind + " "
	switch {
	case o.Kind == "LARGE OBJECT":
		return s + o.Name
	case o.Schema != "":
		s += pgx.Identifier{o.Schema, o.Name}.Sanitize()
	default:
		s += quoteIdent(o.Name)
	}
	if o.Kind == "FUNCTION" || o.Kind == "PROCEDURE" || o.Kind == "AGGREGATE" {
		s += "(" + o.Args + ")"
	}
	return s
}

// OwnerSQL builds ALTER <object> OWNER TO <owner> for a TOC entry, from
// its desc, namespace, tag and owner, with every name quoted. It returns
// false for objects it cannot name safely or that coffer does not give
// owners to (ParseObjectRef says why), and for an owner that is not a
// usable role name or is a predefined role (pg_…: a SECURITY DEFINER
// function owned by pg_execute_server_program runs programs).
//
// It does not know the target's roles: the caller maps owners that are
// superusers or members of one (UnsafeOwner) to a role of its own, and
// runs it only for entries that pg_restore would give an owner (those
// with a drop statement: not, for example, the sequence of an identity
// column, which follows its table).
func OwnerSQL(desc, namespace, tag, owner string) (string, bool) {
	o, err := ParseObjectRef(desc, namespace, tag)
	if err != nil || checkName(owner) != "" || owner == "public" || owner == "none" || strings.HasPrefix(owner, "pg_") {
		return "", false
	}
	return "ALTER " + o.String() + " OWNER TO " + quoteIdent(owner), true
}
