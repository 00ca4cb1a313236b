package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type drillJSON struct {
	ID     string `json:"id"`
	Passed bool   `json:"passed"`
	Runs   []struct {
		Target string `json:"target"`
		Passed bool   `json:"passed"`
		Checks []struct {
			Name   string `json:"name"`
			Passed bool   `json:"passed"`
		} `json:"checks"`
		Phases []struct {
			Name     string `json:"name"`
			Duration int64  `json:"duration_ns"`
		} `json:"phases"`
	} `json:"runs"`
}

func (c *cli) drill(args ...string) (drillJSON, string) {
	c.t.Helper()
	reports := c.t.TempDir()
	out := c.ok(nil, append([]string{"drill", "--json", "--report-dir", reports, "--state-dir", filepath.Join(c.dir, "state")}, args...)...)
	var d drillJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		c.t.Fatalf("drill --json: %v\n%s", err, out)
	}
	for _, ext := range []string{".json", ".html"} {
		if _, err := os.Stat(filepath.Join(reports, "drill-"+d.ID+ext)); err != nil {
			c.t.Errorf("no %s report: %v", ext, err)
		}
	}
	return d, reports
}

func TestCLIDrillSQLite(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	c.ok(nil, "demo", "--dir", filepath.Join(dir, "demo"), "--customers", "500")
	db := filepath.Join(dir, "demo", "customers.db")
	c.backup(nil, "--source", "shop", "--sqlite", db)
	assertions := filepath.Join(dir, "assert.yaml")
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(*) FROM customers\n  expect: 500\n"), 0o600)
	d, _ := c.drill("--source", "shop", "--assertions", assertions)
	if !d.Passed || len(d.Runs) != 1 || len(d.Runs[0].Phases) != 4 {
		t.Fatalf("drill: %+v", d)
	}
	var list []drillJSON
	if err := json.Unmarshal([]byte(c.without("COFFER_IDENTITY_FILE").ok(nil, "drills", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != d.ID {
		t.Fatalf("drills: %v %+v", err, list)
	}
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(*) FROM customers\n  expect: 501\n"), 0o600)
	r := c.run(nil, "drill", "--source", "shop", "--assertions", assertions, "--report-dir", t.TempDir(), "--state-dir", filepath.Join(c.dir, "state"))
	if r.code != 1 {
		t.Fatalf("a failing assertion: exit %d", r.code)
	}
	mustContain(t, "drill output", r.stdout, "FAIL assertion: customers", "got 500, want 501")
}

// pgDrillSource makes a PostgreSQL database and backs it up.
func pgDrillSource(t *testing.T, c *cli, rows int) string {
	ctx := context.Background()
	name := fmt.Sprintf("coffer_dsrc_%d", time.Now().UnixNano()%1e9)
	admin := postgres(t, "postgres")
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres(t, name).Exec(ctx, fmt.Sprintf(`CREATE TABLE customers (id serial PRIMARY KEY, name text, email text);
		INSERT INTO customers (name, email) SELECT 'Kunde ' || g, 'k' || g || '@example.com' FROM generate_series(1, %d) g;
		CREATE TABLE orders AS SELECT g AS id, 1 + g %% 100 AS customer_id, g * 1.5 AS total FROM generate_series(1, %d) g;`, rows, rows)); err != nil {
		t.Fatal(err)
	}
	c.init()
	c.backup(nil, "--source", "pg", "--postgres", "postgres://postgres@127.0.0.1:5432/"+name)
	return name
}

func TestCLIDrillPostgres(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	pgDrillSource(t, c, 20000)
	for _, mode := range [][]string{{"--scratch", "postgres://postgres@127.0.0.1:5432/"}, {"--ephemeral"}} {
		d, _ := c.drill(append([]string{"--source", "pg"}, mode...)...)
		if !d.Passed {
			t.Fatalf("drill %v failed: %+v", mode, d)
		}
		t.Logf("drill %v: phases %+v", mode, d.Runs[0].Phases)
	}
	var n int
	postgres(t, "postgres").QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'coffer\\_drill\\_%'").Scan(&n)
	if n != 0 {
		t.Fatalf("%d scratch databases were left behind", n)
	}
}

func TestCLIDrillMariaDB(t *testing.T) {
	name := fmt.Sprintf("coffer_dsrc_%d", time.Now().UnixNano()%1e9)
	admin := mariadb(t, "")
	defer admin.Close()
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name) })
	admin.Exec("CREATE DATABASE " + name)
	src := mariadb(t, name)
	defer src.Close()
	if _, err := src.Exec(`CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100));
		INSERT INTO customers (name) VALUES ('Zoë'), ('Ana'), (NULL);`); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	c.init()
	c.backup(nil, "--source", "my", "--mysql", "mysql://root@127.0.0.1:3306/"+name)
	d, _ := c.drill("--source", "my", "--scratch", "mysql://root@127.0.0.1:3306/")
	if !d.Passed {
		t.Fatalf("drill failed: %+v", d)
	}
	var n int
	admin.QueryRow("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'coffer\\_drill\\_%'").Scan(&n)
	if n != 0 {
		t.Fatalf("%d scratch databases were left behind", n)
	}
}

// TestCLIDrillKilled kills drills mid-restore; drill --cleanup must remove
// the scratch database, the ephemeral server and the restored dump.
func TestCLIDrillKilled(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	pgDrillSource(t, c, 400000)
	state := filepath.Join(c.dir, "state")
	// The ephemeral server runs as user postgres, which must be able to
	// pass through the temporary directory (t.TempDir's are root-only).
	tmp, err := os.MkdirTemp("", "coffer-drill-killed-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o711)
	defer os.RemoveAll(tmp)
	for _, mode := range [][]string{{"--scratch", "postgres://postgres@127.0.0.1:5432/"}, {"--ephemeral"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := c.with("TMPDIR="+tmp).cmd(ctx, nil, append([]string{"drill", "--source", "pg", "--state-dir", state, "--report-dir", t.TempDir()}, mode...)...)
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		// Kill it once its scratch exists and the load is under way.
		var marker struct {
			Dir       string `json:"dir"`
			Ephemeral string `json:"ephemeral"`
		}
		for {
			if ms, _ := filepath.Glob(filepath.Join(state, "*.json")); len(ms) == 1 {
				b, _ := os.ReadFile(ms[0])
				if json.Unmarshal(b, &marker) == nil {
					if _, err := os.Stat(filepath.Join(marker.Dir, "dump")); err == nil {
						break
					}
				}
			}
			select {
			case <-exited:
				t.Fatalf("the drill ended before it got to restoring:\n%s", output.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		cancel()

		out := c.ok(nil, "drill", "--cleanup", "--state-dir", state)
		mustContain(t, "drill --cleanup", out, "removed")
		if _, err := os.Stat(marker.Dir); err == nil {
			t.Errorf("%v: the restored dump's directory %s is left", mode, marker.Dir)
		}
		if marker.Ephemeral != "" {
			if _, err := os.Stat(marker.Ephemeral); err == nil {
				t.Errorf("the ephemeral server's directory %s is left", marker.Ephemeral)
			}
			if out, _ := runTool("pgrep", "-f", marker.Ephemeral); strings.TrimSpace(out) != "" {
				t.Errorf("the ephemeral server still runs: %s", out)
			}
		}
		if ms, _ := filepath.Glob(filepath.Join(state, "*.json")); len(ms) != 0 {
			t.Errorf("markers left: %v", ms)
		}
	}
	var n int
	postgres(t, "postgres").QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'coffer\\_drill\\_%'").Scan(&n)
	if n != 0 {
		t.Fatalf("%d scratch databases were left behind", n)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
