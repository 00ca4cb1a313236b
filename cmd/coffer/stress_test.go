package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
)

// rows returns source s's rows new on night n.
func rows(s, n int) []byte { return synth.Bytes(uint64(1000*s+n+1), 512<<10) }

// night returns source s's dump on night n: the night's new rows, the
// night before's (shared with the last snapshot), and every other night
// rows from three nights ago, whose pack prune may have marked by then: a
// backup running meanwhile must not come to depend on a pack prune deletes.
func night(s, n int) []byte {
	b := append(rows(s, n), rows(s, n-1)...)
	if n >= 3 && n%2 == 1 {
		b = append(b, rows(s, n-3)...)
	}
	return b
}

// TestStressBackupsAndPrune runs backups from several processes while prune
// runs over and over against MinIO; afterwards every snapshot that was not
// forgotten restores byte-identical and the repository checks clean.
func TestStressBackupsAndPrune(t *testing.T) { stress(t, "0s", nil) }

// TestStressSkewedClocks is the stress test with processes whose clocks
// disagree: prune 31 minutes ahead (past the stale age of every lock, had
// staleness compared clocks), the backups of each source at their own
// offset (consistent per source, so --keep-last still orders them).
// Everything must still restore.
func TestStressSkewedClocks(t *testing.T) {
	stress(t, "31m", []string{"0s", "-7m", "13m"})
}

// stress runs the stress test with prune's clock offset by pruneOffset and
// source s's backups by backupOffsets[s] (COFFER_TEST_CLOCK_OFFSET, read
// only by the test build of coffer).
func stress(t *testing.T, pruneOffset string, backupOffsets []string) {
	m := testminio.Server(t)
	c := newCLI(t, "", m.Env(m.Bucket(t, false), "stress")...)
	c.init()
	w := c.without("COFFER_IDENTITY_FILE")
	pw := w.with("COFFER_TEST_CLOCK_OFFSET=" + pruneOffset)
	bw := func(s int) *cli {
		if s < len(backupOffsets) {
			return w.with("COFFER_TEST_CLOCK_OFFSET=" + backupOffsets[s])
		}
		return w
	}

	const rounds, sources = 8, 3
	want := map[string][32]byte{}    // snapshot id → digest of its stream
	digests := map[string][32]byte{} // every snapshot ever made
	var mu sync.Mutex
	stop := make(chan struct{})
	pruneDone := make(chan [2]int)
	go func() { // the maintainer, pruning all the time
		n, swept := 0, 0
		for {
			select {
			case <-stop:
				pruneDone <- [2]int{n, swept}
				return
			default:
			}
			r := pw.run(nil, "prune")
			if r.code != 0 {
				t.Errorf("prune failed during backups: %s", r.stderr)
			}
			if strings.HasPrefix(r.stdout, "deleted ") && !strings.HasPrefix(r.stdout, "deleted 0 ") {
				swept++
			}
			n++
		}
	}()
	for round := range rounds {
		var wg sync.WaitGroup
		for s := range sources {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data := night(s, round)
				b := bw(s).backup(bytes.NewReader(data), "--source", fmt.Sprintf("db%d", s), "--stdin")
				mu.Lock()
				digests[b.Snapshot] = sha256.Sum256(data)
				mu.Unlock()
			}()
		}
		wg.Wait()
		// Keep the last two snapshots of every source, so packs of older
		// nights become garbage while the next backups run.
		w.ok(nil, "forget", "--keep-last", "2")
		want = map[string][32]byte{}
		for _, row := range w.snapshots() {
			want[row.ID] = digests[row.ID]
		}
	}
	close(stop)
	prunes := <-pruneDone
	pw.ok(nil, "prune")
	t.Logf("%d rounds of %d concurrent backups, %d prunes meanwhile, %d of which deleted packs", rounds, sources, prunes[0], prunes[1])
	if prunes[1] == 0 {
		t.Error("no prune deleted anything while backups ran: the test did not exercise the protocol")
	}

	rows := c.snapshots()
	if len(rows) != len(want) {
		t.Fatalf("%d snapshots remain, want %d", len(rows), len(want))
	}
	for _, row := range rows {
		got := sha256.Sum256([]byte(c.ok(nil, "restore", row.ID)))
		if got != want[row.ID] {
			t.Fatalf("snapshot %s does not restore byte-identical", row.ID[:8])
		}
	}
	mustContain(t, "check --read-data", c.ok(nil, "check", "--read-data"), "no errors")
}

// TestPruneKilled kills prune with SIGKILL at random points, many times:
// each time check passes and every remaining snapshot restores.
func TestPruneKilled(t *testing.T) {
	m := testminio.Server(t)
	c := newCLI(t, "", m.Env(m.Bucket(t, false), "killed")...)
	c.init()
	want := map[string][32]byte{}
	for n := range 16 {
		data := night(n%2, n)
		b := c.backup(bytes.NewReader(data), "--source", fmt.Sprintf("db%d", n%2), "--stdin")
		want[b.Snapshot] = sha256.Sum256(data)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// Kill within the time a prune takes here: a dry run (start, list,
	// read every snapshot and index) is most of it.
	start := time.Now()
	c.ok(nil, "prune", "--dry-run")
	span := 2 * max(time.Since(start), 50*time.Millisecond) // past the dry part, into the sweep
	kills := 0
	for i := range 12 {
		// Make garbage: forget one more snapshot.
		for id := range want {
			if len(want) > 3 {
				c.ok(nil, "forget", id)
				delete(want, id)
			}
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := c.cmd(ctx, nil, "prune")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		cancel()
		killed := false
		if ee, ok := err.(*exec.ExitError); ok {
			killed = ee.Sys().(syscall.WaitStatus).Signaled()
		}
		if killed {
			kills++
		}
		if r := c.run(nil, "check"); r.code != 0 {
			t.Fatalf("round %d (prune killed: %v): check failed:\n%s%s", i, killed, r.stdout, r.stderr)
		}
	}
	t.Logf("prune was killed %d times of 12", kills)
	if kills < 3 {
		t.Errorf("prune was killed only %d times: it ran too fast for this test", kills)
	}
	c.ok(nil, "prune")
	for id, sum := range want {
		if sha256.Sum256([]byte(c.ok(nil, "restore", id))) != sum {
			t.Fatalf("snapshot %s does not restore byte-identical after killed prunes", id[:8])
		}
	}
	mustContain(t, "check --read-data", c.ok(nil, "check", "--read-data"), "no errors")
}
