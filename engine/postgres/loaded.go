package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A snapshot's table of contents is the backup host's claim about what
// the dump holds, and an entry may name an object the load did not
// create: "FUNCTION pg_catalog.lo_export(oid, text)", or "SCHEMA
// pg_catalog", with an empty definition that pg_restore runs as nothing.
// Coffer applies owners as a superuser, so obeying such an entry would
// hand one of PostgreSQL's own objects (a function that writes files on
// the server, the schema every name resolves in) to a role the snapshot
// chose. So an owner is applied only to an object that the load role owns
// at that moment, which is exactly what the load created; PostgreSQL's
// own dependency records (pg_shdepend, deptype 'o') say so, whatever the
// object's kind.

// systemSchema reports whether schema s is PostgreSQL's own (acl.go's
// systemSchemas, and the temporary ones): nothing in it is the snapshot's.
func systemSchema(s string) bool {
	return systemSchemas[s] || strings.HasPrefix(s, "pg_temp") || strings.HasPrefix(s, "pg_toast_temp")
}

// objectQuery is a query of the catalog and object id of o, given as $1
// (its text for a reg* lookup, or its name) and $2 (its schema).
func objectQuery(o ObjectRef) (q string, args []any, ok bool) {
	qualified := pgx.Identifier{o.Schema, o.Name}.Sanitize()
	inSchema := func(catalog, name, ns string) (string, []any, bool) {
		return fmt.Sprintf(`SELECT 'pg_catalog.%[1]s'::pg_catalog.regclass, c.oid FROM pg_catalog.%[1]s c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.%[3]s WHERE c.%[2]s = $1 AND n.nspname = $2`, catalog, name, ns), []any{o.Name, o.Schema}, true
	}
	byName := func(catalog, name string) (string, []any, bool) {
		return fmt.Sprintf(`SELECT 'pg_catalog.%[1]s'::pg_catalog.regclass, oid FROM pg_catalog.%[1]s WHERE %[2]s = $1`, catalog, name), []any{o.Name}, true
	}
	switch o.Kind {
	case "TABLE", "VIEW", "MATERIALIZED VIEW", "SEQUENCE", "FOREIGN TABLE":
		return `SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, pg_catalog.to_regclass($1)::pg_catalog.oid`, []any{qualified}, true
	case "FUNCTION", "PROCEDURE", "AGGREGATE":
		return `SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, pg_catalog.to_regprocedure($1)::pg_catalog.oid`, []any{qualified + "(" + o.Args + ")"}, true
	case "TYPE", "DOMAIN":
		return `SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, pg_catalog.to_regtype($1)::pg_catalog.oid`, []any{qualified}, true
	case "COLLATION":
		return inSchema("pg_collation", "collname", "collnamespace")
	case "CONVERSION":
		return inSchema("pg_conversion", "conname", "connamespace")
	case "STATISTICS":
		return inSchema("pg_statistic_ext", "stxname", "stxnamespace")
	case "TEXT SEARCH CONFIGURATION":
		return inSchema("pg_ts_config", "cfgname", "cfgnamespace")
	case "TEXT SEARCH DICTIONARY":
		return inSchema("pg_ts_dict", "dictname", "dictnamespace")
	case "SCHEMA":
		return byName("pg_namespace", "nspname")
	case "LANGUAGE":
		return byName("pg_language", "lanname")
	case "SERVER":
		return byName("pg_foreign_server", "srvname")
	case "PUBLICATION":
		return byName("pg_publication", "pubname")
	case "LARGE OBJECT":
		return `SELECT 'pg_catalog.pg_largeobject_metadata'::pg_catalog.regclass, $1::pg_catalog.oid`, []any{o.Name}, true
	}
	return "", nil, false
}

// createdByLoad reports whether the object a TOC entry names is owned by
// the load role role in the connected database, i.e. whether the load
// created it. An object that does not exist, or that coffer cannot look
// up, is not.
func createdByLoad(ctx context.Context, pc *pgx.Conn, e *tocEntry, role string) (bool, error) {
	o, err := ParseObjectRef(e.desc, e.namespace, e.tag)
	if err != nil || systemSchema(o.Schema) || (o.Kind == "SCHEMA" && systemSchema(o.Name)) {
		return false, nil
	}
	q, args, ok := objectQuery(o)
	if !ok {
		return false, nil
	}
	var owned bool
	err = pc.QueryRow(ctx, `WITH obj(classid, objid) AS (`+q+`)
		SELECT EXISTS (SELECT FROM obj JOIN pg_catalog.pg_shdepend d ON d.classid = obj.classid AND d.objid = obj.objid
			WHERE d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
			AND d.deptype = 'o' AND d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
			AND d.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $`+fmt.Sprint(len(args)+1)+`))`,
		append(args, role)...).Scan(&owned)
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", o, err)
	}
	return owned, nil
}
