package drill

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/coffer-backup/coffer/engine"
)

// connect opens a connection to a restored server with coffer's search
// path: the catalog is the backup's, and names coffer's queries use
// resolve to PostgreSQL's own objects first.
func connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	return pgx.ConnectConfig(ctx, cfg)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// countRows counts the rows of every table of every database. A physical
// backup records no per-table counts, so there is nothing to compare with:
// the counts show what the restored cluster holds, and that every table
// can be read to its end. Table names are customer metadata: they are in
// the report, which is sealed, never in the summary writers read.
func (p *pitrRun) countRows(ctx context.Context) {
	cfg, err := p.srv.ConnConfig("")
	if !p.must(checkRowCounts, err) {
		return
	}
	c, err := connect(ctx, cfg)
	if !p.must(checkRowCounts, err) {
		return
	}
	rows, _ := c.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	c.Close(ctx)
	if !p.must(checkRowCounts, err) {
		return
	}
	var total int64
	for _, db := range dbs {
		n, err := p.countDatabase(ctx, db)
		if err != nil {
			p.check(checkRowCounts, fmt.Errorf("database %s: %w", db, err), "")
			return
		}
		total += n
	}
	p.check(checkRowCounts, nil, fmt.Sprintf("%d tables in %d databases counted to their end: %d rows in all", len(p.run.Tables), len(dbs), total))
}

func (p *pitrRun) countDatabase(ctx context.Context, db string) (int64, error) {
	cfg, err := p.srv.ConnConfig(db)
	if err != nil {
		return 0, err
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	type table struct{ Schema, Name string }
	rows, _ := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
		ORDER BY 1, 2`)
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tables {
		var n int64
		// As the superuser, whom row security never applies to.
		if err := c.QueryRow(ctx, "SELECT pg_catalog.count(*) FROM "+quoteIdent(t.Schema)+"."+quoteIdent(t.Name)).Scan(&n); err != nil {
			return 0, fmt.Errorf("count the rows of %s.%s: %w", t.Schema, t.Name, err)
		}
		total += n
		p.run.Tables = append(p.run.Tables, TableCheck{engine.TableResult{Table: db + "." + t.Schema + "." + t.Name, WantRows: -1, GotRows: n, Match: true, Reason: "counted"}})
	}
	return total, nil
}

// runAssertions runs the user's assertions in the database they name
// (Options.Database) as a throwaway reader role, as the logical drill
// does: they are the operator's queries, but the objects they read are
// the backup's.
func (p *pitrRun) runAssertions(ctx context.Context) {
	db := p.opts.Database
	if db == "" {
		db = "postgres"
	}
	cfg, err := p.srv.ConnConfig(db)
	if !p.must("connect to scratch", err) {
		return
	}
	admin, err := connect(ctx, cfg)
	if !p.must("connect to scratch", err) {
		return
	}
	defer admin.Close(ctx)
	b := make([]byte, 32)
	crand.Read(b)
	role, password := "coffer_read_"+hex.EncodeToString(b[:8]), hex.EncodeToString(b[8:])
	for _, stmt := range []string{
		"CREATE ROLE " + quoteIdent(role) + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS PASSWORD '" + password + "'",
		"GRANT pg_read_all_data TO " + quoteIdent(role),
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			p.check("connect to scratch", fmt.Errorf("create the reader role: %w", err), "")
			return
		}
	}
	rcfg := cfg.Copy()
	rcfg.User, rcfg.Password = role, password
	rcfg.RuntimeParams["search_path"] = `"$user", public`
	sdb := stdlib.OpenDB(*rcfg)
	defer sdb.Close()
	sdb.SetMaxOpenConns(1)
	sdb.SetMaxIdleConns(1)
	sdb.SetConnMaxLifetime(0)
	sdb.SetConnMaxIdleTime(0)
	if err := sdb.PingContext(ctx); err != nil {
		p.check("connect to scratch", fmt.Errorf("connect to database %s as the reader: %w", db, err), "")
		return
	}
	// Logged in once: the backup's functions the assertions may run as
	// the reader cannot use its password to log in again.
	if _, err := admin.Exec(ctx, "ALTER ROLE "+quoteIdent(role)+" NOLOGIN"); !p.must("connect to scratch", err) {
		return
	}
	for _, a := range p.opts.Assertions {
		got, err := a.eval(ctx, sdb)
		p.check("assertion: "+a.Name, err, fmt.Sprintf("%s = %s", strings.TrimSpace(a.SQL), got))
	}
}
