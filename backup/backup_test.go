package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
)

func localRepo(t testing.TB) *repotest.Repo {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	return repotest.New(t, be, repository.InitOptions{})
}

func run(t testing.TB, r *repository.Repo, src io.Reader, source string) *backup.Summary {
	t.Helper()
	sum, err := backup.Run(context.Background(), r, src, backup.Options{Source: source, Host: "test", Engine: "stdin", Format: "raw"})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return sum
}

// hashWriter hashes what is restored, so 200 MB need not be held twice.
type hashWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (w *hashWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return w.h.Write(p) }

func restoreHash(t testing.TB, r *repository.Repo, snap *repository.Snapshot) ([]byte, int64) {
	t.Helper()
	hw := &hashWriter{h: sha256.New()}
	if _, err := restore.Run(context.Background(), r, snap, hw, restore.Options{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	return hw.h.Sum(nil), hw.n
}

// RoundTrip backs up size bytes and restores them, comparing digests.
func RoundTrip(t *testing.T, be storage.Backend, size int64) {
	r := repotest.New(t, be, repository.InitOptions{})
	want := sha256.New()
	sum := run(t, r.Writer, io.TeeReader(synth.Dump(1, size), want), "rt")
	if sum.BytesRead != size {
		t.Fatalf("read %d bytes, want %d", sum.BytesRead, size)
	}
	snap, err := r.Restorer.FindSnapshot(context.Background(), "latest", "rt")
	if err != nil {
		t.Fatal(err)
	}
	got, n := restoreHash(t, r.Restorer, snap)
	if n != size || !bytes.Equal(got, want.Sum(nil)) {
		t.Fatalf("restored %d bytes with a different digest; want %d identical bytes", n, size)
	}
	t.Logf("%d MB: %d chunks in %d packs, %d bytes stored", size>>20, sum.ChunksTotal, sum.Packs, sum.BytesStored)
}

func TestRoundTripLocal200MB(t *testing.T) {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	RoundTrip(t, be, 200<<20)
}

func TestRoundTripEdgeSizes(t *testing.T) {
	for _, size := range []int64{0, 1, 4095, 64 << 10, 3<<20 + 17} {
		be, err := local.Open(t.TempDir(), true)
		if err != nil {
			t.Fatal(err)
		}
		RoundTrip(t, be, size)
	}
}

func TestDedup(t *testing.T) {
	const size = 100 << 20
	r := localRepo(t)
	data := synth.Bytes(7, size)
	first := run(t, r.Writer, bytes.NewReader(data), "db")

	again := run(t, r.Writer, bytes.NewReader(data), "db")
	if again.BytesStored > size/1000 || again.ChunksNew != 0 {
		t.Errorf("unchanged stream stored %d bytes (%d new chunks); want almost nothing", again.BytesStored, again.ChunksNew)
	}

	changed := synth.Edit(data, 99, 20, 0.01)
	edited := run(t, r.Writer, bytes.NewReader(data), "db")
	t.Logf("first night %d bytes stored in %d packs; unchanged %d; after 20 edits (%d bytes changed) %d bytes (%.1f%%) in %d packs",
		first.BytesStored, first.Packs, again.BytesStored, changed, edited.BytesStored, 100*float64(edited.BytesStored)/size, edited.Packs)
	if edited.BytesStored >= size/10 {
		t.Errorf("after 1%% edits the backup stored %d bytes, want < 10%% of %d", edited.BytesStored, size)
	}
	if edited.Packs > 4 {
		t.Errorf("an edited night wrote %d packs; the packer should keep objects per night few", edited.Packs)
	}
	got, _ := restoreHash(t, r.Restorer, edited.Snapshot)
	if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Fatal("restored edited stream differs")
	}
}

// TestWriteOnly plants a marker in the input and searches every stored byte
// for it; with the writer key alone, restore and a data check must fail.
func TestWriteOnly(t *testing.T) {
	ctx := context.Background()
	r := localRepo(t)
	marker := []byte("MARKER-7f3a9c1e-customer-secret-4111111111111111")
	var in bytes.Buffer
	for i := 0; i < 3000; i++ {
		in.WriteString(synth.Row(3, int64(i)))
		if i%500 == 0 {
			in.Write(marker)
		}
	}
	sum := run(t, r.Writer, &in, "marker")

	if _, err := restore.Run(ctx, r.Writer, sum.Snapshot, io.Discard, restore.Options{}); err == nil {
		t.Fatal("restore with the writer key alone succeeded")
	}
	if _, err := r.Writer.Check(ctx, repository.CheckOptions{ReadData: true}); err == nil {
		t.Fatal("check --read-data with the writer key alone succeeded")
	}
	n := 0
	err := r.Backend.List(ctx, "", func(i storage.Info) error {
		b, err := storage.ReadAll(ctx, r.Backend, i.Name)
		if err != nil {
			return err
		}
		n++
		for _, needle := range [][]byte{marker, marker[:16], []byte("4111111111111111")} {
			if bytes.Contains(b, needle) {
				t.Errorf("%s contains plaintext %q", i.Name, needle)
			}
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("searched %d objects: %v", n, err)
	}
}

// TestDedupWithinStreamCached: a stream that repeats itself, backed up
// with the index cache, stores each distinct chunk exactly once: the
// chunks of packs already stored are found in the index (where the
// uploader moves them), those still in flight in the backup's own set.
func TestDedupWithinStreamCached(t *testing.T) {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
	r.Writer.SetIndexCache(t.TempDir())
	a := synth.Bytes(11, 12<<20)
	data := append(append(append([]byte{}, a...), a...), a...)
	first := run(t, r.Writer, bytes.NewReader(data), "db")
	distinct := map[repository.ID]bool{}
	for _, c := range repotest.Chunks(t, r.Writer, first.Snapshot) {
		distinct[c] = true
	}
	if first.ChunksNew != len(distinct) || first.ChunksTotal < 2*len(distinct) {
		t.Fatalf("%d chunks, %d distinct, %d stored: want each distinct chunk stored once", first.ChunksTotal, len(distinct), first.ChunksNew)
	}
	again := run(t, r.Writer, bytes.NewReader(data), "db")
	if again.ChunksNew != 0 {
		t.Fatalf("the same stream again stored %d chunks", again.ChunksNew)
	}
	got, _ := restoreHash(t, r.Restorer, again.Snapshot)
	if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Fatal("restored stream differs")
	}
}

// TestChunkOrderWithManyWorkers: with more workers than cores, chunks are
// hashed out of order; the chunk lists must hold them in stream order, and
// in several lists.
func TestChunkOrderWithManyWorkers(t *testing.T) {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{Chunker: repository.ChunkerParams{Min: 512, AvgBits: 10, Max: 8192}})
	in := synth.Bytes(21, 8<<20)
	sum, err := backup.Run(context.Background(), r.Writer, bytes.NewReader(in), backup.Options{
		Source: "order", Workers: 16, Lists: repository.ListCut{Min: 64, AvgBits: 7, Max: 512}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(repotest.Chunks(t, r.Writer, sum.Snapshot)); n != sum.ChunksTotal || n < 4000 || len(sum.Snapshot.Lists) < 8 {
		t.Fatalf("%d chunks (the snapshot says %d) in %d lists, want thousands in several lists", n, sum.ChunksTotal, len(sum.Snapshot.Lists))
	}
	var out bytes.Buffer
	if _, err := restore.Run(context.Background(), r.Restorer, sum.Snapshot, &out, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatal("the stream restores to other bytes: its chunk ids are out of order")
	}
}
