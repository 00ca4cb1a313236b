package postgres

import (
	"context"
	"fmt"
	"regexp"

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
		if _, err := pc.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(l.db)); err != nil {
			return fmt.Errorf("drop %q, the partial copy a killed restore left: %w", l.db, err)
		}
		t.dropRole(ctx, pc, l.role)
		t.note("dropped %q, the partial copy that a killed restore of %q left", l.db, name)
	}
	return nil
}
