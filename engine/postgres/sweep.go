package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// sweepKilled drops the partial new copies of database name that restores
// with --clean left when they were killed (kill -9, power loss): a
// database named like the new copies Load makes (NAME_coffer_new_TIME),
// still owned by its load role (Load hands the finished copy to its
// owner, and Commit renames it), with no session on it (coffer's
// pg_restore dies with coffer), and the load role with it. A copy of a
// restore that still runs has sessions, or a load role still logged in,
// and is left alone.
func (t *Target) sweepKilled(ctx context.Context, pc *pgx.Conn, name string) error {
	probe := suffixed(name, "_coffer_new_"+t.stamp)
	prefix := probe[:len(probe)-len(t.stamp)]
	pattern := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `[0-9]{8}_[0-9]{6}(_[2-9])?$`)
	rows, err := pc.Query(ctx, `SELECT d.datname, r.rolname FROM pg_catalog.pg_database d
		JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
		WHERE starts_with(d.datname, $1) AND starts_with(r.rolname, $2)
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid OR a.usesysid = r.oid)`,
		prefix, loadRolePrefix)
	if err != nil {
		return fmt.Errorf("look for copies left by killed restores of %q: %w", name, err)
	}
	type left struct{ db, role string }
	var found []left
	for rows.Next() {
		var l left
		if err := rows.Scan(&l.db, &l.role); err != nil {
			rows.Close()
			return err
		}
		if pattern.MatchString(l.db) {
			found = append(found, l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range found {
		dropped, err := t.dropKilled(ctx, pc, l.db, l.role)
		if err != nil {
			return err
		}
		if dropped {
			t.note("dropped %q, the partial copy that a killed restore of %q left", l.db, name)
		}
	}
	return nil
}

// restoreLockKey is the advisory lock a Load holds on the maintenance
// database while it loads into database db.
func restoreLockKey(db string) int64 {
	h := fnv.New64a()
	h.Write([]byte("coffer restore\x00" + db))
	return int64(h.Sum64())
}

// dropKilled drops database db, owned by load role role, and the role,
// if no restore holds db's load lock and nobody is connected to it or as
// the role: a killed restore left it. It reports whether it dropped it.
func (t *Target) dropKilled(ctx context.Context, pc *pgx.Conn, db, role string) (bool, error) {
	var free bool
	if err := pc.QueryRow(ctx, "SELECT pg_catalog.pg_try_advisory_lock($1)", restoreLockKey(db)).Scan(&free); err != nil || !free {
		return false, err
	}
	defer pc.Exec(context.WithoutCancel(ctx), "SELECT pg_catalog.pg_advisory_unlock($1)", restoreLockKey(db))
	// Only coffer's own: the role says, in its comment, that it loads db.
	var busy, ours bool
	if err := pc.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
		WHERE a.datname = $1 OR a.usename = $2),
		EXISTS (SELECT FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_shdescription d
			ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::pg_catalog.regclass
			WHERE r.rolname = $2 AND NOT r.rolsuper AND d.description = $3)`, db, role, loadComment+db).Scan(&busy, &ours); err != nil || busy || !ours {
		return false, err
	}
	if _, err := pc.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)); err != nil {
		return false, fmt.Errorf("drop %q, which a killed restore left partly loaded: %w", db, err)
	}
	t.dropRole(ctx, pc, role)
	if !strings.Contains(db, "_coffer_new_") {
		t.note("dropped database %q, which a killed restore had left partly loaded", db)
	}
	return true, nil
}
