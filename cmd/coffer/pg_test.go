package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func postgres(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/"+db)
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 (user postgres, trust) is needed: %v (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestCLIPostgres backs a database up twice through the CLI and restores
// each snapshot into a fresh database, verified table by table.
func TestCLIPostgres(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("coffer_cli_%d", time.Now().UnixNano()%1e9)
	admin := postgres(t, "postgres")
	for _, db := range []string{name, name + "_r1", name + "_r2"} {
		t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	src := postgres(t, name)
	_, err := src.Exec(ctx, `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, photo bytea);
		CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2));
		INSERT INTO customers (name, email, photo) SELECT 'Zoë O''Brien ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'c' || g || '@example.com' END, '\x00ff'::bytea FROM generate_series(1, 5000) g;
		INSERT INTO orders (customer_id, total) SELECT g, g / 7.0 FROM generate_series(1, 5000) g;`)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	url := "postgres://postgres@127.0.0.1:5432/" + name
	first := c.backup(nil, "--source", "shop", "--postgres", url)
	src.Exec(ctx, "UPDATE customers SET email = 'changed@example.com' WHERE id = 7; INSERT INTO orders (customer_id, total) VALUES (1, 9.99)")
	second := c.backup(nil, "--source", "shop", "--postgres", url)
	mustContain(t, "coffer snapshots", c.ok(nil, "snapshots"), "postgres", name)
	mustContain(t, "coffer ls", c.ok(nil, "ls", second.Snapshot[:8]), name+".public.orders", "5001")

	for i, s := range []backupJSON{first, second} {
		var res restoreDB
		out := c.ok(nil, "restore", s.Snapshot, "--to", fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s_r%d", name, i+1), "--json")
		if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified || len(res.Tables) != 2 {
			t.Fatalf("restore %d: %v\n%s", i+1, err, out)
		}
	}
	t.Cleanup(func() { dropLike(t, name) }) // what --clean kept, should the test stop early
	n1, n2 := countRows(t, name+"_r1", "orders"), countRows(t, name+"_r2", "orders")
	if n1 != 5000 || n2 != 5001 {
		t.Fatalf("restored order counts %d and %d, want 5000 and 5001", n1, n2)
	}
	mustContain(t, "restore into a non-empty database", c.fail(nil, "restore", first.Snapshot, "--to", fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s_r2", name)), "--clean")
	c.ok(nil, "restore", first.Snapshot, "--to", fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s_r2", name), "--clean", "--drop-old")
	if n := countRows(t, name+"_r2", "orders"); n != 5000 {
		t.Fatalf("after restore --clean of the first snapshot: %d orders, want 5000", n)
	}
	mustContain(t, "backup of a missing database", c.fail(nil, "backup", "--source", "x", "--postgres", "postgres://postgres@127.0.0.1:5432/no_such_db_coffer"), "no_such_db_coffer")
	mustContain(t, "backup with a password in the URL", c.fail(nil, "backup", "--source", "x", "--postgres", "postgres://postgres:secret@127.0.0.1:5432/"+name), "PGPASSWORD")
}

// countRows counts a table's rows over a connection of its own, closed at
// once (an open session would keep restore --clean from swapping).
func countRows(t *testing.T, db, table string) int {
	t.Helper()
	c, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// dropLike drops every database whose name starts with prefix.
func dropLike(t *testing.T, prefix string) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres")
	if err != nil {
		return
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		c.Exec(ctx, `DROP DATABASE IF EXISTS "`+n+`" WITH (FORCE)`)
	}
}

// TestCLIPostgresAddressForms: `backup --postgres` takes the address in
// every form pg_dump users type (a bare database name with PGHOST and
// PGUSER, conninfo, the Unix socket, a URL without host or user), and each
// backs up the same database: the tables' digests are equal.
func TestCLIPostgresAddressForms(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("coffer_addr_%d", time.Now().UnixNano()%1e9)
	admin := postgres(t, "postgres")
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres(t, name).Exec(ctx, `CREATE TABLE customers (id int PRIMARY KEY, email text);
		INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
	var socketDir string
	if err := admin.QueryRow(ctx, "SELECT split_part(current_setting('unix_socket_directories'), ',', 1)").Scan(&socketDir); err != nil || socketDir == "" {
		t.Fatalf("the server's socket directory: %q %v", socketDir, err)
	}
	c := newCLI(t, filepath.Join(t.TempDir(), "repo")).without("PGHOST", "PGPORT", "PGUSER", "PGDATABASE")
	c.init()
	env := c.with("PGHOST=127.0.0.1", "PGUSER=postgres", "PGPORT=5432")
	forms := []struct {
		what, addr string
		c          *cli
	}{
		{"URL", "postgres://postgres@127.0.0.1:5432/" + name, c},
		{"bare name with PGHOST and PGUSER", name, env},
		{"URL without host or user", "postgres:///" + name, env},
		{"conninfo", "host=127.0.0.1 port=5432 user=postgres dbname='" + name + "'", c},
		{"conninfo through the Unix socket", "host=" + socketDir + " user=postgres dbname=" + name, c},
		{"URL through the Unix socket", "postgres://postgres@/" + name + "?host=" + socketDir, c},
		{"bare name with PGHOST a socket directory", name, c.with("PGHOST="+socketDir, "PGUSER=postgres")},
	}
	var want string
	for _, f := range forms {
		b := f.c.backup(nil, "--source", "shop", "--postgres", f.addr)
		got := c.ok(nil, "ls", b.Snapshot, "--json")
		var l struct {
			Tables []map[string]any `json:"tables"`
		}
		if err := json.Unmarshal([]byte(got), &l); err != nil || len(l.Tables) != 1 {
			t.Fatalf("%s: ls --json: %v\n%s", f.what, err, got)
		}
		tables, _ := json.Marshal(l.Tables)
		if want == "" {
			want = string(tables)
			mustContain(t, "the first backup's tables", want, name+".public.customers", "1000")
			// Text: counts right-aligned, names left-aligned.
			mustContain(t, "coffer ls", c.ok(nil, "ls", b.Snapshot), "ROWS  TABLE\n1000  "+name+".public.customers\n")
		} else if string(tables) != want {
			t.Fatalf("%s (%s) backed up other data:\n%s\nwant\n%s", f.what, f.addr, tables, want)
		}
	}
	for _, bad := range []struct{ addr, want string }{
		{"host=127.0.0.1 password=s3cret dbname=" + name, "holds a password"},
		{"host=127.0.0.1 options='-c default_transaction_read_only=off' dbname=" + name, `"options" is not supported`},
		{"host=127.0.0.1,127.0.0.2 dbname=" + name, "several hosts"},
	} {
		out := c.fail(nil, "backup", "--source", "x", "--postgres", bad.addr)
		mustContain(t, bad.addr, out, bad.want)
		if strings.Contains(out, "s3cret") {
			t.Fatalf("the error shows the password: %s", out)
		}
	}
}
