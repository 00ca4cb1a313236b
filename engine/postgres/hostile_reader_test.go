package postgres

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestHostileReaderPassword (found by a review): a drill's assertions run
// the snapshot's code as the reader role, which may read every table of
// the server (pg_read_all_data) and bypasses row security; any role may
// change its own password, so a view's function could set one the backup
// host knows, and anyone who can reach the server could log in as the
// reader while the drill runs. Once the assertions' connection is open
// the reader may log in no more.
func TestHostileReaderPassword(t *testing.T) {
	ctx := context.Background()
	src := createDatabase(t, "rdpw", "")
	run(t, src, `CREATE TABLE people (id int PRIMARY KEY);
		INSERT INTO people SELECT generate_series(1, 10);
		CREATE FUNCTION public.payload() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN EXECUTE 'ALTER ROLE ' || quote_ident(current_user) || ' PASSWORD ''known-to-the-backup-host'''; RETURN 1; END $$;
		CREATE VIEW public.customers AS SELECT p.id, public.payload() AS x FROM people p`)
	stream, rep := backup(t, dsn(src), Options{})
	target := newDatabase(t, "rdpw_r")
	tg, err := NewTarget(dsn(target), TargetOptions{Scratch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Abort(context.WithoutCancel(ctx))
	if err := tg.Load(ctx, bytes.NewReader(stream), rep); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Digests(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := tg.OpenReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(x) FROM customers").Scan(&n); err != nil || n != 10 {
		t.Fatalf("the assertion's query: %d, %v (the payload must run, as the reader)", n, err)
	}
	cfg, err := pgx.ParseConfig("postgres://127.0.0.1:5432/" + target)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = tg.reader.name, "known-to-the-backup-host"
	if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		c.Close(ctx)
		t.Fatalf("logged in as the reader role %s with the password the snapshot set", tg.reader.name)
	} else if !strings.Contains(err.Error(), "not permitted to log in") {
		t.Logf("login refused: %v", err)
	}
}
