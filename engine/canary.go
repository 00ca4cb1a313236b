package engine

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
)

// DB is a *sql.DB, *sql.Conn or *sql.Tx.
type DB interface {
	Querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Planter plants canaries in a masked copy through database/sql (MariaDB,
// SQLite; PostgreSQL has its own): each a copy of a random row of the
// canaries table with the canary's contact values and the next integer
// primary key, and, for each table whose single-column foreign key
// references that key, one to three copies of random rows of it pointing
// at the canary, so that canaries have orders like real customers.
type Planter struct {
	DB     DB
	Quote  func(ident string) string
	Random string // the SQL expression that orders rows at random
	// Columns lists a table's columns and its integer primary key ("" if
	// it has none of one column).
	Columns func(ctx context.Context, table string) (cols []string, pk string, err error)
	// Refs lists the tables and columns whose single-column foreign key
	// references table.pk.
	Refs func(ctx context.Context, table, pk string) ([][2]string, error)
}

// Plant clones a random row of table with values (column → value),
// then rows of the tables referencing it.
func (p *Planter) Plant(ctx context.Context, table string, values map[string]string) error {
	id, err := p.clone(ctx, table, values, "", nil)
	if err != nil || id == nil {
		return err
	}
	_, pk, err := p.Columns(ctx, table)
	if err != nil {
		return err
	}
	refs, err := p.Refs(ctx, table, pk)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		for range 1 + rand.IntN(3) { // how many orders a customer has is no secret
			if _, err := p.clone(ctx, ref[0], nil, ref[1], id); err != nil {
				return err
			}
		}
	}
	return nil
}

// clone inserts a copy of a random row of table with the values given,
// fk set to ref when given, and the next integer primary key; it returns
// the new row's key (nil without one, or when the table is empty).
func (p *Planter) clone(ctx context.Context, table string, values map[string]string, fk string, ref any) (any, error) {
	cols, pk, err := p.Columns(ctx, table)
	if err != nil {
		return nil, err
	}
	qt := p.Quote(table)
	var next int64
	if pk != "" {
		if err := p.DB.QueryRowContext(ctx, "SELECT COALESCE(MAX("+p.Quote(pk)+"), 0) + 1 FROM "+qt).Scan(&next); err != nil {
			return nil, err
		}
	}
	var names, exprs []string
	var args []any
	for _, c := range cols {
		names = append(names, p.Quote(c))
		switch v, ok := values[c]; {
		case c == pk:
			args, exprs = append(args, next), append(exprs, "?")
		case c == fk:
			args, exprs = append(args, ref), append(exprs, "?")
		case ok:
			args, exprs = append(args, v), append(exprs, "?")
		default:
			exprs = append(exprs, p.Quote(c))
		}
	}
	res, err := p.DB.ExecContext(ctx, "INSERT INTO "+qt+" ("+strings.Join(names, ", ")+") SELECT "+strings.Join(exprs, ", ")+" FROM "+qt+" ORDER BY "+p.Random+" LIMIT 1", args...)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 || pk == "" {
		return nil, errors.Join(err)
	}
	return next, nil
}
