package restore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage/local"
)

type fixture struct {
	*repotest.Repo
	root string
}

func newFixture(t *testing.T) *fixture {
	root := filepath.Join(t.TempDir(), "repo")
	be, err := local.Open(root, true)
	if err != nil {
		t.Fatal(err)
	}
	// Small packs, so that a stream of a few MiB spans several.
	return &fixture{Repo: repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20}), root: root}
}

// snapshot backs up in as a snapshot of engine with the given parts.
func (f *fixture) snapshot(t *testing.T, in []byte, engineName string, parts ...engine.Part) *repository.Snapshot {
	t.Helper()
	var private func() any
	if engineName != "stdin" {
		private = func() any { return engine.Report{Parts: parts} }
	}
	sum, err := backup.Run(context.Background(), f.Writer, bytes.NewReader(in), backup.Options{Source: "shop", Engine: engineName, Format: "test", Private: private})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Snapshot
}

func (f *fixture) restore(snap *repository.Snapshot, rg *restore.Range) ([]byte, *restore.Summary, error) {
	var out bytes.Buffer
	sum, err := restore.Run(context.Background(), f.Restorer, snap, &out, restore.Options{Range: rg})
	return out.Bytes(), sum, err
}

// serverParts cuts n bytes into the parts of a PostgreSQL server's dump.
func serverParts(n int64, dbs ...string) []engine.Part {
	parts := []engine.Part{{Name: "globals.sql", Size: 70_001}}
	off := parts[0].Size
	for i, db := range dbs {
		size := (n - off) / int64(len(dbs)-i)
		parts = append(parts, engine.Part{Name: db + ".pgdump", Offset: off, Size: size})
		off += size
	}
	return parts
}

// TestRange: a range restores exactly its bytes, reading only the chunks
// that hold them.
func TestRange(t *testing.T) {
	f := newFixture(t)
	in := synth.Bytes(3, 6<<20)
	parts := serverParts(int64(len(in)), "a", "b")
	snap := f.snapshot(t, in, "postgres", parts...)
	n := int64(len(in))
	for _, rg := range []restore.Range{
		{0, 0}, {0, 1}, {0, n}, {n - 1, 1}, {n, 0}, {12345, 678901}, {65535, 2}, {1 << 20, 3 << 20},
		{parts[1].Offset, parts[1].Size}, {parts[2].Offset, parts[2].Size},
	} {
		got, sum, err := f.restore(snap, &rg)
		if err != nil {
			t.Fatalf("range %+v: %v", rg, err)
		}
		if !bytes.Equal(got, in[rg.Offset:rg.Offset+rg.Length]) || sum.Bytes != rg.Length {
			t.Fatalf("range %+v: got %d bytes that differ from the stream's", rg, len(got))
		}
		if rg.Length <= n/4 && sum.Chunks > snap.ChunksTotal/2 {
			t.Errorf("range %+v read %d of %d chunks", rg, sum.Chunks, snap.ChunksTotal)
		}
	}
	for _, rg := range []restore.Range{{-1, 2}, {0, n + 1}, {n, 1}, {5, -1}} {
		if _, _, err := f.restore(snap, &rg); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("range %+v: %v, want an error", rg, err)
		}
	}
}

