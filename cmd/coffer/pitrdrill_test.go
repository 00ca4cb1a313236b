package main_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pitrDrillReport is what these tests read of a drill's JSON report.
type pitrDrillReport struct {
	Passed bool `json:"passed"`
	Runs   []struct {
		Engine string `json:"engine"`
		Checks []struct {
			Name   string `json:"name"`
			Passed bool   `json:"passed"`
			Detail string `json:"detail"`
		} `json:"checks"`
		Phases []struct {
			Name string `json:"name"`
		} `json:"phases"`
		Tables []struct {
			Table   string `json:"table"`
			GotRows int64  `json:"got_rows"`
		} `json:"tables"`
		RPO struct {
			Age float64 `json:"age_seconds"`
		} `json:"rpo"`
	} `json:"runs"`
}

// pitrDrill runs coffer drill --pitr and returns its exit status, its
// standard output and the JSON report it wrote.
func pitrDrill(t *testing.T, c *cli, tmp string, args ...string) (int, string, pitrDrillReport) {
	t.Helper()
	reports := t.TempDir()
	r := c.with("TMPDIR="+tmp).run(nil, append([]string{"drill", "--pitr", "--source", "pg", "--report-dir", reports, "--state-dir", filepath.Join(c.dir, "state")}, args...)...)
	if strings.Contains(r.stderr, "panic:") {
		t.Fatalf("drill --pitr panicked:\n%s", r.stderr)
	}
	var rep pitrDrillReport
	files, _ := filepath.Glob(filepath.Join(reports, "drill-*.json"))
	if len(files) != 1 {
		t.Fatalf("drill --pitr %v: exit %d, %d JSON reports\n%s\n%s", args, r.code, len(files), r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(files[0])
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Runs) != 1 {
		t.Fatalf("drill --pitr report: %v\n%s", err, b)
	}
	if _, err := os.Stat(strings.TrimSuffix(files[0], ".json") + ".html"); err != nil {
		t.Errorf("no HTML report: %v", err)
	}
	return r.code, r.stdout, rep
}

// check returns the named check of the report's run, failing without it.
func (rep pitrDrillReport) check(t *testing.T, name string) (bool, string) {
	t.Helper()
	for _, c := range rep.Runs[0].Checks {
		if c.Name == name {
			return c.Passed, c.Detail
		}
	}
	t.Fatalf("the report has no check %q: %+v", name, rep.Runs[0].Checks)
	return false, ""
}

// filesUnder lists the objects under dir/ of a local repository.
func filesUnder(t *testing.T, repo, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(repo, dir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(repo, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// walObjects lists the WAL archive of a local repository.
func walObjects(t *testing.T, repo string) []string { return filesUnder(t, repo, "wal") }

// damagedDrill flips a bit of the object at path, drills, puts the object
// back, and returns the detail of the named check, which must have failed
// the drill.
func damagedDrill(t *testing.T, c *cli, tmp, path, check string, args ...string) string {
	t.Helper()
	orig := flipByte(t, path)
	defer os.WriteFile(path, orig, 0o600)
	code, out, rep := pitrDrill(t, c, tmp, args...)
	ok, detail := rep.check(t, check)
	if code != 1 || ok {
		t.Fatalf("drill --pitr with %s damaged: exit %d, check %s passed %v\n%s", path, code, check, ok, out)
	}
	return detail
}

func walObjectOf(t *testing.T, repo, segment string) string {
	t.Helper()
	for _, o := range walObjects(t, repo) {
		if strings.HasPrefix(o, "wal/"+segment+".g") {
			return o
		}
	}
	t.Fatalf("no WAL object of segment %s in %v", segment, walObjects(t, repo))
	return ""
}

// TestPITRDrill is done-when 5 of the point-in-time recovery issue: coffer
// drill --pitr passes on a good archive, recovering to a time between two
// batches of rows (the assertion sees exactly the rows committed before
// it), and fails, naming the object, when a WAL segment between the base
// backup and the target is deleted, when a WAL object is altered, and when
// a byte of a pack of the base backup is flipped. The backed-up cluster's
// own configuration would break the drill if it were used: a library to
// preload that does not exist, a database whose logins load another, and
// an archive_command that would push the restored server's WAL into the
// repository.
func TestPITRDrill(t *testing.T) {
	w := newWALCluster(t)
	w.superuser = "drill_admin" // recorded by the base backup: the drill needs no --pitr-superuser
	repo := filepath.Join(w.dir, "repo")
	c := newCLI(t, repo)
	c.init()
	w.start(c)
	w.sql("CREATE TABLE orders (batch int, n int PRIMARY KEY)")
	w.sql("CREATE DATABASE shop")
	w.sql("ALTER DATABASE shop SET session_preload_libraries = 'coffer_no_such_library'")
	// Takes effect at the next start only: the running cluster keeps going.
	w.sql("ALTER SYSTEM SET shared_preload_libraries = 'coffer_no_such_library'")
	c.without("COFFER_IDENTITY_FILE").ok(nil, "backup", "--source", "pg", "--physical", "--postgres", w.socketURL())
	var marks, segs []string
	for batch := 1; batch <= 3; batch++ {
		w.sql(fmt.Sprintf("INSERT INTO orders SELECT %d, %d + generate_series(1, 500)", batch, batch*1000))
		marks = append(marks, w.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"))
		segs = append(segs, w.sql("SELECT pg_walfile_name(pg_current_wal_lsn())"))
		w.sql("SELECT pg_switch_wal()")
		w.waitArchived(segs[len(segs)-1])
		time.Sleep(1100 * time.Millisecond) // commits of different batches a second apart
	}
	t2, _ := time.Parse(time.RFC3339Nano, marks[1])
	mid := t2.Add(500 * time.Millisecond).Format(time.RFC3339Nano)
	assertions := filepath.Join(w.dir, "assert.yaml")
	os.WriteFile(assertions, []byte("- name: batches 1 and 2 only\n  sql: SELECT count(*) FILTER (WHERE batch <= 2) || '/' || count(*) FROM orders\n  expect: 1000/1000\n"), 0o600)
	tmp := drillTempDir(t)
	before := throwawayUsers(t, tmp)
	archived := walObjects(t, repo)

	t.Run("good archive", func(t *testing.T) {
		code, out, rep := pitrDrill(t, c, tmp, "--target-time", mid, "--assertions", assertions)
		if code != 0 || !rep.Passed {
			t.Fatalf("drill --pitr on a good archive: exit %d\n%s", code, out)
		}
		t.Logf("drill --pitr --target-time %s:\n%s", mid, out)
		for _, name := range []string{"chunks and stream digest", "wal chain", "wal segments", "recovery target", "pg_amcheck", "row counts", "wal archive age", "assertion: batches 1 and 2 only", "scratch removed"} {
			if ok, detail := rep.check(t, name); !ok {
				t.Errorf("check %s failed: %s", name, detail)
			}
		}
		_, detail := rep.check(t, "recovery target")
		mustContain(t, "recovery target", detail, "at or before the target "+mid)
		_, detail = rep.check(t, "wal archive age")
		mustContain(t, "wal archive age", detail, "storage's clock", segs[2])
		var phases []string
		for _, p := range rep.Runs[0].Phases {
			phases = append(phases, p.Name)
		}
		if strings.Join(phases, ",") != "fetch,recovery,checks" {
			t.Errorf("phases %v, want fetch, recovery, checks", phases)
		}
		counts := map[string]int64{}
		for _, tb := range rep.Runs[0].Tables {
			counts[tb.Table] = tb.GotRows
		}
		if counts["postgres.public.orders"] != 1000 {
			t.Errorf("row counts: %v, want postgres.public.orders 1000", counts)
		}
		// Writers read the stored record's summary: check names and verdicts,
		// never a table's name.
		summary := c.without("COFFER_IDENTITY_FILE").ok(nil, "drills", "--json")
		mustContain(t, "drills --json", summary, `"wal chain"`, `"pg_amcheck"`, `"row counts"`)
		if strings.Contains(summary, "orders") || strings.Contains(summary, "batches 1 and 2") {
			t.Errorf("the stored summary names a table or an assertion:\n%s", summary)
		}
		if got := walObjects(t, repo); len(got) != len(archived) {
			t.Errorf("the WAL archive changed during the drill: the restored server archived with the backup's archive_command?\nbefore %v\nafter  %v", archived, got)
		}
		// Without a target: to the end of the archive, all three batches.
		os.WriteFile(filepath.Join(w.dir, "all.yaml"), []byte("- name: all rows\n  sql: SELECT count(*) FROM orders\n  expect: 1500\n"), 0o600)
		if code, out, _ := pitrDrill(t, c, tmp, "--assertions", filepath.Join(w.dir, "all.yaml")); code != 0 {
			t.Fatalf("drill --pitr to the end of the archive: exit %d\n%s", code, out)
		}
	})

	t.Run("missing segment", func(t *testing.T) {
		obj := walObjectOf(t, repo, segs[1]) // batch 2: after the backup, before the target
		aside := filepath.Join(w.dir, "aside")
		if err := os.Rename(filepath.Join(repo, obj), aside); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(aside, filepath.Join(repo, obj))
		code, out, rep := pitrDrill(t, c, tmp, "--target-time", mid)
		if code != 1 || rep.Passed {
			t.Fatalf("drill --pitr without segment %s: exit %d\n%s", segs[1], code, out)
		}
		ok, detail := rep.check(t, "wal chain")
		if ok {
			t.Fatalf("the WAL chain check passed without segment %s: %s", segs[1], detail)
		}
		mustContain(t, "wal chain", detail, "wal/"+segs[1])
		mustContain(t, "drill output", out, "FAIL wal chain", segs[1])
	})

	t.Run("altered WAL object", func(t *testing.T) {
		obj := walObjectOf(t, repo, segs[0])
		detail := damagedDrill(t, c, tmp, filepath.Join(repo, obj), "wal segments", "--target-time", mid)
		mustContain(t, "wal segments", detail, obj)
	})

	t.Run("damaged base backup", func(t *testing.T) {
		packs := filesUnder(t, repo, "data")
		if len(packs) == 0 {
			t.Fatal("no packs in the repository")
		}
		// The largest pack: the base backup's data files.
		largest, size := "", int64(-1)
		for _, p := range packs {
			if fi, err := os.Stat(filepath.Join(repo, p)); err == nil && fi.Size() > size {
				largest, size = p, fi.Size()
			}
		}
		detail := damagedDrill(t, c, tmp, filepath.Join(repo, largest), "chunks and stream digest", "--target-time", mid)
		mustContain(t, "chunks and stream digest", detail, largest)
	})

	noNewThrowawayUsers(t, tmp, before)
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// flipByte flips one bit in the middle of the file at path and returns
// its original content.
func flipByte(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	orig := append([]byte(nil), b...)
	b[len(b)/2] ^= 0x01
	os.Chmod(path, 0o600)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return orig
}
