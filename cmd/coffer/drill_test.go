package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

type drillJSON struct {
	ID     string `json:"drill"`
	Passed bool   `json:"passed"`
	Runs   []struct {
		Target string `json:"target"`
		Passed bool   `json:"passed"`
		Checks []struct {
			Name   string `json:"name"`
			Passed bool   `json:"passed"`
		} `json:"checks"`
		Phases []struct {
			Name     string  `json:"name"`
			Duration float64 `json:"duration_seconds"`
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
		fi, err := os.Stat(filepath.Join(reports, "drill-"+d.ID+ext))
		if err != nil {
			c.t.Errorf("no %s report: %v", ext, err)
		} else if fi.Mode().Perm() != 0o600 {
			c.t.Errorf("the %s report has mode %v, want 0600", ext, fi.Mode().Perm())
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
	tmp := drillTempDir(t)
	before := throwawayUsers(t, tmp)
	assertions := filepath.Join(t.TempDir(), "assert.yaml")
	os.WriteFile(assertions, []byte("- name: customers\n  sql: SELECT count(*) FROM customers\n  expect: 20000\n"), 0o600)
	for _, mode := range [][]string{{"--scratch", "postgres://postgres@127.0.0.1:5432/"}, {"--ephemeral"}} {
		d, _ := c.with("TMPDIR=" + tmp).drill(append([]string{"--source", "pg", "--assertions", assertions}, mode...)...)
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
	noNewThrowawayUsers(t, tmp, before)
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// TestCLIDrillPostgresRoles drills a snapshot whose objects are owned by
// a role that the scratch server lacks: the drill creates it for the load
// and drops it afterwards, as every other role it made.
func TestCLIDrillPostgresRoles(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	name, owner := "coffer_dsrc_"+suffix, "coffer_downer_"+suffix
	admin := postgres(t, "postgres")
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+owner)
	})
	for _, q := range []string{"CREATE ROLE " + owner + " NOLOGIN", "CREATE DATABASE " + name} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	src := postgres(t, name)
	if _, err := src.Exec(ctx, `CREATE TABLE customers (id int PRIMARY KEY, name text);
		INSERT INTO customers SELECT g, 'Kunde ' || g FROM generate_series(1, 500) g;
		ALTER TABLE customers OWNER TO `+owner+`;
		GRANT SELECT ON customers TO `+owner+`;`); err != nil {
		t.Fatal(err)
	}
	src.Close(ctx)
	c.init()
	c.backup(nil, "--source", "pg", "--postgres", "postgres://postgres@127.0.0.1:5432/"+name)
	// The scratch server no longer has the role (nor the source).
	for _, q := range []string{"DROP DATABASE " + name + " WITH (FORCE)", "DROP ROLE " + owner} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	roles := func() map[string]bool {
		rows, _ := admin.Query(ctx, "SELECT rolname FROM pg_roles")
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	before := roles()
	d, _ := c.drill("--source", "pg", "--scratch", "postgres://postgres@127.0.0.1:5432/")
	if !d.Passed {
		t.Fatalf("drill failed: %+v", d)
	}
	for r := range roles() {
		if !before[r] && (r == owner || strings.Contains(r, "drill") || strings.Contains(r, d.ID)) {
			t.Errorf("the drill left role %s on the scratch server", r)
		}
	}
	var n int
	admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE 'coffer\\_drill\\_%'").Scan(&n)
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
	users := func() map[string]bool {
		rows, err := admin.Query("SELECT CONCAT(User, '@', Host) FROM mysql.user")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]bool{}
		for rows.Next() {
			var u string
			rows.Scan(&u)
			m[u] = true
		}
		return m
	}
	before := users()
	d, _ := c.drill("--source", "my", "--scratch", "mysql://root@127.0.0.1:3306/")
	if !d.Passed {
		t.Fatalf("drill failed: %+v", d)
	}
	for u := range users() {
		if !before[u] && (strings.Contains(u, "drill") || strings.Contains(u, d.ID)) {
			t.Errorf("the drill left account %s on the scratch server", u)
		}
	}
	var n int
	admin.QueryRow("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'coffer\\_drill\\_%'").Scan(&n)
	if n != 0 {
		t.Fatalf("%d scratch databases were left behind", n)
	}
}

// TestCLIDrillKilled kills drills mid-load: no restored dump may be left
// as a file even before cleanup (it was unlinked as soon as it was
// created), no loader may outlive the drill, and drill --cleanup must
// remove the scratch database, the ephemeral server, its throwaway user
// and the work directory.
func TestCLIDrillKilled(t *testing.T) {
	c := newCLI(t, filepath.Join(t.TempDir(), "repo"))
	pgDrillSource(t, c, 400000)
	state := filepath.Join(c.dir, "state")
	tmp := drillTempDir(t)
	users := throwawayUsers(t, tmp)
	scratch := "postgres://postgres@127.0.0.1:5432/"
	for _, mode := range [][]string{{"--scratch", scratch}, {"--ephemeral"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := c.with("TMPDIR="+tmp).cmd(ctx, nil, append([]string{"drill", "--source", "pg", "--state-dir", state, "--report-dir", t.TempDir()}, mode...)...)
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		// Kill it once the load is under way: the restored dump is open
		// (and unlinked), and pg_restore reads it.
		var marker struct {
			Dir       string `json:"dir"`
			Ephemeral string `json:"ephemeral"`
			Scratch   struct {
				Database string `json:"database"`
			} `json:"scratch"`
		}
		var loaders []int
		for {
			if ms, _ := filepath.Glob(filepath.Join(state, "*.json")); len(ms) == 1 {
				b, _ := os.ReadFile(ms[0])
				json.Unmarshal(b, &marker)
			}
			if marker.Dir != "" && openUnlinked(cmd.Process.Pid, filepath.Join(marker.Dir, "dump")) {
				if loaders = descendants(cmd.Process.Pid, "pg_restore", "--dbname"); len(loaders) > 0 {
					break
				}
			}
			select {
			case <-exited:
				t.Fatalf("the drill ended before it got to loading:\n%s", output.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		time.Sleep(200 * time.Millisecond)
		// The roles the load made on the scratch server (the database's
		// owner, a load role) must go with it.
		var made []string
		if marker.Ephemeral == "" {
			rows, _ := postgres(t, "postgres").Query(context.Background(), `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1
				UNION SELECT r.rolname FROM pg_roles r WHERE r.rolname LIKE 'coffer\\_load\\_%' AND pg_has_role(r.oid, (SELECT datdba FROM pg_database WHERE datname = $1), 'MEMBER')`, marker.Scratch.Database)
			made, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		cancel()

		// Before any cleanup: no file of the drill's holds the dump, and
		// the loader died with the drill.
		filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), "pgephemeral-") {
				return filepath.SkipDir // the ephemeral cluster: its user's alone, removed by cleanup
			}
			if !d.IsDir() {
				t.Errorf("%v: %s is left after kill -9", mode, p)
			}
			return nil
		})
		deadline := time.Now().Add(10 * time.Second)
		for _, pid := range loaders {
			for processAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if processAlive(pid) {
				t.Errorf("%v: pg_restore %d outlived the killed drill", mode, pid)
			}
		}

		out := c.with("TMPDIR="+tmp).ok(nil, "drill", "--cleanup", "--state-dir", state, "--scratch", scratch)
		t.Logf("%v: drill --cleanup: %s", mode, out)
		mustContain(t, "drill --cleanup", out, "removed")
		if _, err := os.Stat(marker.Dir); err == nil {
			t.Errorf("%v: the work directory %s is left", mode, marker.Dir)
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
		for _, r := range made {
			var n int
			postgres(t, "postgres").QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname = $1 AND rolname <> 'postgres'", r).Scan(&n)
			if n != 0 {
				t.Errorf("%v: role %s, which the killed drill's load made, is left after drill --cleanup", mode, r)
			}
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
	noNewThrowawayUsers(t, tmp, users)
}

// openUnlinked reports whether process pid has path open, unlinked.
func openUnlinked(pid int, path string) bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && l == path+" (deleted)" {
			return true
		}
	}
	return false
}

// descendants lists the live descendants of pid named comm with an
// argument starting with arg.
func descendants(pid int, comm, arg string) []int {
	parent := map[int]int{}
	name := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(string(b[close+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		name[p] = string(b[open+1 : close])
		parent[p], _ = strconv.Atoi(f[1])
	}
	var out []int
	for p, n := range name {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				if n == comm && bytes.Contains(append([]byte{0}, b...), []byte("\x00"+arg)) {
					out = append(out, p)
				}
				break
			}
		}
	}
	return out
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// throwawayUsers lists the users (coffer-drill-…) of ephemeral servers
// whose directory is in tmp, in /etc/passwd (whose comment names it).
func throwawayUsers(t *testing.T, tmp string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 4 && strings.HasPrefix(f[0], "coffer-drill-") && strings.Contains(f[4], " dir="+tmp+"/") {
			m[f[0]] = true
		}
	}
	return m
}

// noNewThrowawayUsers fails if the user of an ephemeral server in tmp
// made since before is still there.
func noNewThrowawayUsers(t *testing.T, tmp string, before map[string]bool) {
	t.Helper()
	for u := range throwawayUsers(t, tmp) {
		if !before[u] {
			t.Errorf("the ephemeral server's throwaway user %s is left", u)
		}
	}
}

// drillTempDir is a temporary directory for drills that an ephemeral
// server's throwaway user can pass through (t.TempDir's are root-only).
func drillTempDir(t *testing.T) string {
	t.Helper()
	tmp, err := os.MkdirTemp("", "coffer-drill-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o711)
	t.Cleanup(func() { os.RemoveAll(tmp) })
	return tmp
}
