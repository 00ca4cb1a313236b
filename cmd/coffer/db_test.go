package main_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

type restoreDB struct {
	Verified bool `json:"verified"`
	Tables   []struct {
		Table    string `json:"table"`
		WantRows int64  `json:"want_rows"`
		Match    bool   `json:"match"`
	} `json:"tables"`
}

func mariadb(t *testing.T, db string) *sql.DB {
	t.Helper()
	c, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/"+db+"?multiStatements=true")
	if err == nil {
		err = c.Ping()
	}
	if err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 (root, no password) is needed: %v (start it: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)", err)
	}
	return c
}

// TestCLIMariaDB backs a database up twice through the CLI, restores each
// snapshot into a fresh database with verification, and lists its tables.
func TestCLIMariaDB(t *testing.T) {
	name := fmt.Sprintf("coffer_cli_%d", time.Now().UnixNano()%1e9)
	admin := mariadb(t, "")
	t.Cleanup(func() { admin.Close() }) // after the drops below: cleanups run last first
	for _, db := range []string{name, name + "_r1", name + "_r2"} {
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + db) })
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	src := mariadb(t, name)
	defer src.Close()
	_, err := src.Exec(`CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), email VARCHAR(200) NULL, photo BLOB);
		CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT, total DECIMAL(10,2));`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		src.Exec("INSERT INTO customers (name, email, photo) VALUES (?, ?, ?)", fmt.Sprintf("Zoë O'Brien %d 🎉", i), nil, []byte{0, byte(i), '\\', '\''})
		src.Exec("INSERT INTO orders (customer_id, total) VALUES (?, ?)", i+1, float64(i)/7)
	}

	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	url := "mysql://root@127.0.0.1:3306/" + name
	first := c.backup(nil, "--source", "shop", "--mysql", url)
	src.Exec("UPDATE customers SET email = 'changed@example.com' WHERE id = 7")
	src.Exec("INSERT INTO orders (customer_id, total) VALUES (1, 9.99)")
	second := c.backup(nil, "--source", "shop", "--mysql", url)

	rows := c.snapshots("--source", "shop")
	if len(rows) != 2 {
		t.Fatalf("snapshots: %+v", rows)
	}
	mustContain(t, "coffer snapshots", c.ok(nil, "snapshots"), "mysql", name)
	mustContain(t, "coffer ls", c.ok(nil, "ls", first.Snapshot[:8]), name+".customers", "2000")

	for i, s := range []backupJSON{first, second} {
		target := fmt.Sprintf("mysql://root@127.0.0.1:3306/%s_r%d", name, i+1)
		var res restoreDB
		out := c.ok(nil, "restore", s.Snapshot, "--to", target, "--json")
		if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified || len(res.Tables) != 2 {
			t.Fatalf("restore %d: %v\n%s", i+1, err, out)
		}
	}
	// The two restores differ where the database changed between backups.
	var n1, n2 int
	mariadb(t, name+"_r1").QueryRow("SELECT count(*) FROM orders").Scan(&n1)
	mariadb(t, name+"_r2").QueryRow("SELECT count(*) FROM orders").Scan(&n2)
	if n1 != 2000 || n2 != 2001 {
		t.Fatalf("restored order counts %d and %d, want 2000 and 2001", n1, n2)
	}
	// Through the server's Unix socket: the same tables as over TCP, and a
	// verified restore.
	var socket string
	if err := admin.QueryRow("SELECT @@socket").Scan(&socket); err != nil {
		t.Fatal(err)
	}
	viaSocket := c.backup(nil, "--source", "shop", "--mysql", "mysql://root@/"+name+"?socket="+socket)
	tables := func(snap string) string {
		var l struct {
			Tables []map[string]any `json:"tables"`
		}
		out := c.ok(nil, "ls", snap, "--json")
		if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Tables) != 2 {
			t.Fatalf("ls --json %s: %v\n%s", snap, err, out)
		}
		b, _ := json.Marshal(l.Tables)
		return string(b)
	}
	if a, b := tables(second.Snapshot), tables(viaSocket.Snapshot); a != b {
		t.Fatalf("the backup through the socket holds other tables:\n%s\nwant\n%s", b, a)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + "_r3") })
	var res restoreDB
	out := c.ok(nil, "restore", viaSocket.Snapshot, "--to", "mysql://root@/"+name+"_r3?socket="+socket, "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified {
		t.Fatalf("restore through the socket: %v\n%s", err, out)
	}
	mustContain(t, "a relative socket", c.fail(nil, "backup", "--source", "x", "--mysql", "mysql://root@/"+name+"?socket=mysqld.sock"), "absolute path")

	msg := c.fail(nil, "restore", first.Snapshot, "--to", fmt.Sprintf("mysql://root@127.0.0.1:3306/%s_r2", name))
	mustContain(t, "restore into a non-empty database", msg, "--clean")
	if !strings.Contains(c.fail(nil, "restore", first.Snapshot, "--to", "sqlite:"+filepath.Join(t.TempDir(), "x.db")), "mysql backup") {
		t.Error("restoring a mysql snapshot into sqlite was not refused clearly")
	}
}
