package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/testminio"
)

// table is a generated customer table, dumped in primary-key order: each
// night some rows change (a few anywhere, more among the recent ones),
// some are inserted (at the end, new keys) and some deleted.
type table struct {
	rng  *rand.Rand
	rows map[int]string
	next int
}

func newTable(seed uint64, n int) *table {
	t := &table{rng: rand.New(rand.NewPCG(seed, 7)), rows: map[int]string{}}
	for range n {
		t.insert()
	}
	return t
}

func (t *table) row(id int) string {
	return fmt.Sprintf("%d\tcustomer-%x\t%x@example.com\t%d.%02d\t%016x%016x%016x\n", id, t.rng.Uint32(), t.rng.Uint32(),
		t.rng.IntN(100000), t.rng.IntN(100), t.rng.Uint64(), t.rng.Uint64(), t.rng.Uint64())
}

func (t *table) insert() { t.rows[t.next] = t.row(t.next); t.next++ }

// night changes the table as a day of business does.
func (t *table) night() {
	ids := t.ids()
	for range 6 { // a few old customers change
		id := ids[t.rng.IntN(len(ids))]
		t.rows[id] = t.row(id)
	}
	for range 4 { // a few leave
		delete(t.rows, ids[t.rng.IntN(len(ids))])
	}
	recent := ids[len(ids)-len(ids)/20:]
	for range len(recent) / 4 { // recent ones change often
		id := recent[t.rng.IntN(len(recent))]
		if _, ok := t.rows[id]; ok {
			t.rows[id] = t.row(id)
		}
	}
	for range len(ids) / 50 {
		t.insert()
	}
}

