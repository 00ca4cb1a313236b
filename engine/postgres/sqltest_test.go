package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
)

// Helpers of the tests of globals.go, acl.go and createdb.go against the
// real server.

// rolePrefix returns a unique prefix for the roles of one test, and drops
// every role that starts with it when the test ends.
func rolePrefix(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "coffer_" + what + "_" + hex.EncodeToString(b) + "_"
	pc := connect(t, "postgres")
	t.Cleanup(func() { dropRoles(t, pc, prefix) })
	return prefix
}

func dropRoles(t *testing.T, pc *pgx.Conn, prefix string) {
	t.Helper()
	ctx := context.Background()
	for _, r := range queryStrings(t, pc, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1", prefix) {
		if _, err := pc.Exec(ctx, "DROP ROLE "+quoteIdent(r)); err != nil {
			t.Errorf("drop role %q: %v", r, err)
		}
	}
}

// queryStrings runs a query and returns each row, its columns joined by "|".
func queryStrings(t *testing.T, pc *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := pc.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, v := range vals {
			cols = append(cols, fmt.Sprint(v))
		}
		out = append(out, strings.Join(cols, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// execAll runs statements built by the code under test, one by one.
func execAll(t *testing.T, pc *pgx.Conn, stmts []string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := pc.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// pgTool runs a PostgreSQL client program of the server's version against
// database db, with the environment coffer gives its children, and
// returns its output.
func pgTool(t *testing.T, program, db string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := parseDSN(dsn("postgres")) // the database goes in PGDATABASE
	if err != nil {
		t.Fatal(err)
	}
	tl, err := findTools(ctx, 15, program)
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	cmd := command.New(ctx, c.env(db), append([]string{tl.path[program]}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", program, strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes()
}

// dumpTOC dumps db with pg_dump -Fc -Z0 and returns its TOC entries.
func dumpTOC(t *testing.T, db string, args ...string) ([]*tocEntry, []byte) {
	t.Helper()
	b := pgTool(t, "pg_dump", db, append([]string{"-Fc", "-Z0", "--no-password"}, args...)...)
	a := newArchive(bytes.NewReader(b), db, engine.NewDigester())
	if err := a.readHeader(); err != nil {
		t.Fatal(err)
	}
	if err := a.readTOC(); err != nil {
		t.Fatal(err)
	}
	var out []*tocEntry
	for _, id := range a.order {
		out = append(out, a.entries[id])
	}
	return out, b
}
