package mysql

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestLoadSpeed measures loading the 200k-row test schema with coffer's
// own loader and, for comparison, piped into the mariadb client as coffer
// did before. It is a measurement: it runs with COFFER_MEASURE=1 and
// checks only that both loads give the same data.
//
//	COFFER_MEASURE=1 go test ./engine/mysql -run TestLoadSpeed -v
func TestLoadSpeed(t *testing.T) {
	if os.Getenv("COFFER_MEASURE") == "" {
		t.Skip("a measurement: set COFFER_MEASURE=1 to run it")
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("no mariadb client to compare with")
	}
	ctx := context.Background()
	db := rootDB(t)
	src := newName(t, db, "speed")
	makeShop(t, db, src, 100000)
	s, err := Open(ctx, rootDSN(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dump := readAll(t, ctx, s)
	rep := s.Report()
	mb := float64(len(dump)) / 1e6
	for round := range 2 {
		dst := newName(t, db, "speedold")
		run(t, db, "CREATE DATABASE "+quoteIdent(dst)+" CHARACTER SET utf8mb4")
		cmd := exec.Command(client, "--protocol=TCP", "--host=127.0.0.1", "--port=3306", "--user=root",
			"--binary-mode", "--default-character-set=utf8mb4", "--max-allowed-packet=1G", dst)
		cmd.Stdin = bytes.NewReader(dump)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mariadb: %v: %s", err, out)
		}
		old := time.Since(start)

		dst2 := newName(t, db, "speednew")
		tg, _ := NewTarget(rootDSN(dst2), TargetOptions{})
		start = time.Now()
		if err := tg.Load(ctx, bytes.NewReader(dump), rep); err != nil {
			t.Fatal(err)
		}
		now := time.Since(start)
		got, err := tg.Digests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustMatch(t, "coffer's load", rep.Tables, got)
		want, err := Digests(ctx, rootDSN(dst))
		if err != nil {
			t.Fatal(err)
		}
		mustMatch(t, "the client's load", rep.Tables, relabel(want, dst, src))
		t.Logf("round %d: %.1f MB, 300k rows: mariadb client %s (%.1f MB/s), coffer %s (%.1f MB/s)", round+1, mb,
			old.Round(time.Millisecond), mb/old.Seconds(), now.Round(time.Millisecond), mb/now.Seconds())
	}
}
