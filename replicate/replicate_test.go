package replicate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/replicate"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
	"github.com/coffer-backup/coffer/storage/s3"
)

func TestMain(m *testing.M) { testminio.Main(m) }

// counting counts the puts that reach a backend, by directory.
type counting struct {
	storage.Backend
	mu   sync.Mutex
	puts map[string]int
}

func (c *counting) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	c.mu.Lock()
	dir, _, _ := strings.Cut(name, "/")
	c.puts[dir]++
	c.mu.Unlock()
	return c.Backend.Put(ctx, name, data, opts)
}

func (c *counting) Unwrap() storage.Backend { return c.Backend }

func (c *counting) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.puts
	c.puts = map[string]int{}
	return p
}

func localBackend(t *testing.T) storage.Backend {
	t.Helper()
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func backupBytes(t *testing.T, r *repository.Repo, data []byte, source string) *repository.Snapshot {
	t.Helper()
	sum, err := backup.Run(context.Background(), r, bytes.NewReader(data), backup.Options{Source: source, Host: "test", Engine: "stdin", Format: "raw"})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return sum.Snapshot
}

func copyTo(t *testing.T, src *repository.Repo, dst storage.Backend, opts replicate.Options) *replicate.Summary {
	t.Helper()
	sum, err := replicate.Copy(context.Background(), src, dst, opts)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	return sum
}

func openCopy(t *testing.T, dst storage.Backend, id age.Identity) *repository.Repo {
	t.Helper()
	r, err := repository.OpenRestorer(context.Background(), dst, []age.Identity{id}, repository.OpenOptions{})
	if err != nil {
		t.Fatalf("open the copy with the operator's identity: %v", err)
	}
	return r
}

func restored(t *testing.T, r *repository.Repo, id repository.ID) [32]byte {
	t.Helper()
	s, err := r.LoadSnapshot(context.Background(), id)
	if err != nil {
		t.Fatalf("snapshot %s at the copy: %v", id.Short(), err)
	}
	var buf bytes.Buffer
	if _, err := restore.Run(context.Background(), r, s, &buf, restore.Options{}); err != nil {
		t.Fatalf("restore %s from the copy: %v", id.Short(), err)
	}
	return sha256.Sum256(buf.Bytes())
}

func checkClean(t *testing.T, r *repository.Repo) {
	t.Helper()
	rep, err := r.Check(context.Background(), repository.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatalf("check --read-data of the copy: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("check --read-data of the copy found problems: %+v", rep.Problems)
	}
}

func listNames(t *testing.T, be storage.Backend, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	if err := be.List(context.Background(), prefix, func(fi storage.Info) error { out[fi.Name] = fi.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCopyIncremental: a copy restores every snapshot byte for byte, and a
// second copy after one more backup puts exactly the packs, chunk lists
// and snapshot that backup added (counted at the destination).
func TestCopyIncremental(t *testing.T) {
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	base := synth.Bytes(1, 6<<20)
	want := map[repository.ID][32]byte{}
	for i, source := range []string{"shop", "billing", "shop"} {
		data := append([]byte(nil), base...)
		synth.Edit(data, uint64(i+10), 50, 0.01)
		s := backupBytes(t, src.Writer, data, source)
		want[s.ID()] = sha256.Sum256(data)
	}
	dst := &counting{Backend: localBackend(t), puts: map[string]int{}}
	sum := copyTo(t, src.Writer, dst, replicate.Options{Host: "copier"})
	if !sum.Initialised || sum.Snapshots != 3 || sum.Packs == 0 {
		t.Fatalf("first copy: %+v", sum)
	}
	cp := openCopy(t, dst, src.Identity)
	if cp.Config().ID != src.Writer.Config().ID {
		t.Fatalf("the copy's repository id %s is not the source's %s", cp.Config().ID, src.Writer.Config().ID)
	}
	for id, h := range want {
		if restored(t, cp, id) != h {
			t.Fatalf("snapshot %s restored from the copy differs", id.Short())
		}
	}
	checkClean(t, cp)

	dataBefore := listNames(t, src.Backend, "data/")
	listsBefore := listNames(t, src.Backend, "chunklists/")
	data := append([]byte(nil), base...)
	synth.Edit(data, 99, 50, 0.01)
	s := backupBytes(t, src.Writer, data, "shop")
	want[s.ID()] = sha256.Sum256(data)
	newPacks := len(listNames(t, src.Backend, "data/")) - len(dataBefore)
	newLists := len(listNames(t, src.Backend, "chunklists/")) - len(listsBefore)
	dst.reset()
	sum = copyTo(t, src.Writer, dst, replicate.Options{Host: "copier"})
	puts := dst.reset()
	if sum.Snapshots != 1 || sum.SnapshotsPresent != 3 || sum.Packs != newPacks || puts["data"] != newPacks {
		t.Fatalf("second copy: %+v, puts %v; the backup added %d packs", sum, puts, newPacks)
	}
	if puts["chunklists"] != newLists || puts["snapshots"] != 1 {
		t.Fatalf("second copy put %v; the backup added %d chunk lists and 1 snapshot", puts, newLists)
	}
	t.Logf("second copy: %d packs (%d bytes), %d lists, puts %v", sum.Packs, sum.Bytes, sum.Lists, puts)
	if restored(t, cp, s.ID()) != want[s.ID()] {
		t.Fatal("the new snapshot restored from the copy differs")
	}
	again := copyTo(t, src.Writer, dst, replicate.Options{Host: "copier"})
	if p := dst.reset(); again.Snapshots != 0 || p["data"] != 0 || p["chunklists"] != 0 || p["snapshots"] != 0 {
		t.Fatalf("a third copy with nothing new: %+v, puts %v", again, p)
	}
	if rec, err := replicate.LastCopy(context.Background(), cp); err != nil || rec == nil || rec.Source != src.Backend.Location() {
		t.Fatalf("the copy does not say it is one: %+v, %v", rec, err)
	}
}

// TestCopySubset: --source copies only that source's snapshots, and only
// the packs they need.
func TestCopySubset(t *testing.T) {
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	shop := synth.Bytes(2, 3<<20)
	s1 := backupBytes(t, src.Writer, shop, "shop")
	backupBytes(t, src.Writer, synth.Bytes(3, 3<<20), "billing")
	dst := localBackend(t)
	if _, err := replicate.Copy(context.Background(), src.Writer, dst, replicate.Options{Sources: []string{"shpo"}}); err == nil || !strings.Contains(err.Error(), `"shpo"`) {
		t.Fatalf("copy --source of a source without snapshots: %v", err)
	}
	if names := listNames(t, dst, ""); len(names) != 0 {
		t.Fatalf("the refused copy wrote %d objects", len(names))
	}
	sum := copyTo(t, src.Writer, dst, replicate.Options{Sources: []string{"shop"}})
	if sum.Snapshots != 1 {
		t.Fatalf("copy --source shop: %+v", sum)
	}
	cp := openCopy(t, dst, src.Identity)
	snaps, err := cp.Snapshots(context.Background())
	if err != nil || len(snaps) != 1 || snaps[0].ID() != s1.ID() {
		t.Fatalf("the copy holds %v (%v), want only %s", snaps, err, s1.ID().Short())
	}
	if got, all := len(listNames(t, dst, "data/")), len(listNames(t, src.Backend, "data/")); got >= all {
		t.Fatalf("copy --source shop carried %d of the source's %d packs: the other source's too", got, all)
	}
	if restored(t, cp, s1.ID()) != sha256.Sum256(shop) {
		t.Fatal("the copied snapshot differs")
	}
	checkClean(t, cp)
}

// TestCopyRefusesOtherRepository: a destination that holds another
// repository is refused, and nothing is written to it.
func TestCopyRefusesOtherRepository(t *testing.T) {
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	backupBytes(t, src.Writer, synth.Bytes(4, 1<<20), "shop")
	other := repotest.New(t, localBackend(t), repository.InitOptions{})
	before := listNames(t, other.Backend, "")
	_, err := replicate.Copy(context.Background(), src.Writer, other.Backend, replicate.Options{})
	if !errors.Is(err, repository.ErrNotCopy) || !strings.Contains(err.Error(), other.Writer.Config().ID) {
		t.Fatalf("copy into another repository: %v", err)
	}
	if _, err := replicate.Copy(context.Background(), src.Writer, src.Backend, replicate.Options{}); err == nil || !strings.Contains(err.Error(), "source itself") {
		t.Fatalf("copy onto the source itself: %v", err)
	}
	if after := listNames(t, other.Backend, ""); len(after) != len(before) {
		t.Fatalf("the refused copy wrote to the other repository: %d objects, were %d", len(after), len(before))
	}
}

// TestCopyObjectLock: on an Object Lock bucket every copied object carries
// a retain-until date of the destination's own policy.
func TestCopyObjectLock(t *testing.T) {
	ctx := context.Background()
	m := testminio.Server(t)
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	backupBytes(t, src.Writer, synth.Bytes(5, 2<<20), "shop")
	bucket := m.Bucket(t, true)
	be, err := s3.Open(ctx, s3.Config{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "copy", AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	copyTo(t, src.Writer, be, replicate.Options{Lock: &repository.ObjectLock{Mode: "governance", Days: 3}})
	names := listNames(t, be, "")
	if len(names) == 0 {
		t.Fatal("nothing copied")
	}
	for name := range names {
		until, err := be.Retention(ctx, name)
		if err != nil {
			t.Fatalf("retention of %s: %v", name, err)
		}
		if until.IsZero() {
			t.Errorf("copied %s carries no retain-until date", name)
		}
	}
	cfg, err := repository.LoadConfig(ctx, be)
	if err != nil || cfg.Lock == nil || cfg.Lock.Days != 3 {
		t.Fatalf("the copy's config has lock %+v (%v), want the destination's 3 days", cfg.Lock, err)
	}
	checkClean(t, openCopy(t, be, src.Identity))
}

// TestCopyDuringPrune: copies run again and again while the source backs
// up, forgets and prunes; whatever each copy meets (a snapshot forgotten,
// a pack swept), no snapshot reaches the destination without everything it
// needs, and a final copy leaves a destination that check --read-data
// passes, every snapshot restoring.
func TestCopyDuringPrune(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	want := map[repository.ID][32]byte{}
	var mu sync.Mutex
	add := func(seed uint64) {
		data := synth.Bytes(seed, 1<<20)
		s := backupBytes(t, src.Writer, data, "shop")
		mu.Lock()
		want[s.ID()] = sha256.Sum256(data)
		mu.Unlock()
	}
	add(100)
	add(101)
	dst := localBackend(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(0); i < 6; i++ {
			add(200 + i)
			snaps, err := src.Writer.Snapshots(ctx)
			if err != nil || len(snaps) == 0 {
				t.Errorf("snapshots: %v", err)
				return
			}
			if err := src.Writer.DeleteSnapshot(ctx, snaps[0].ID()); err != nil {
				t.Errorf("forget: %v", err)
				return
			}
			rep, err := src.Writer.Prune(ctx, repository.PruneOptions{Host: "pruner"})
			if err != nil {
				t.Logf("prune: %v", err)
			} else {
				t.Logf("prune: %d packs deleted, %d waiting on locks", rep.Deleted, len(rep.WaitingFor))
			}
		}
	}()
	copies, failed := 0, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := replicate.Copy(ctx, src.Writer, dst, replicate.Options{Host: "copier"}); err != nil {
			failed++
			t.Logf("copy during prune: %v", err)
		}
		copies++
	}
	copyTo(t, src.Writer, dst, replicate.Options{Host: "copier"})
	t.Logf("%d copies during the prunes, %d failed", copies, failed)
	cp := openCopy(t, dst, src.Identity)
	checkClean(t, cp)
	snaps, err := cp.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if restored(t, cp, s.ID()) != want[s.ID()] {
			t.Fatalf("snapshot %s restored from the copy differs", s.ID().Short())
		}
	}
	if len(snaps) < 3 {
		t.Fatalf("the copy holds only %d snapshots", len(snaps))
	}
}

// TestCopyKeepsDestinationRetention: a snapshot the destination forgot
// (its own retention) is not brought back by the next copy, unless
// --snapshot names it.
func TestCopyKeepsDestinationRetention(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	old := backupBytes(t, src.Writer, synth.Bytes(20, 1<<20), "shop")
	dst := localBackend(t)
	copyTo(t, src.Writer, dst, replicate.Options{})
	cp, err := repository.OpenWriter(ctx, dst, src.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.DeleteSnapshot(ctx, old.ID()); err != nil {
		t.Fatal(err)
	}
	backupBytes(t, src.Writer, synth.Bytes(21, 1<<20), "shop")
	sum := copyTo(t, src.Writer, dst, replicate.Options{})
	if sum.Snapshots != 1 || sum.SnapshotsDropped != 1 {
		t.Fatalf("copy after the destination forgot a snapshot: %+v", sum)
	}
	if _, err := dst.Stat(ctx, "snapshots/"+old.ID().String()); err == nil {
		t.Fatal("the copy brought back a snapshot the destination forgot")
	}
	if sum := copyTo(t, src.Writer, dst, replicate.Options{Snapshots: []string{old.ID().String()[:12]}}); sum.Snapshots != 1 {
		t.Fatalf("copy --snapshot of the forgotten snapshot: %+v", sum)
	}
}

// TestCopyWAL: a whole copy carries the WAL archive, which the copy's
// wal-fetch reads back (checked against its MAC) as the source's.
func TestCopyWAL(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	seg := synth.Bytes(30, 1<<20)
	if _, err := src.Writer.PushWAL(ctx, "000000010000000000000001", seg); err != nil {
		t.Fatal(err)
	}
	dst := localBackend(t)
	if sum := copyTo(t, src.Writer, dst, replicate.Options{}); sum.Records == 0 {
		t.Fatalf("the WAL archive was not copied: %+v", sum)
	}
	got, err := openCopy(t, dst, src.Identity).FetchWAL(ctx, "000000010000000000000001")
	if err != nil || !bytes.Equal(got, seg) {
		t.Fatalf("wal-fetch from the copy: %v (%d bytes, want %d)", err, len(got), len(seg))
	}
}
