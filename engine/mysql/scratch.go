package mysql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// OpenDatabase connects to database name on the server at dsn, for
// queries against a restored database (drill assertions).
func OpenDatabase(ctx context.Context, dsn, name string) (*sql.DB, error) {
	c, err := newConn(dsn)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = c.user, c.password, "tcp", c.addr(), name
	cfg.Timeout, cfg.Logger = ConnectTimeout, nopLogger{}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, c.explain(err)
	}
	return db, nil
}

// DropDatabase drops database name on the server at dsn; a database that
// does not exist is not an error.
func DropDatabase(ctx context.Context, dsn, name string) error {
	c, err := newConn(dsn)
	if err != nil {
		return err
	}
	db, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)); err != nil {
		return fmt.Errorf("drop database %q at %s: %w", name, c.addr(), err)
	}
	return nil
}
