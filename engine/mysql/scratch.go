package mysql

import (
	"context"
	"database/sql"
	"fmt"
)

// OpenDatabase connects to database name on the server at dsn, for
// queries against a restored database (drill assertions).
func OpenDatabase(ctx context.Context, dsn, name string) (*sql.DB, error) {
	c, err := newConn(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return c.openAs(ctx, c.user, c.password, name)
}

// DropDatabase drops database name on the server at dsn, and the account
// that defines its views, triggers and routines (coffer_definer_NAME); a
// database that does not exist is not an error.
func DropDatabase(ctx context.Context, dsn, name string) error {
	c, err := newConn(ctx, dsn)
	if err != nil {
		return err
	}
	a, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)); err != nil {
		return fmt.Errorf("drop database %q at %s: %w", name, c.addr(), err)
	}
	return a.dropDefiner(ctx, name)
}
