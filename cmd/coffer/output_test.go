package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage/local"
)

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()%1e10)
}

// TestOutputPostgres: restore --output of a --postgres snapshot is the
// database's pg_dump archive: pg_restore lists it and restores one table.
func TestOutputPostgres(t *testing.T) {
	ctx := context.Background()
	name := uniqueName("coffer_out")
	admin := postgres(t, "postgres")
	for _, db := range []string{name, name + "_one"} {
		t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	src := postgres(t, name)
	if _, err := src.Exec(ctx, `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
		CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2));
		INSERT INTO customers (name) SELECT 'Zoë ' || g FROM generate_series(1, 3000) g;
		INSERT INTO orders (customer_id, total) SELECT g, g / 7.0 FROM generate_series(1, 3000) g;`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	b := c.backup(nil, "--source", "shop", "--postgres", "postgres://postgres@127.0.0.1:5432/"+name)

	// coffer ls lists the parts.
	ls := c.ok(nil, "ls", b.Snapshot)
	mustContain(t, "coffer ls", ls, "PART", "globals.sql", name+".pgdump", name+".public.customers", "3000")
	var lj struct {
		Parts []struct {
			Name string `json:"name"`
			Size int64  `json:"size_bytes"`
		} `json:"parts"`
	}
	if err := json.Unmarshal([]byte(c.ok(nil, "ls", b.Snapshot, "--json")), &lj); err != nil || len(lj.Parts) != 2 {
		t.Fatalf("ls --json parts: %+v %v", lj.Parts, err)
	}

	f := filepath.Join(dir, "shop.pgdump")
	r := c.run(nil, "restore", b.Snapshot, "--output", f)
	if r.code != 0 {
		t.Fatalf("restore --output: %s", r.stderr)
	}
	mustContain(t, "restore --output", r.stderr, "part "+name+".pgdump", "globals.sql", "--part")
	if st, _ := os.Stat(f); st.Size() != lj.Parts[1].Size {
		t.Fatalf("the file holds %d bytes, the part %d", st.Size(), lj.Parts[1].Size)
	}
	list, err := runTool("pg_restore", "-l", f)
	if err != nil {
		t.Fatalf("pg_restore -l: %v\n%s", err, list)
	}
	mustContain(t, "pg_restore -l", list, "TABLE public customers", "TABLE public orders", "TABLE DATA public customers")

	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+"_one"); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool("pg_restore", "-h", "127.0.0.1", "-U", "postgres", "-t", "customers", "-d", name+"_one", f); err != nil {
		t.Fatalf("pg_restore -t customers: %v\n%s", err, out)
	}
	one := postgres(t, name+"_one")
	var n int
	if err := one.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil || n != 3000 {
		t.Fatalf("customers restored by pg_restore -t: %d rows, %v", n, err)
	}
	var orders *string
	one.QueryRow(ctx, "SELECT to_regclass('public.orders')::text").Scan(&orders)
	if orders != nil {
		t.Fatal("pg_restore -t customers restored orders too")
	}

	// The same to standard output, and the other parts by name.
	if got := c.ok(nil, "restore", b.Snapshot); int64(len(got)) != lj.Parts[1].Size || !strings.HasPrefix(got, "PGDMP") {
		t.Fatalf("restore to stdout: %d bytes, want the %d-byte archive", len(got), lj.Parts[1].Size)
	}
	g := filepath.Join(dir, "globals.sql")
	c.ok(nil, "restore", b.Snapshot, "--part", "globals.sql", "--output", g)
	gb, _ := os.ReadFile(g)
	mustContain(t, "--part globals.sql", string(gb), "PostgreSQL database cluster dump", "CREATE ROLE")
	whole := c.ok(nil, "restore", b.Snapshot, "--part", "all")
	if !strings.HasPrefix(whole, string(gb)) || int64(len(whole)) != lj.Parts[0].Size+lj.Parts[1].Size {
		t.Fatal("--part all is not the globals followed by the archive")
	}
	mustContain(t, "--part nope", c.fail(nil, "restore", b.Snapshot, "--part", "nope", "--output", filepath.Join(dir, "x")),
		`no part "nope"`, "globals.sql", name+".pgdump", "--part all")
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("a refused restore wrote its file")
	}
}

