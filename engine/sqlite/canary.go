package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/mask"
)

// PlantCanaries adds the canaries to the masked database at path, in the
// rules' canaries table, with rows of the tables that reference it
// (engine.Planter).
func PlantCanaries(ctx context.Context, path string, m *Masking, cs []mask.Canary) error {
	if m == nil || m.Rules.Canaries == nil {
		return errors.New("canaries go into a masked copy whose rules have a canaries section")
	}
	table := m.Rules.Canaries.Table
	db, err := open(path, false)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p := &engine.Planter{DB: c, Quote: quoteIdent, Random: "random()",
		Columns: func(ctx context.Context, table string) ([]string, string, error) {
			cols, err := engine.QueryStrings(ctx, c, "SELECT name FROM pragma_table_info(?) ORDER BY cid", table)
			if err != nil {
				return nil, "", err
			}
			pk, err := engine.QueryStrings(ctx, c, "SELECT name FROM pragma_table_info(?) WHERE pk > 0 AND upper(type) IN ('INTEGER', 'INT', 'BIGINT')", table)
			if n, _ := engine.QueryStrings(ctx, c, "SELECT name FROM pragma_table_info(?) WHERE pk > 0", table); err != nil || len(pk) != 1 || len(n) != 1 {
				return cols, "", err
			}
			return cols, pk[0], nil
		},
		Refs: func(ctx context.Context, table, pk string) ([][2]string, error) {
			tables, err := engine.QueryStrings(ctx, c, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
			if err != nil {
				return nil, err
			}
			var out [][2]string
			for _, tb := range tables {
				cols, err := engine.QueryStrings(ctx, c, `SELECT f."from" FROM pragma_foreign_key_list(?) f WHERE f."table" = ? AND COALESCE(f."to", ?) = ?
					AND (SELECT COUNT(*) FROM pragma_foreign_key_list(?) g WHERE g.id = f.id) = 1`, tb, table, pk, pk, tb)
				if err != nil {
					return nil, err
				}
				for _, col := range cols {
					out = append(out, [2]string{tb, col})
				}
			}
			return out, nil
		}}
	for _, cn := range cs {
		if err := p.Plant(ctx, table, m.Rules.CanaryValues(table, cn)); err != nil {
			return fmt.Errorf("plant canaries in table %q of %s: %w", table, path, err)
		}
	}
	return nil
}
