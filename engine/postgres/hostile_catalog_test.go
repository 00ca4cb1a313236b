package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestHostileCatalogOwner (found by a red-team review): the archive's TOC names PostgreSQL's own objects
// (pg_catalog.lo_export, schema pg_catalog) with an owner of the
// snapshot's choosing and an empty definition, so pg_restore runs nothing
// for them; coffer's ownership phase, connected as a superuser, then runs
// ALTER FUNCTION pg_catalog.lo_export(oid, text) OWNER TO <tenant role>.
// The tenant role thereby gets EXECUTE on server-side lo_export (write any
// file as the server's OS user). A table owned by that role carries an
// expression index whose function writes a file with lo_export when it
// runs as the table owner: ANALYZE (autovacuum, or the ANALYZE that the
// PostgreSQL docs recommend after pg_restore) runs it. Coffer must give
// owners only to what the load created: PostgreSQL's objects keep theirs,
// and none of the harms below happens, for restore --to and for a drill.
func TestHostileCatalogOwner(t *testing.T) {
	for _, scratch := range []bool{false, true} {
		t.Run(map[bool]string{false: "restore", true: "drill"}[scratch], func(t *testing.T) { hostileCatalogOwner(t, scratch) })
	}
}

func hostileCatalogOwner(t *testing.T, scratch bool) {
	ctx := context.Background()
	tenant := newRole(t, "rt_tenant", "NOSUPERUSER NOLOGIN")
	canary := filepath.Join(canaryDir(t), "canary")

	src := createDatabase(t, "rtsrc", "")
	loid := "4242" + randomHex(2)[:0] + "77"
	run(t, src, "SELECT pg_catalog.lo_from_bytea("+loid+", 'pwned by the backup host'); ALTER LARGE OBJECT "+loid+" OWNER TO "+tenant)
	run(t, src, `CREATE FUNCTION public.plant() RETURNS void LANGUAGE plpgsql VOLATILE AS $p$ BEGIN
`+`				EXECUTE $x$CREATE OR REPLACE FUNCTION pg_catalog.lower(character varying) RETURNS text LANGUAGE plpgsql AS $b$
					BEGIN IF pg_catalog.current_setting('is_superuser') = 'on' THEN
						COPY (SELECT 1) TO PROGRAM 'cat > `+canary+`.super'; END IF;
					RETURN pg_catalog.lower($1::text); END $b$$x$;`+`
		END $p$;
		ALTER FUNCTION public.plant() OWNER TO `+tenant)
	run(t, src, `CREATE FUNCTION public.idx(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
		BEGIN
			IF current_user::text = '`+tenant+`' THEN
				PERFORM pg_catalog.lo_export(`+loid+`, '`+canary+`');
				PERFORM public.plant();
			END IF;
			RETURN i;
		END $f$;
		CREATE TABLE public.t (id int PRIMARY KEY, v text);
		INSERT INTO public.t SELECT i, 'row ' || i FROM generate_series(1, 500) i;
		CREATE INDEX t_idx ON public.t (public.idx(id));
		ALTER TABLE public.t OWNER TO `+tenant+`;
		ALTER FUNCTION public.idx(int) OWNER TO `+tenant)
	stream, rep := backup(t, dsn(src), Options{})
	stream, rep = replacePart(t, stream, rep, src+partSuffix, func(b []byte) []byte {
		return rewriteTOC(t, b, func(es []*rawEntry) []*rawEntry {
			var maxID int64
			var proto *rawEntry
			for _, e := range es {
				maxID = max(maxID, e.id)
				if e.desc.s == "FUNCTION" {
					proto = e
				}
			}
			if proto == nil {
				t.Fatal("no FUNCTION entry")
			}
			fake := func(desc, ns, tag string) *rawEntry {
				maxID++
				c := *proto
				c.id, c.hadDumper = maxID, 0
				c.desc, c.ns, c.tag = rawStr{s: desc}, rawStr{s: ns}, rawStr{s: tag}
				if ns == "" {
					c.ns = rawStr{null: false}
				}
				c.defn, c.drop, c.copy = rawStr{s: ""}, rawStr{s: ""}, rawStr{s: ""}
				c.owner = rawStr{s: tenant}
				c.deps = nil
				c.flag = offsetNoData
				return &c
			}
			return append(es,
				fake("FUNCTION", "pg_catalog", "lo_export(oid, text)"),
				fake("FUNCTION", "pg_catalog", "pg_read_file(text)"),
				fake("SCHEMA", "", "pg_catalog"))
		})
	})

	target := newDatabase(t, "rtcat")
	opts := TargetOptions{Jobs: 1}
	if scratch {
		opts.Scratch = true
		opts.Jobs = 2
	}
	restoreWith(t, dsn(target), opts, stream, rep)
	if exists(canary) {
		t.Log("canary already written during the restore")
	}
	pc := connect(t, target)
	for _, q := range []string{
		"SELECT pg_catalog.pg_get_userbyid(proowner) FROM pg_catalog.pg_proc WHERE oid = 'pg_catalog.lo_export(oid, text)'::pg_catalog.regprocedure",
		"SELECT pg_catalog.pg_get_userbyid(proowner) FROM pg_catalog.pg_proc WHERE oid = 'pg_catalog.pg_read_file(text)'::pg_catalog.regprocedure",
		"SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname = 'pg_catalog'",
	} {
		var owner string
		if err := pc.QueryRow(ctx, q).Scan(&owner); err != nil {
			t.Fatal(err)
		}
		if owner == tenant {
			t.Errorf("HARM: %s -> %s: the snapshot gave PostgreSQL's own object to its role", q, owner)
		}
	}
	// The operator (or autovacuum) analyzes the restored database.
	if _, err := pc.Exec(ctx, "ANALYZE"); err != nil {
		t.Logf("ANALYZE: %v", err)
	}
	if exists(canary) {
		b, _ := os.ReadFile(canary)
		fi, _ := os.Stat(canary)
		t.Errorf("HARM: after ANALYZE of the restored database, the server wrote %s (%q, mode %v): the snapshot made a tenant role own pg_catalog.lo_export", canary, b, fi.Mode())
	}
	// Later, any superuser session in the restored database (search_path
	// pinned to pg_catalog, pg_temp, as coffer's own) calls lower() on a
	// varchar column.
	var low string
	if _, err := pc.Exec(ctx, "SET search_path = pg_catalog, pg_temp"); err != nil {
		t.Fatal(err)
	}
	if err := pc.QueryRow(ctx, "SELECT lower(v::varchar) FROM public.t LIMIT 1").Scan(&low); err != nil {
		t.Logf("lower: %v", err)
	}
	if exists(canary + ".super") {
		b, _ := os.ReadFile(canary + ".super")
		t.Errorf("HARM: a superuser session in the restored database ran a program on the server: %s holds %q", canary+".super", b)
	}
	// And as the tenant role itself, any server file the server user can read.
	var hba string
	err := pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+tenant); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT pg_catalog.left(pg_catalog.pg_read_file('postgresql.auto.conf'), 200)").Scan(&hba)
	})
	if err == nil {
		t.Errorf("HARM: tenant role %s read postgresql.auto.conf in the data directory: %q", tenant, strings.TrimSpace(hba))
	} else {
		t.Logf("pg_read_file as tenant: %v", err)
	}
}