// TestRangeSkipsPacks: the packs that hold nothing of a range are not
// read (here: deleted), and a damaged chunk inside the range is refused.
func TestRangeSkipsPacks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	in := synth.Bytes(4, 6<<20)
	parts := serverParts(int64(len(in)), "a")
	snap := f.snapshot(t, in, "postgres", parts...)
	idx, err := f.Restorer.LoadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The packs that hold the globals part.
	need := map[repository.ID]bool{}
	var pos int64
	for _, id := range repotest.Chunks(t, f.Writer, snap) {
		p, b, _, _ := idx.Lookup(id)
		if pos < parts[0].Size {
			need[p.ID] = true
		}
		pos += int64(b.Raw)
	}
	deleted := 0
	for _, id := range repotest.Chunks(t, f.Writer, snap) {
		p, _, _, _ := idx.Lookup(id)
		if !need[p.ID] {
			if err := f.Backend.Delete(ctx, repository.PackName(p.ID)); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if deleted == 0 {
		t.Fatal("every pack holds part of the globals: the test proves nothing")
	}
	got, _, err := f.restore(snap, restore.PartRange(&parts[0]))
	if err != nil {
		t.Fatalf("restore of the globals with the other packs gone: %v", err)
	}
	if !bytes.Equal(got, in[:parts[0].Size]) {
		t.Fatal("the globals part differs")
	}
	if _, _, err := f.restore(snap, nil); err == nil {
		t.Fatal("the whole stream restored with packs missing")
	}
	// Flipped bytes all over the packs the range needs (past the age
	// header, so that it is the chunks that fail).
	for id := range need {
		path := filepath.Join(f.root, filepath.FromSlash(repository.PackName(id)))
		b, _ := os.ReadFile(path)
		for i := 1024; i < len(b); i += 8192 {
			b[i] ^= 1
		}
		os.WriteFile(path, b, 0o600)
	}
	_, _, err = f.restore(snap, restore.PartRange(&parts[0]))
	var ce *repository.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("restore of a damaged range: %v, want a CorruptError", err)
	}
}

func TestOutputPart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	in := synth.Bytes(5, 300_000)
	n := int64(len(in))
	one := f.snapshot(t, in, "postgres", serverParts(n, "shop")...)
	two := f.snapshot(t, in, "postgres", serverParts(n, "shop", "crm")...)
	my := f.snapshot(t, in, "mysql", engine.Part{Name: "shop.sql", Size: n})
	raw := f.snapshot(t, in, "stdin")
	sq := f.snapshot(t, in, "sqlite")
	bad := f.snapshot(t, in, "postgres", engine.Part{Name: "globals.sql", Size: 10}, engine.Part{Name: "x.pgdump", Offset: 11, Size: n - 11})
	short := f.snapshot(t, in, "postgres", engine.Part{Name: "globals.sql", Size: 10})

	for _, tc := range []struct {
		name string
		snap *repository.Snapshot
		part string
		want string   // the part chosen, "" for the whole stream
		err  []string // or the error's words
	}{
		{"single postgres database", one, "", "shop.pgdump", nil},
		{"globals", one, "globals.sql", "globals.sql", nil},
		{"database by name", two, "crm", "crm.pgdump", nil},
		{"part by file name", two, "crm.pgdump", "crm.pgdump", nil},
		{"whole stream", two, restore.WholeStream, "", nil},
		{"several databases", two, "", "", []string{"2 databases", "--part", "shop.pgdump", "crm.pgdump", "globals.sql", "--part all"}},
		{"no such part", two, "nope", "", []string{`no part "nope"`, "shop.pgdump", "crm.pgdump", "--part all"}},
		{"mysql", my, "", "shop.sql", nil},
		{"stdin", raw, "", "", nil},
		{"stdin all", raw, restore.WholeStream, "", nil},
		{"stdin part", raw, "shop", "", []string{"no parts", "without --part"}},
		{"sqlite", sq, "", "", nil},
		{"gap in the part list", bad, "", "", []string{"inconsistent"}},
		{"parts shorter than the stream", short, "", "", []string{"hold 10 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := restore.OutputPart(f.Restorer, tc.snap, tc.part)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("chose %+v, want an error", p)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (p == nil) != (tc.want == "") || p != nil && p.Name != tc.want {
				t.Fatalf("chose %+v, want %q", p, tc.want)
			}
			got, _, err := f.restore(tc.snap, restore.PartRange(p))
			if err != nil {
				t.Fatal(err)
			}
			want := in
			if p != nil {
				want = in[p.Offset : p.Offset+p.Size]
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the restored part differs")
			}
		})
	}
	_ = ctx
}
