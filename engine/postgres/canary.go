package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/mask"
)

// PlantCanaries adds the canaries to the masked copy, before Commit: each
// a copy of a random row of the canaries table with its masked contact
// columns (by the rules: names, e-mail, phone, address) replaced by the
// canary's values and its integer primary key the next free one; and,
// for each table whose single-column foreign key references that key, one
// to three copies of random rows of it pointing at the canary, so that
// canaries have orders like real customers.
func (t *Target) PlantCanaries(ctx context.Context, cs []mask.Canary) error {
	m := t.opts.Mask
	if m == nil || m.Rules.Canaries == nil {
		return errors.New("canaries go into a masked copy whose rules have a canaries section")
	}
	schema, table, ok := strings.Cut(m.Rules.Canaries.Table, ".")
	if !ok {
		schema, table = "public", m.Rules.Canaries.Table
	}
	if len(t.dbs) == 0 {
		return errors.New("no database was loaded to plant canaries in")
	}
	x := t.dbs[len(t.dbs)-1]
	pc, err := t.c.connect(ctx, x.into)
	if err != nil {
		return err
	}
	defer pc.Close(context.WithoutCancel(ctx))
	p := &planter{pc: pc, rules: m.Rules}
	for _, c := range cs {
		id, err := p.clone(ctx, schema, table, m.Rules.CanaryValues(rulesTable(m.Rules, schema, table), c), "", nil)
		if err != nil {
			return fmt.Errorf("plant canaries in %s.%s of database %q: %w", schema, table, x.into, err)
		}
		if id == nil {
			continue
		}
		if err := p.orders(ctx, schema, table, id); err != nil {
			return fmt.Errorf("plant the canaries' rows referencing %s.%s in database %q: %w", schema, table, x.into, err)
		}
	}
	t.note("database %q: %d canary customers were planted in %s.%s", x.into, len(cs), schema, table)
	return nil
}

type planter struct {
	pc    *pgx.Conn
	rules *mask.Rules
}

type column struct {
	name string
	typ  string
}

func (p *planter) columns(ctx context.Context, schema, table string) ([]column, string, error) {
	rows, err := p.pc.Query(ctx, `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, schema, table)
	if err != nil {
		return nil, "", err
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.name, &c.typ)
	})
	if err != nil {
		return nil, "", err
	}
	var pk string
	err = p.pc.QueryRow(ctx, `SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::pg_catalog.regclass AND i.indisprimary AND i.indnatts = 1
		AND a.atttypid IN ('int2'::pg_catalog.regtype, 'int4'::pg_catalog.regtype, 'int8'::pg_catalog.regtype)`, schema, table).Scan(&pk)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return cols, pk, err
}

// clone inserts a copy of a random row of schema.table with the values
// given (column → text), fk set to ref when given, and the next integer
// primary key; it returns the new row's key (nil without one, or when the
// table is empty).
func (p *planter) clone(ctx context.Context, schema, table string, values map[string]string, fk string, ref any) (any, error) {
	cols, pk, err := p.columns(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	qt := quoteIdent(schema) + "." + quoteIdent(table)
	var names, exprs []string
	var args []any
	for _, c := range cols {
		qc := quoteIdent(c.name)
		names = append(names, qc)
		switch v, ok := values[c.name]; {
		case c.name == pk:
			exprs = append(exprs, "(SELECT COALESCE(pg_catalog.max("+qc+"), 0) + 1 FROM "+qt+")")
		case c.name == fk:
			args = append(args, ref)
			exprs = append(exprs, fmt.Sprintf("$%d::%s", len(args), c.typ))
		case ok:
			args = append(args, v)
			exprs = append(exprs, fmt.Sprintf("$%d::%s", len(args), c.typ))
		default:
			exprs = append(exprs, qc)
		}
	}
	q := "INSERT INTO " + qt + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") + " FROM " + qt + " ORDER BY pg_catalog.random() LIMIT 1"
	if pk != "" {
		q += " RETURNING " + quoteIdent(pk) + "::pg_catalog.int8"
	}
	var id int64
	if pk == "" {
		_, err = p.pc.Exec(ctx, q, args...)
		return nil, err
	}
	err = p.pc.QueryRow(ctx, q, args...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return id, err
}

// orders clones a few rows of each table that references schema.table's
// primary key by a single-column foreign key, pointing them at id.
func (p *planter) orders(ctx context.Context, schema, table string, id any) error {
	rows, err := p.pc.Query(ctx, `SELECT n.nspname, c.relname, a.attname FROM pg_catalog.pg_constraint k
		JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
		WHERE k.contype = 'f' AND pg_catalog.array_length(k.conkey, 1) = 1
		AND k.confrelid = pg_catalog.format('%I.%I', $1::text, $2::text)::pg_catalog.regclass ORDER BY 1, 2`, schema, table)
	if err != nil {
		return err
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var x [3]string
		return x, r.Scan(&x[0], &x[1], &x[2])
	})
	if err != nil {
		return err
	}
	for _, ref := range refs {
		for range 1 + rand.IntN(3) { // how many orders a customer has is no secret
			if _, err := p.clone(ctx, ref[0], ref[1], nil, ref[2], id); err != nil {
				return err
			}
		}
	}
	return nil
}