// TestOutputMariaDB: restore --output of a --mysql snapshot is the
// database's SQL dump, which the mariadb client loads.
func TestOutputMariaDB(t *testing.T) {
	name := uniqueName("coffer_out")
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() }) // after the drops below: cleanups run last first
	for _, db := range []string{name, name + "_new"} {
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + db) })
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	src := mariadb(t, name)
	defer src.Close()
	if _, err := src.Exec(`CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100));
		INSERT INTO customers (name) VALUES ('Zoë'), ('O''Brien'), ('東京');`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	b := c.backup(nil, "--source", "shop", "--mysql", "mysql://root@127.0.0.1:3306/"+name)
	mustContain(t, "coffer ls", c.ok(nil, "ls", b.Snapshot), "PART", name+".sql")
	f := filepath.Join(dir, "shop.sql")
	c.ok(nil, "restore", b.Snapshot, "--output", f)
	if _, err := admin.Exec("CREATE DATABASE " + name + "_new CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("mariadb", "-h", "127.0.0.1", "-u", "root", name+"_new")
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb %s_new < %s: %v\n%s", name, f, err, out)
	}
	var names []string
	rows, err := mariadb(t, name+"_new").Query("SELECT name FROM customers ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		names = append(names, s)
	}
	if strings.Join(names, ",") != "Zoë,O'Brien,東京" {
		t.Fatalf("loaded by mariadb: %q", names)
	}
}

// TestOutputParts: a snapshot of several databases needs --part; each
// part restores on its own, reading only its chunks.
func TestOutputParts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "repo")
	c := newCLI(t, root)
	c.init()
	// A server snapshot as the backup host writes it: written here with
	// the library, as the CLI would, from synthetic parts.
	kb, _ := os.ReadFile(filepath.Join(c.dir, "writer.key"))
	wk, err := repository.ParseWriterKey(kb, "writer.key")
	if err != nil {
		t.Fatal(err)
	}
	be, _ := local.Open(root, false)
	w, err := repository.OpenWriter(ctx, be, wk)
	if err != nil {
		t.Fatal(err)
	}
	globals, shop, crm := synth.Bytes(1, 50_000), synth.Bytes(2, 3<<20), synth.Bytes(3, 2<<20)
	parts := []engine.Part{{Name: "globals.sql", Size: int64(len(globals))},
		{Name: "shop.pgdump", Offset: int64(len(globals)), Size: int64(len(shop))},
		{Name: "crm.pgdump", Offset: int64(len(globals) + len(shop)), Size: int64(len(crm))}}
	stream := bytes.Join([][]byte{globals, shop, crm}, nil)
	sum, err := backup.Run(ctx, w, bytes.NewReader(stream), backup.Options{Source: "server", Engine: "postgres", Format: "pg_dump-custom",
		Databases: []string{"shop", "crm"}, Private: func() any { return engine.Report{Parts: parts} }})
	if err != nil {
		t.Fatal(err)
	}
	id := sum.Snapshot.ID().String()

	msg := c.fail(nil, "restore", id, "--output", filepath.Join(dir, "x"))
	mustContain(t, "restore of a two-database snapshot", msg, "2 databases", "--part", "globals.sql", "shop.pgdump", "crm.pgdump", "--part all")
	msg = c.fail(nil, "restore", id)
	mustContain(t, "restore of a two-database snapshot to stdout", msg, "2 databases", "--part")
	for _, tc := range []struct {
		part string
		want []byte
	}{{"crm", crm}, {"shop.pgdump", shop}, {"globals.sql", globals}, {"all", stream}} {
		if got := c.ok(nil, "restore", id, "--part", tc.part); !bytes.Equal([]byte(got), tc.want) {
			t.Errorf("--part %s: %d bytes that differ from the part", tc.part, len(got))
		}
	}
	mustContain(t, "--part with --to", c.fail(nil, "restore", id, "--part", "crm", "--to", "postgres://postgres@127.0.0.1:5432/x"), "--part goes with --output")
	mustContain(t, "ls", c.ok(nil, "ls", id), "globals.sql", "shop.pgdump", "crm.pgdump")
	// A snapshot that is one stream has no parts.
	b := c.backup(strings.NewReader("raw"), "--source", "raw", "--stdin")
	mustContain(t, "--part of a stdin snapshot", c.fail(nil, "restore", b.Snapshot, "--part", "x"), "no parts")
	if got := c.ok(nil, "restore", b.Snapshot, "--part", "all"); got != "raw" {
		t.Fatalf("--part all of a stdin snapshot: %q", got)
	}
}
