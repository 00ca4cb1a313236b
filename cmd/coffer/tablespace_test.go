package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage/location"
)

// TestPITRTablespaces: a cluster with two user tablespaces (one with a
// name that needs quoting) and a table with rows in each, and one in
// pg_default. A physical base backup holds every tablespace; restoring to
// a time between two batches, one tablespace mapped by name and the other
// in the directory coffer chooses, gives a server that recovers and sees
// exactly the rows of the batches before the target in every tablespace,
// its tablespaces in the new directories; drill --pitr passes on it.
func TestPITRTablespaces(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		w := newWALCluster(t)
		repo := filepath.Join(w.dir, "repo")
		c := newCLI(t, repo)
		mid := tablespaceHistory(t, w, c)
		testTablespaceRestore(t, w, c, mid)
		testTablespaceDrill(t, w, c, mid)
		testHostileTablespaceSnapshots(t, w, c, repo)
	})
	t.Run("minio", func(t *testing.T) {
		m := testminio.Server(t)
		w := newWALCluster(t)
		c := newCLI(t, "", m.Env(m.Bucket(t, false), "pitr-tablespaces")...)
		testTablespaceRestore(t, w, c, tablespaceHistory(t, w, c))
	})
}

// tablespaceTables are the test's tables and where they live.
var tablespaceTables = []struct{ table, space string }{
	{"hot", "fast"}, {"cold", `archive "2026"`}, {"plain", ""},
}