func (t *table) ids() []int {
	out := make([]int, 0, len(t.rows))
	for id := range t.rows {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

func (t *table) dump() []byte {
	var b bytes.Buffer
	for _, id := range t.ids() {
		b.WriteString(t.rows[id])
	}
	return b.Bytes()
}

type statsJSON struct {
	Stored    int64 `json:"stored_bytes"`
	PackBytes int64 `json:"pack_bytes"`
	Sources   []struct {
		Stored int64 `json:"stored_bytes"`
	} `json:"sources"`
	Unreferenced int64 `json:"unreferenced_bytes_in_live_packs"`
}

func (c *cli) stats() statsJSON {
	c.t.Helper()
	var st statsJSON
	out := c.ok(nil, "stats", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("stats --json: %v\n%s", err, out)
	}
	if len(st.Sources) != 1 {
		c.t.Fatalf("stats: %d sources, want 1", len(st.Sources))
	}
	return st
}

// repackBackends runs f on a local repository and on MinIO.
func repackBackends(t *testing.T, f func(t *testing.T, c *cli)) {
	t.Run("local", func(t *testing.T) { f(t, newCLI(t, filepath.Join(t.TempDir(), "repo"))) })
	t.Run("minio", func(t *testing.T) {
		m := testminio.Server(t)
		f(t, newCLI(t, "", m.Env(m.Bucket(t, false), "repack")...))
	})
}

// nights backs up n nights of the table, night i dated n-1-i days ago,
// each followed by forget with keep; it returns the digest of every
// snapshot's stream.
func nights(c *cli, tb *table, n int, keep ...string) map[string][32]byte {
	digests := map[string][32]byte{}
	w := c.without("COFFER_IDENTITY_FILE")
	for i := range n {
		if i > 0 {
			tb.night()
		}
		data := tb.dump()
		off := fmt.Sprintf("COFFER_TEST_CLOCK_OFFSET=%dh", -24*(n-1-i))
		b := w.with(off).backup(bytes.NewReader(data), "--source", "shop", "--stdin")
		digests[b.Snapshot] = sha256.Sum256(data)
		if len(keep) > 0 {
			w.ok(nil, append([]string{"forget"}, keep...)...)
		}
		if i%7 == 6 {
			w.ok(nil, "prune") // the weekly prune, without repacking
		}
	}
	return digests
}

// mustRestoreAll restores every snapshot left and compares it with its
// digest, then runs check --read-data.
func mustRestoreAll(t *testing.T, c *cli, digests map[string][32]byte) {
	t.Helper()
	rows := c.snapshots()
	if len(rows) == 0 {
		t.Fatal("no snapshot left")
	}
	for _, row := range rows {
		if got := sha256.Sum256([]byte(c.ok(nil, "restore", row.ID))); got != digests[row.ID] {
			t.Fatalf("snapshot %s does not restore byte-identical", row.ID[:8])
		}
	}
	mustContain(t, "check --read-data", c.ok(nil, "check", "--read-data"), "no errors")
}

// TestRepackThirtyNights: after 30 nights with --keep-daily 7
// --keep-weekly 4 and a weekly plain prune, prune --repack brings the
// stored bytes to within 10 % of what the kept snapshots reference.
func TestRepackThirtyNights(t *testing.T) {
	repackBackends(t, func(t *testing.T, c *cli) {
		c.ok(nil, "init", "--chunk-avg", "16K")
		digests := nights(c, newTable(3, 30000), 30, "--keep-daily", "7", "--keep-weekly", "4")
		w := c.without("COFFER_IDENTITY_FILE")
		for _, bad := range []string{"120%", "-1%", "ten"} {
			mustContain(t, "--max-unused "+bad, c.fail(nil, "prune", "--repack", "--max-unused", bad), "--max-unused", "percentage")
		}
		w.ok(nil, "prune") // what plain prune can free, it frees
		before := c.stats()
		mustContain(t, "prune without an identity", w.ok(nil, "prune", "--repack"), "repacking needs an operator identity")
		if st := c.stats(); st.Stored != before.Stored {
			t.Fatalf("prune --repack without an identity changed the stored bytes: %d → %d", before.Stored, st.Stored)
		}
		out := c.ok(nil, "prune", "--repack")
		mustContain(t, "prune --repack", out, "repacked ")
		after := c.stats()
		ref := after.Sources[0].Stored
		t.Logf("%d snapshots kept, referencing %d bytes; stored %d bytes (packs %d, %d unreferenced in live packs) before prune --repack, %d (packs %d, %d unreferenced) after: %.1f%% over",
			len(c.snapshots()), ref, before.Stored, before.PackBytes, before.Unreferenced, after.Stored, after.PackBytes, after.Unreferenced,
			100*float64(after.Stored-ref)/float64(ref))
		if before.Stored <= ref*110/100 {
			t.Fatalf("before the repack %d bytes were stored for %d referenced: the workload left no waste to test", before.Stored, ref)
		}
		if after.Stored > ref*110/100 {
			t.Fatalf("after prune --repack %d bytes are stored for %d referenced: more than 10 %% over", after.Stored, ref)
		}
		mustRestoreAll(t, c, digests)
	})
}

// TestRepackKilled kills prune --repack with SIGKILL at random points:
// after each kill check --read-data passes and every kept snapshot
// restores byte-identical; prune --repack run again then completes, and
// leaves nothing to repack.
func TestRepackKilled(t *testing.T) {
	repackBackends(t, func(t *testing.T, c *cli) {
		c.ok(nil, "init", "--chunk-avg", "16K")
		digests := nights(c, newTable(5, 30000), 14)
		forgetOldest := func() {
			// Make waste in live packs: forget the oldest snapshot but two.
			if rows := c.snapshots(); len(rows) > 3 {
				c.ok(nil, "forget", rows[0].ID)
				delete(digests, rows[0].ID)
			}
		}
		// How long a repack takes here: kill within that.
		forgetOldest()
		start := time.Now()
		mustContain(t, "prune --repack", c.ok(nil, "prune", "--repack"), "repacked ")
		span := max(time.Since(start), 50*time.Millisecond)
		rng := rand.New(rand.NewPCG(9, 9))
		kills, marked := 0, 0
		const rounds = 10
		for i := range rounds {
			forgetOldest()
			// Kill points spread over the span: one at random in each tenth.
			at := time.Duration((float64(i) + rng.Float64()) / rounds * float64(span))
			if killRun(t, c, at, "prune", "--repack") {
				kills++
				var dry map[string]any
				json.Unmarshal([]byte(c.ok(nil, "prune", "--dry-run", "--json")), &dry)
				if m, _ := dry["marker"].(string); m != "" {
					marked++ // killed between its marker and the end of its sweep
				}
			}
			mustRestoreAll(t, c, digests)
			if t.Failed() {
				t.Fatalf("round %d", i)
			}
		}
		t.Logf("prune --repack was killed %d times of 10 (within %s), %d of them after its marker, before the end of its sweep", kills, span, marked)
		if kills < 3 {
			t.Errorf("prune --repack was killed only %d times: it ran too fast for this test", kills)
		}
		c.ok(nil, "prune", "--repack")
		mustContain(t, "the last prune --repack", c.ok(nil, "prune", "--repack"), "no live pack has more unreferenced data")
		mustRestoreAll(t, c, digests)
	})
}

// killRun starts coffer with args, kills it with SIGKILL after d, and
// reports whether it was killed (rather than done by then).
func killRun(t *testing.T, c *cli, d time.Duration, args ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Sys().(syscall.WaitStatus).Signaled()
	}
	if err != nil {
		t.Fatalf("coffer %s: %v", strings.Join(args, " "), err)
	}
	return false
}

// TestRepackDuringBackups runs prune --repack over and over while backups
// of two sources run, each forgetting all but the last three snapshots;
// every other night a backup also carries a dump of three nights before,
// whose chunks a repack may have left out of its new packs as
// unreferenced. No snapshot may end up referencing a deleted pack: every
// one left restores byte-identical and check --read-data passes.
func TestRepackDuringBackups(t *testing.T) {
	repackBackends(t, func(t *testing.T, c *cli) {
		c.ok(nil, "init", "--chunk-avg", "16K")
		w := c.without("COFFER_IDENTITY_FILE")
		const rounds, sources = 14, 2
		tables := make([]*table, sources)
		dumps := make([][][]byte, sources)
		for s := range tables {
			tables[s] = newTable(uint64(40+s), 20000)
		}
		digests := map[string][32]byte{}
		var mu sync.Mutex
		stop := make(chan struct{})
		done := make(chan [3]int)
		go func() { // the operator, repacking all the time
			n, repacked, kept := 0, 0, 0
			for {
				select {
				case <-stop:
					done <- [3]int{n, repacked, kept}
					return
				default:
				}
				r := c.run(nil, "prune", "--repack", "--max-unused", "2%")
				if r.code != 0 {
					t.Errorf("prune --repack failed during backups: %s", r.stderr)
				}
				if strings.Contains(r.stdout, "repacked ") {
					repacked++
				}
				if strings.Contains(r.stdout, "that a backup finished meanwhile came to use") {
					kept++
				}
				n++
			}
		}()
		for round := range rounds {
			var wg sync.WaitGroup
			for s := range sources {
				tables[s].night()
				dump := tables[s].dump()
				dumps[s] = append(dumps[s], dump)
				data := dump
				if round >= 3 && round%2 == 1 {
					data = append(append([]byte(nil), dump...), dumps[s][round-3]...)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					b := w.backup(bytes.NewReader(data), "--source", fmt.Sprintf("db%d", s), "--stdin")
					mu.Lock()
					digests[b.Snapshot] = sha256.Sum256(data)
					mu.Unlock()
				}()
			}
			wg.Wait()
			w.ok(nil, "forget", "--keep-last", "3")
		}
		close(stop)
		runs := <-done
		t.Logf("%d rounds of %d concurrent backups; %d runs of prune --repack meanwhile, %d of which repacked, %d kept packs a backup came to use", rounds, sources, runs[0], runs[1], runs[2])
		if runs[1] == 0 {
			t.Error("no prune --repack repacked anything while backups ran: the test did not exercise the protocol")
		}
		c.ok(nil, "prune", "--repack")
		c.ok(nil, "prune", "--repack")
		mustRestoreAll(t, c, digests)
	})
}
