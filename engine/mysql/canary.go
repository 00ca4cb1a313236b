package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

// PlantCanaries implements restore's canary target: the canaries go into
// the rules' canaries table of the masked copy, before Commit, with the
// orders that reference it (engine.Planter).
func (t *Target) PlantCanaries(ctx context.Context, cs []mask.Canary) error {
	m := t.opts.Mask
	if m == nil || m.Rules.Canaries == nil || t.mv == nil {
		return errors.New("canaries go into a masked copy whose rules have a canaries section")
	}
	key := m.Rules.Canaries.Table
	var x *mapping
	var table string
	for _, l := range t.loaded {
		d := t.mv.dbs[l.from]
		for name, tb := range d.tables {
			if tb.key == key || l.from+"."+name == key {
				x, table = l, name
			}
		}
	}
	if x == nil {
		return fmt.Errorf("the canaries table %s of %s is not in the snapshot", key, m.Rules.File)
	}
	conn, err := t.userConn(ctx, x.into)
	if err != nil {
		return err
	}
	defer conn.Close()
	schema := x.into
	p := &engine.Planter{DB: conn, Quote: quoteIdent, Random: "RAND()",
		Columns: func(ctx context.Context, table string) ([]string, string, error) {
			cols, err := engine.QueryStrings(ctx, conn, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", schema, table)
			if err != nil {
				return nil, "", err
			}
			pk, err := engine.QueryStrings(ctx, conn, `SELECT k.COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.COLUMNS c
				ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME
				WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' AND c.DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')`, schema, table)
			if err != nil || len(pk) != 1 {
				return cols, "", err
			}
			return cols, pk[0], nil
		},
		Refs: func(ctx context.Context, table, pk string) ([][2]string, error) {
			rows, err := engine.QueryStrings(ctx, conn, `SELECT CONCAT(k.TABLE_NAME, '\0', k.COLUMN_NAME) FROM information_schema.KEY_COLUMN_USAGE k
				WHERE k.TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ? AND k.REFERENCED_COLUMN_NAME = ?
				AND (SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE o WHERE o.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND o.TABLE_NAME = k.TABLE_NAME AND o.CONSTRAINT_NAME = k.CONSTRAINT_NAME) = 1
				ORDER BY 1`, schema, schema, table, pk)
			var out [][2]string
			for _, r := range rows {
				a, b, _ := strings.Cut(r, "\x00")
				out = append(out, [2]string{a, b})
			}
			return out, err
		}}
	for _, c := range cs {
		if err := p.Plant(ctx, table, m.Rules.CanaryValues(key, c)); err != nil {
			return fmt.Errorf("plant canaries in %s of database %q: %w", quoteIdent(table), x.into, err)
		}
	}
	t.note("database %q: %d canary customers were planted in %s", x.into, len(cs), table)
	return nil
}
