package main_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	_ "modernc.org/sqlite"

	"github.com/coffer-backup/coffer/repository"
)

// TestHostileWriterReadsDrillReports: a backup host (writer key only)
// reads the drill reports stored in the repository. A drill of a database
// with a table of a unique name, checked by an assertion whose name and
// SQL carry unique markers, leaves none of them, nor any row count, in
// what the writer key can read: not in `coffer drills --json`, not in any
// stored object, not in any metadata object decrypted with the writer key.
// With the identity, `coffer drills --full` shows them all.
func TestHostileWriterReadsDrillReports(t *testing.T) {
	hexOf := func() string {
		var b [8]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	table, nameMarker, sqlMarker := "t_"+hexOf(), "name_"+hexOf(), "sql_"+hexOf()
	const rows = 4093
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, v TEXT)`,
		fmt.Sprintf(`WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM g WHERE i < %d) INSERT INTO %s SELECT i, 'row ' || i FROM g`, rows, table),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	repoDir := filepath.Join(dir, "repo")
	c := newCLI(t, repoDir)
	c.init()
	c.backup(nil, "--source", "src", "--sqlite", src)
	assertions := filepath.Join(dir, "assert.yaml")
	os.WriteFile(assertions, []byte(fmt.Sprintf("- name: %s rows\n  sql: SELECT count(*) FROM %s WHERE v <> '%s'\n  expect: %d\n", nameMarker, table, sqlMarker, rows)), 0o600)
	d, _ := c.drill("--source", "src", "--assertions", assertions)
	if !d.Passed {
		t.Fatalf("drill failed: %+v", d)
	}
	secrets := []string{table, nameMarker, sqlMarker}

	// The writer's view: the summary, and nothing else.
	writer := c.without("COFFER_IDENTITY_FILE")
	summary := writer.ok(nil, "drills", "--json")
	for _, s := range secrets {
		if strings.Contains(summary, s) {
			t.Errorf("coffer drills --json with the writer key shows %q:\n%s", s, summary)
		}
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(summary), &list); err != nil || len(list) != 1 || list[0]["drill"] != d.ID || list[0]["version"] != 2.0 {
		t.Fatalf("drills --json: %v\n%s", err, summary)
	}
	allowed := map[string]bool{"json_version": true, "version": true, "drill": true, "started": true, "finished": true, "host": true, "tool": true, "passed": true,
		"runs": true, "snapshot": true, "source": true, "engine": true, "snapshot_time": true, "size_bytes": true, "checks": true, "name": true,
		"rto_seconds": true, "rpo": true, "age_seconds": true, "gap_seconds": true}
	for _, k := range jsonKeys(list) {
		if !allowed[k] {
			t.Errorf("coffer drills --json with the writer key has the field %q:\n%s", k, summary)
		}
	}
	mustContain(t, "drills --json", summary, `"name": "assertion 1"`, `"name": "tables"`)
	text := writer.ok(nil, "drills")
	mustContain(t, "drills", text, d.ID, "passed")
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("coffer drills with the writer key shows %q:\n%s", s, text)
		}
	}
	mustContain(t, "drills --full with the writer key", writer.fail(nil, "drills", "--full"), "COFFER_IDENTITY_FILE")

	// Every stored object, as bytes, and every metadata object as the
	// writer key decrypts it.
	wk := cliWriterKey(t, c)
	opened := map[string]int{}
	filepath.WalkDir(repoDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(repoDir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		plain := b
		if rel == repository.ConfigObject {
			// plaintext JSON: searched as it is
		} else if r, err := age.Decrypt(bytes.NewReader(b), wk.Metadata); err == nil {
			z, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if plain, err = zstdDecode(z); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			opened[strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]]++
		} else if !errors.As(err, new(*age.NoIdentityMatchError)) { // packs and keys are to other keys
			t.Fatalf("%s: %v", rel, err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in plaintext", rel, s)
			}
			if bytes.Contains(plain, []byte(s)) {
				t.Errorf("%s, decrypted with the writer key, holds %q", rel, s)
			}
		}
		return nil
	})
	if opened["drills"] != 1 || opened["snapshots"] != 1 || opened["audit"] == 0 || opened["index"] == 0 {
		t.Fatalf("metadata objects decrypted with the writer key, by directory: %v", opened)
	}

	// The operator's view: the whole report.
	full := c.ok(nil, "drills", "--full", "--json")
	mustContain(t, "drills --full --json", full, table, nameMarker, sqlMarker, fmt.Sprint(rows), `"target"`, `"tables"`)
	mustContain(t, "drills --full", c.ok(nil, "drills", "--full"), d.ID, nameMarker, sqlMarker)
}

// jsonKeys returns every object key in v, at any depth.
func jsonKeys(v any) []string {
	var keys []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			keys = append(keys, k)
			keys = append(keys, jsonKeys(x)...)
		}
	case []any:
		for _, x := range v {
			keys = append(keys, jsonKeys(x)...)
		}
	case []map[string]any:
		for _, x := range v {
			keys = append(keys, jsonKeys(x)...)
		}
	}
	return keys
}

// zstdDecode decompresses a metadata object's plaintext, as anyone with
// the writer key can.
func zstdDecode(z []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.DecodeAll(z, nil)
}