// tablespaceHistory makes the tablespaces and tables, takes the base
// backup (batch 0 is in it), then commits batches 1 to 3 a second apart,
// each archived; it returns a time between batches 2 and 3.
func tablespaceHistory(t *testing.T, w *walCluster, c *cli) string {
	c.init()
	w.start(c)
	for _, dir := range []string{"ts-fast", "ts-archive"} {
		if err := os.Mkdir(filepath.Join(w.dir, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		w.chown(filepath.Join(w.dir, dir))
	}
	w.sql("CREATE TABLESPACE fast LOCATION '" + filepath.Join(w.dir, "ts-fast") + "'")
	w.sql(`CREATE TABLESPACE "archive ""2026""" LOCATION '` + filepath.Join(w.dir, "ts-archive") + "'")
	for _, tb := range tablespaceTables {
		space, index := "", ""
		if tb.space != "" {
			space = " TABLESPACE " + quoteIdent(tb.space)
			index = " USING INDEX" + space
		}
		w.sql(fmt.Sprintf("CREATE TABLE %s (batch int, n int, PRIMARY KEY (n)%s)%s; INSERT INTO %s SELECT 0, generate_series(1, 100)",
			tb.table, index, space, tb.table))
	}
	c.without("COFFER_IDENTITY_FILE").ok(nil, "backup", "--source", "pg", "--physical", "--postgres", w.socketURL())
	var marks []string
	for batch := 1; batch <= 3; batch++ {
		for i, tb := range tablespaceTables {
			w.sql(fmt.Sprintf("INSERT INTO %s SELECT %d, generate_series(1, %d) + %d", tb.table, batch, 100*(i+1), batch*1000))
		}
		marks = append(marks, w.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"))
		last := w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
		w.sql("SELECT pg_switch_wal()")
		w.waitArchived(last)
		time.Sleep(1100 * time.Millisecond)
	}
	t2, _ := time.Parse(time.RFC3339Nano, marks[1])
	return t2.Add(500 * time.Millisecond).Format(time.RFC3339Nano)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// tablespaceCounts is what the restored server must show before batch 3.
const tablespaceCounts = "cold|0|100\ncold|1|200\ncold|2|200\n" +
	"hot|0|100\nhot|1|100\nhot|2|100\n" +
	"plain|0|100\nplain|1|300\nplain|2|300"

func testTablespaceRestore(t *testing.T, w *walCluster, c *cli, mid string) {
	dir := filepath.Join(w.dir, "restored")
	mapped := filepath.Join(w.dir, "mapped-archive")
	port := w.port + 1
	out := c.ok(nil, "restore", "latest", "--source", "pg", "--pgdata", dir, "--port", strconv.Itoa(port),
		"--target-time", mid, "--tablespace-map", `archive "2026"=`+mapped)
	chosen := filepath.Join(w.dir, "restored.tablespaces")
	t.Logf("coffer restore --pgdata … --tablespace-map:\n%s", out)
	mustContain(t, "restore --pgdata", out, "restored into "+mapped, "restored into "+chosen+"/", filepath.Join(w.dir, "ts-fast"))
	w.chown(mapped)
	w.chown(chosen)
	sql := w.startRestored(dir, port).sql
	var got []string
	for _, tb := range []string{"cold", "hot", "plain"} {
		got = append(got, sql(fmt.Sprintf("SELECT '%s', batch, count(*) FROM %s GROUP BY batch ORDER BY batch", tb, tb)))
	}
	if strings.Join(got, "\n") != tablespaceCounts {
		t.Fatalf("rows by table and batch after restoring to %s:\n%s\nwant\n%s", mid, strings.Join(got, "\n"), tablespaceCounts)
	}
	// The restored tablespaces are the new directories, and the tables
	// and their indexes live there.
	locs := sql("SELECT spcname || '=' || pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT LIKE 'pg_%' ORDER BY spcname")
	wantFast := "fast=" + chosen + "/"
	if !strings.HasPrefix(locs, `archive "2026"=`+mapped+"\n"+wantFast) {
		t.Fatalf("restored tablespaces:\n%s", locs)
	}
	if got := sql("SELECT count(*) FROM pg_class c JOIN pg_tablespace s ON s.oid = c.reltablespace WHERE c.relname IN ('hot', 'hot_pkey', 'cold', 'cold_pkey')"); got != "4" {
		t.Fatalf("%s of the tables and indexes are in their tablespaces, want 4", got)
	}
	if got := sql("SELECT count(*) FROM hot WHERE n > 3000"); got != "0" {
		t.Fatalf("rows of batch 3 in hot: %s", got)
	}
	// The restored server writes into its own tablespaces.
	sql("CREATE TABLE cold2 TABLESPACE " + quoteIdent(`archive "2026"`) + " AS SELECT * FROM cold; CHECKPOINT")
	if got := sql("SELECT count(*) FROM cold2"); got != "500" {
		t.Fatalf("a table made on the restored server in its tablespace holds %s rows", got)
	}
}

func testTablespaceDrill(t *testing.T, w *walCluster, c *cli, mid string) {
	tmp := drillTempDir(t)
	code, out, rep := pitrDrill(t, c, tmp, "--target-time", mid)
	if code != 0 || !rep.Passed {
		t.Fatalf("drill --pitr of a base backup with tablespaces: exit %d\n%s", code, out)
	}
	_, detail := rep.check(t, "chunks and stream digest")
	mustContain(t, "chunks and stream digest", detail, "2 tablespaces into the ephemeral server's directory")
	counts := map[string]int64{}
	for _, tb := range rep.Runs[0].Tables {
		counts[tb.Table] = tb.GotRows
	}
	for table, want := range map[string]int64{"postgres.public.hot": 300, "postgres.public.cold": 500, "postgres.public.plain": 700} {
		if counts[table] != want {
			t.Errorf("drill row counts: %s has %d rows, want %d (%v)", table, counts[table], want, counts)
		}
	}
	if ok, detail := rep.check(t, "pg_amcheck"); !ok {
		t.Errorf("pg_amcheck: %s", detail)
	}
}

// testHostileTablespaceSnapshots: a holder of the writer key rewrites the
// tablespace list of the real base backup's snapshot. A tablespace whose
// stream is missing, a duplicate oid, a location with "..", a relative
// one: each is refused naming the snapshot, before anything is made. A
// location naming a directory of the restore host is never written to.
func testHostileTablespaceSnapshots(t *testing.T, w *walCluster, c *cli, repo string) {
	ctx := context.Background()
	be, err := location.Open(ctx, repo, location.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	wrepo, err := repository.OpenWriter(ctx, be, cliWriterKey(t, c))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := wrepo.Snapshots(ctx)
	if err != nil || len(snaps) != 1 || snaps[0].Physical == nil || len(snaps[0].Physical.Tablespaces) != 2 {
		t.Fatalf("want the one physical snapshot with 2 tablespaces: %v", err)
	}
	victim := filepath.Join(w.dir, "victim")
	os.Mkdir(victim, 0o700)
	os.WriteFile(filepath.Join(victim, "keep"), []byte("mine"), 0o600)
	forge := func(edit func([]repository.Tablespace) []repository.Tablespace) string {
		s := *snaps[0]
		p := *s.Physical
		p.Tablespaces = edit(append([]repository.Tablespace(nil), p.Tablespaces...))
		s.Physical = &p
		id, err := wrepo.SaveSnapshot(ctx, &s)
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	for i, tc := range []struct {
		name string
		edit func([]repository.Tablespace) []repository.Tablespace
		want string
	}{
		{"stream missing", func(ts []repository.Tablespace) []repository.Tablespace {
			return append(ts, repository.Tablespace{OID: 99999, Name: "ghost", Location: victim})
		}, "no part 99999.tar"},
		{"duplicate oid", func(ts []repository.Tablespace) []repository.Tablespace {
			return append(ts, repository.Tablespace{OID: ts[0].OID, Name: "twin", Location: victim})
		}, "which an earlier one has"},
		{"dot-dot", func(ts []repository.Tablespace) []repository.Tablespace {
			ts[0].Location = victim + "/../../etc"
			return ts
		}, "not a clean absolute path"},
		{"relative", func(ts []repository.Tablespace) []repository.Tablespace {
			ts[0].Location = "../victim"
			return ts
		}, "not a clean absolute path"},
	} {
		id := forge(tc.edit)
		dir := filepath.Join(w.dir, fmt.Sprintf("hostile%d", i))
		out := c.fail(nil, "restore", id, "--pgdata", dir)
		mustContain(t, "restore of a snapshot with "+tc.name, out, tc.want, id[:8])
		for _, d := range []string{dir, pitrBeside(dir)} {
			if _, err := os.Lstat(d); !os.IsNotExist(err) {
				t.Errorf("%s: %s was made before the refusal: %v", tc.name, d, err)
			}
		}
		if i == 0 {
			// The drill names the missing stream too.
			code, out, rep := pitrDrill(t, c, drillTempDir(t), "--snapshot", id)
			if ok, detail := rep.check(t, "chunks and stream digest"); code == 0 || ok || !strings.Contains(detail, tc.want) {
				t.Errorf("drill --pitr of a snapshot whose tablespace stream is missing: exit %d, check %v %q\n%s", code, ok, detail, out)
			}
		}
	}
	// The backup host says a tablespace was at the victim directory: the
	// restore writes beside its data directory, never there.
	id := forge(func(ts []repository.Tablespace) []repository.Tablespace {
		ts[0].Location = victim
		return ts
	})
	dir := filepath.Join(w.dir, "hostile-victim")
	out := c.ok(nil, "restore", id, "--pgdata", dir)
	mustContain(t, "restore naming a victim location", out, "(at "+victim+" on the backup host) restored into "+pitrBeside(dir))
	if ents, _ := os.ReadDir(victim); len(ents) != 1 {
		t.Fatalf("the restore wrote into the location the snapshot named: %v", ents)
	}
}

func pitrBeside(dir string) string { return dir + ".tablespaces" }
