package repository_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
	"github.com/coffer-backup/coffer/storage/location"
)

// rotationFixture is a local repository with two operators (A stays, B is
// removed), three snapshots with private parts, a drill-like record with a
// private part and audit records, all written before any rotation.
type rotationFixture struct {
	be     storage.Backend
	a, b   *age.X25519Identity
	inputs map[string][]byte // snapshot id → stream
	// What B could have kept while an operator: every key of generation 1.
	bKept []age.Identity
}

func localBackend(t *testing.T) storage.Backend {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func newRotationFixture(t *testing.T, be storage.Backend) *rotationFixture {
	t.Helper()
	ctx := context.Background()
	f := &rotationFixture{be: be, inputs: map[string][]byte{}}
	tr := repotest.New(t, be, repository.InitOptions{})
	f.a = tr.Identity
	var err error
	if f.b, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Restorer.SetOperators(ctx, []age.Recipient{f.a.Recipient(), f.b.Recipient()}, []string{f.a.Recipient().String(), f.b.Recipient().String()}); err != nil {
		t.Fatal(err)
	}
	for i, src := range []string{"shop", "shop", "crm"} {
		in := synth.Bytes(uint64(500+i), 700<<10)
		snap, err := backup.Run(ctx, tr.Writer, bytes.NewReader(in), backup.Options{Source: src, Host: "db1",
			Private: func() any { return map[string]string{"table": "secret_customers_" + src} }})
		if err != nil {
			t.Fatal(err)
		}
		f.inputs[snap.Snapshot.ID().String()] = in
	}
	sealed, err := tr.Writer.SealPrivate(map[string]string{"table": "secret_drill_table"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Writer.SaveRecord(ctx, "drill", "drills", map[string]any{"version": 2, "passed": true, "private": sealed}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*repository.Repo{tr.Writer, tr.Restorer} {
		if err := who.AppendAudit(ctx, &repository.AuditRecord{Event: "backup", Actor: "test", Host: "db1", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	// B opens the repository and keeps every key it can reach.
	rb := f.open(t, f.b)
	f.bKept = append(f.bKept, f.b, rb.WriterKey().Metadata, decryptKeyObject(t, be, repository.RepositoryKeyObject, f.b))
	return f
}

func (f *rotationFixture) open(t *testing.T, id age.Identity) *repository.Repo {
	t.Helper()
	r, err := repository.OpenRestorer(context.Background(), f.be, []age.Identity{id}, repository.OpenOptions{})
	if err != nil {
		t.Fatalf("open as operator: %v", err)
	}
	return r
}

func decryptKeyObject(t *testing.T, be storage.Backend, name string, id age.Identity) age.Identity {
	t.Helper()
	ct, err := storage.ReadAll(context.Background(), be, name)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := age.Decrypt(bytes.NewReader(ct), id)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(rd)
	k, err := age.ParseX25519Identity(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// restoreAll restores every snapshot and compares it with its input.
func (f *rotationFixture) restoreAll(t *testing.T, r *repository.Repo) {
	t.Helper()
	ctx := context.Background()
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, s := range snaps {
		in, ok := f.inputs[s.ID().String()]
		if !ok {
			continue
		}
		found++
		var out bytes.Buffer
		if _, err := restore.Run(ctx, r, s, &out, restore.Options{}); err != nil {
			t.Fatalf("restore %s: %v", s.ID().Short(), err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("snapshot %s restores to other bytes", s.ID().Short())
		}
		var priv map[string]string
		if err := r.OpenPrivate(s, &priv); err != nil || !strings.HasPrefix(priv["table"], "secret_customers_") {
			t.Fatalf("private part of %s: %v %v", s.ID().Short(), priv, err)
		}
	}
	if found != len(f.inputs) {
		t.Fatalf("%d of %d snapshots listed", found, len(f.inputs))
	}
	rep, err := r.Check(ctx, repository.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
}

// opens returns the objects any of ids decrypts as age files.
func (f *rotationFixture) opens(t *testing.T, ids ...age.Identity) []string {
	t.Helper()
	ctx := context.Background()
	var names []string
	if err := f.be.List(ctx, "", func(fi storage.Info) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	var opened []string
	for _, n := range names {
		b, err := storage.ReadAll(ctx, f.be, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := age.Decrypt(bytes.NewReader(b), ids...); err == nil {
			opened = append(opened, n)
		}
	}
	return opened
}

// TestKeyRotationRemovedOperatorReadsNothing is done-when 9 of the
// repository trust issue: after `key remove B`, `key rotate` and
// `--reencrypt`, nothing in the repository opens with B's identity or with
// any key B could have kept, and every snapshot restores for A.
func TestKeyRotationRemovedOperatorReadsNothing(t *testing.T) {
	for name, be := range map[string]func(*testing.T) storage.Backend{"local": localBackend, "minio": minioBackend} {
		t.Run(name, func(t *testing.T) { testRemovedOperatorReadsNothing(t, be(t)) })
	}
}

func minioBackend(t *testing.T) storage.Backend {
	m := testminio.Server(t)
	be, err := location.Open(context.Background(), "s3://"+m.Bucket(t, false)+"/repo", location.S3Options{
		Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func testRemovedOperatorReadsNothing(t *testing.T, be storage.Backend) {
	ctx := context.Background()
	f := newRotationFixture(t, be)
	ra := f.open(t, f.a)
	if err := ra.SetOperators(ctx, []age.Recipient{f.a.Recipient()}, []string{f.a.Recipient().String()}); err != nil {
		t.Fatal(err)
	}
	oldWriter := ra.WriterKey()
	if got := f.opens(t, f.bKept...); len(got) == 0 {
		t.Fatal("before the rotation B's kept keys should open the data: the test proves nothing")
	}

	rep, err := ra.Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{f.a.Recipient()}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generation != 2 || rep.Carried == 0 || rep.AuditDetail["endorsement"] == "" {
		t.Fatalf("rotate report: %+v", rep)
	}
	newWriter := ra.WriterKey()
	if newWriter.Fingerprint() == oldWriter.Fingerprint() {
		t.Fatal("the writer key did not change")
	}

	// A backup host with the old writer key is refused, naming the rotation.
	var rot *repository.RotatedError
	if _, err := repository.OpenWriter(ctx, f.be, oldWriter); !errors.As(err, &rot) {
		t.Fatalf("old writer key: %v", err)
	}
	// One with the new key lists every snapshot and deduplicates against
	// the packs of generation 1.
	w, err := repository.OpenWriter(ctx, f.be, newWriter)
	if err != nil {
		t.Fatal(err)
	}
	if snaps, err := w.Snapshots(ctx); err != nil || len(snaps) != 3 {
		t.Fatalf("writer listing after rotation: %d %v", len(snaps), err)
	}
	in := append(synth.Bytes(500, 700<<10), synth.Bytes(900, 64<<10)...)
	snap, err := backup.Run(ctx, w, bytes.NewReader(in), backup.Options{Source: "shop", Host: "db1",
		Private: func() any { return map[string]string{"table": "secret_customers_new"} }})
	if err != nil {
		t.Fatal(err)
	}
	if snap.ChunksNew >= snap.ChunksTotal-1 {
		t.Fatalf("no deduplication across the rotation: %d of %d chunks new", snap.ChunksNew, snap.ChunksTotal)
	}
	f.inputs[snap.Snapshot.ID().String()] = in
	// Nothing written after the rotation opens with B's keys.
	for _, name := range f.opens(t, f.bKept...) {
		if strings.HasPrefix(name, "snapshots/"+snap.Snapshot.ID().String()) {
			t.Fatalf("the new snapshot opens with a removed operator's kept keys")
		}
	}
	f.restoreAll(t, f.open(t, f.a))

	rr, err := f.open(t, f.a).Reencrypt(ctx, repository.ReencryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Packs == 0 || rr.Private == 0 || len(rr.Retired) != 1 || rr.OldPacks != 0 {
		t.Fatalf("reencrypt report: %+v (prune %+v)", rr, rr.Prune)
	}
	if got := f.opens(t, f.bKept...); len(got) > 0 {
		t.Fatalf("after re-encryption B's identity or kept keys still open: %v", got)
	}
	if _, err := f.be.Stat(ctx, repository.RepositoryKeyObject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("generation 1's key object is still stored: %v", err)
	}
	f.restoreAll(t, f.open(t, f.a))
	if _, problems, err := ra.AuditLog(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("audit log after rotation: %v %v", problems, err)
	}
	// A second rotation carries the carried objects on.
	ra = f.open(t, f.a)
	if _, err := ra.Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{f.a.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.open(t, f.a).Reencrypt(ctx, repository.ReencryptOptions{}); err != nil {
		t.Fatal(err)
	}
	f.restoreAll(t, f.open(t, f.a))
}

// TestKeyRotationRefusesBusyRepository: a live backup lock stops a
// rotation before anything changes.
func TestKeyRotationRefusesBusyRepository(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture(t, localBackend(t))
	w, err := repository.OpenWriter(ctx, f.be, f.open(t, f.a).WriterKey())
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.AcquireLock(ctx, repository.LockOptions{Host: "db1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	cfgBefore, _ := storage.ReadAll(ctx, f.be, repository.ConfigObject)
	_, err = f.open(t, f.a).Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{f.a.Recipient()}})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("rotation beside a live backup: %v", err)
	}
	if cfgAfter, _ := storage.ReadAll(ctx, f.be, repository.ConfigObject); !bytes.Equal(cfgBefore, cfgAfter) {
		t.Fatal("a refused rotation changed config")
	}
}

// failingBackend fails every Put after the first n, as a process killed
// mid-way would stop writing.
type failingBackend struct {
	storage.Backend
	left atomic.Int64
}

func (b *failingBackend) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	if b.left.Add(-1) < 0 {
		return errors.New("injected: the process died")
	}
	return b.Backend.Put(ctx, name, data, opts)
}

// TestKeyRotationInterrupted stops a rotation and a re-encryption after
// every possible number of writes: the repository always opens and
// restores, and running the command again finishes the job.
func TestKeyRotationInterrupted(t *testing.T) {
	ctx := context.Background()
	for n := int64(0); ; n++ {
		f := newRotationFixture(t, localBackend(t))
		fb := &failingBackend{Backend: f.be}
		fb.left.Store(n)
		r, err := repository.OpenRestorer(ctx, fb, []age.Identity{f.a}, repository.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, rotErr := r.Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{f.a.Recipient()}})
		var reErr error
		if rotErr == nil {
			_, reErr = r.Reencrypt(ctx, repository.ReencryptOptions{})
		}
		// Whatever was written, the repository opens and restores.
		f.restoreAll(t, f.open(t, f.a))
		// Running it again finishes the rotation.
		r2 := f.open(t, f.a)
		if rotErr != nil {
			if _, err := r2.Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{f.a.Recipient()}}); err != nil {
				t.Fatalf("after %d writes: rotate again: %v (first: %v)", n, err, rotErr)
			}
		}
		if _, err := r2.Reencrypt(ctx, repository.ReencryptOptions{}); err != nil {
			t.Fatalf("after %d writes: reencrypt again: %v", n, err)
		}
		f.restoreAll(t, f.open(t, f.a))
		if rotErr == nil && reErr == nil {
			return // n writes were enough for both: every earlier stop was tried
		}
	}
}

// TestKeyRotationRemovesOldIndexCaches: once a process of the new key
// generation opens the index, the cache directory of the old generation
// is deleted, unless a process of the old generation still holds it.
func TestKeyRotationRemovesOldIndexCaches(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture(t, localBackend(t))
	root := t.TempDir()
	cached := func(key *repository.WriterKey) *repository.Repo {
		w, err := repository.OpenWriter(ctx, f.be, key)
		if err != nil {
			t.Fatal(err)
		}
		w.SetIndexCache(root)
		ix, err := w.LoadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ix.Close()
		return w
	}
	ra := f.open(t, f.a)
	id := ra.Config().ID
	cached(ra.WriterKey())
	for _, rotation := range []int{2, 3} {
		if _, err := f.open(t, f.a).Rotate(ctx, repository.RotateOptions{Operators: []age.Recipient{f.a.Recipient()}}); err != nil {
			t.Fatal(err)
		}
		old := filepath.Join(root, fmt.Sprintf("%s-g%d", id, rotation-1))
		if rotation == 3 {
			// An old-generation process holding its cache keeps it.
			lock, err := os.OpenFile(filepath.Join(old, "lock"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			cached(f.open(t, f.a).WriterKey())
			if _, err := os.Stat(old); err != nil {
				t.Fatalf("a locked old cache was removed: %v", err)
			}
			lock.Close()
		}
		cached(f.open(t, f.a).WriterKey())
		if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("generation %d's cache is still there after rotation %d: %v", rotation-1, rotation, err)
		}
		if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("%s-g%d", id, rotation))); err != nil {
			t.Fatalf("no cache of the new generation: %v", err)
		}
	}
}
