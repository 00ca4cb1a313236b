package repository_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
)

// countingBackend counts the reads of index objects.
type countingBackend struct {
	storage.Backend
	indexGets atomic.Int64
}

func (c *countingBackend) Get(ctx context.Context, name string, off, n int64, fn func(io.Reader) error) error {
	if strings.HasPrefix(name, "index/") {
		c.indexGets.Add(1)
	}
	return c.Backend.Get(ctx, name, off, n, fn)
}

func (c *countingBackend) Unwrap() storage.Backend { return c.Backend }

// cachedWriter opens r with the writer key and an index cache in dir; the
// warnings go to warns.
func cachedWriter(t *testing.T, be storage.Backend, r *repotest.Repo, dir string, warns *[]string) *repository.Repo {
	t.Helper()
	w, err := repository.OpenWriter(context.Background(), be, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	w.SetIndexCache(dir)
	w.SetWarn(func(err error) { *warns = append(*warns, err.Error()) })
	return w
}

func loadIndex(t *testing.T, r *repository.Repo) *repository.Index {
	t.Helper()
	ix, err := r.LoadIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// sameAnswers fails unless ix answers for every chunk of chunks as ref.
func sameAnswers(t *testing.T, ix, ref *repository.Index, chunks []repository.ID) {
	t.Helper()
	for _, c := range chunks {
		p, b, ok, err := ix.Lookup(c)
		rp, rb, rok, _ := ref.Lookup(c)
		if err != nil || ok != rok || p != rp || b != rb {
			t.Fatalf("chunk %s: cached index says %v %+v %v (%v), the index objects %v %+v %v", c.Short(), p.ID.Short(), b, ok, err, rp.ID.Short(), rb, rok)
		}
	}
}

// TestIndexCacheIncremental: the cache reads each index object once, adds
// the objects written since, and forgets what a prune superseded (a
// stale "stored" would make a backup skip a chunk whose pack is gone).
func TestIndexCacheIncremental(t *testing.T) {
	ctx := context.Background()
	r := pruneRepo(t)
	cb := &countingBackend{Backend: r.Backend}
	var warns []string
	w := cachedWriter(t, cb, r, t.TempDir(), &warns)
	a, b := synth.Bytes(1, 6<<20), synth.Bytes(2, 6<<20)
	sa := snap(t, w, a, "a")
	ca := repotest.Chunks(t, r.Writer, sa)
	if got := cb.indexGets.Load(); got != 0 {
		t.Fatalf("a backup into an empty repository read %d index objects", got)
	}
	ix := loadIndex(t, w)
	sameAnswers(t, ix, loadIndex(t, r.Writer), ca)
	if got := cb.indexGets.Load(); got != 1 {
		t.Fatalf("the first load read %d index objects, want 1", got)
	}
	loadIndex(t, w)
	if got := cb.indexGets.Load(); got != 1 {
		t.Fatalf("a second load read %d index objects in all, want still 1", got)
	}
	sb := snap(t, w, b, "b")
	cb2 := repotest.Chunks(t, r.Writer, sb)
	ix = loadIndex(t, w)
	if got := cb.indexGets.Load(); got != 2 {
		t.Fatalf("after a second backup the loads read %d index objects in all, want 2", got)
	}
	ref := loadIndex(t, r.Writer)
	sameAnswers(t, ix, ref, ca)
	sameAnswers(t, ix, ref, cb2)
	if len(ix.Files()) != 2 {
		t.Fatalf("files %v", ix.Files())
	}

	if err := w.DeleteSnapshot(ctx, sa.ID()); err != nil {
		t.Fatal(err)
	}
	if rep := prune(t, w); !rep.Swept || rep.Deleted == 0 {
		t.Fatalf("prune: %+v", rep)
	}
	ix = loadIndex(t, w)
	ref = loadIndex(t, r.Writer)
	sameAnswers(t, ix, ref, ca) // gone now, for both
	sameAnswers(t, ix, ref, cb2)
	gone := 0
	for _, c := range ca {
		if ok, _ := ix.Has(c); !ok {
			gone++
		}
	}
	if gone == 0 {
		t.Fatal("the prune deleted nothing of a's that the test could miss")
	}
	mustRestore(t, r.Restorer, sb, b)
	if len(warns) != 0 {
		t.Fatalf("warnings: %v", warns)
	}
}

// cacheFiles returns the cache's directory and its manifest's runs.
func cacheFiles(t *testing.T, root string) (string, []struct {
	File           string
	Packs, Records int
}) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(root, "*-g1"))
	if len(dirs) != 1 {
		t.Fatalf("cache directories %v", dirs)
	}
	var m struct {
		Runs []struct {
			File           string
			Packs, Records int
		}
	}
	b, err := os.ReadFile(filepath.Join(dirs[0], "manifest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m.Runs) == 0 {
		t.Fatalf("manifest: %v %s", err, b)
	}
	return dirs[0], m.Runs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	f.ReadAt(b[:], off)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// TestIndexCacheTampered: a cache altered, truncated or planted is never
// believed: the load or the lookup that meets it fails its check, the
// user is warned, and the cache is rebuilt from the index objects.
func TestIndexCacheTampered(t *testing.T) {
	const block = 4096
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir, run string, packs, records int)
	}{
		{"manifest", func(t *testing.T, dir, _ string, _, _ int) {
			b, _ := os.ReadFile(filepath.Join(dir, "manifest"))
			os.WriteFile(filepath.Join(dir, "manifest"), []byte(strings.Replace(string(b), `"records":`, `"records":1`, 1)), 0o600)
		}},
		{"pack table", func(t *testing.T, _, run string, _, _ int) { flipByte(t, run, 40) }},
		{"record block", func(t *testing.T, _, run string, packs, _ int) {
			flipByte(t, run, int64((packs+71)/72)*block+100)
		}},
		{"forged record", func(t *testing.T, _, run string, packs, _ int) {
			// The first record's chunk id becomes another: the block's MAC
			// no longer matches.
			flipByte(t, run, int64((packs+71)/72)*block+31)
		}},
		{"sparse table", func(t *testing.T, _, run string, _, _ int) {
			fi, _ := os.Stat(run)
			flipByte(t, run, fi.Size()-block+3)
		}},
		{"truncated", func(t *testing.T, _, run string, _, _ int) {
			fi, _ := os.Stat(run)
			os.Truncate(run, fi.Size()-block)
		}},
		{"planted from another repository", func(t *testing.T, dir, _ string, _, _ int) {
			other := pruneRepo(t)
			var warns []string
			root := t.TempDir()
			ow := cachedWriter(t, other.Backend, other, root, &warns)
			snap(t, ow, synth.Bytes(5, 2<<20), "x")
			loadIndex(t, ow)
			odir, _ := cacheFiles(t, root)
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			oents, _ := os.ReadDir(odir)
			for _, e := range oents {
				b, _ := os.ReadFile(filepath.Join(odir, e.Name()))
				os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pruneRepo(t)
			root := t.TempDir()
			var warns []string
			w := cachedWriter(t, r.Backend, r, root, &warns)
			s := snap(t, w, synth.Bytes(3, 4<<20), "a")
			ref := loadIndex(t, r.Writer)
			sameAnswers(t, loadIndex(t, w), ref, repotest.Chunks(t, r.Writer, s))
			dir, runs := cacheFiles(t, root)
			tc.tamper(t, dir, filepath.Join(dir, runs[0].File), runs[0].Packs, runs[0].Records)

			ix, err := w.LoadIndex(context.Background())
			if err != nil {
				t.Fatalf("load with a tampered cache: %v", err)
			}
			failed := 0
			for _, c := range repotest.Chunks(t, r.Writer, s) {
				p, b, ok, err := ix.Lookup(c)
				if err != nil {
					failed++
					continue
				}
				rp, rb, rok, _ := ref.Lookup(c)
				if ok != rok || p != rp || b != rb {
					t.Fatalf("chunk %s: a tampered cache answered %v %+v %v, the index objects %v %+v %v", c.Short(), p.ID.Short(), b, ok, rp.ID.Short(), rb, rok)
				}
			}
			ix.Close()
			if len(warns) == 0 || !strings.Contains(strings.Join(warns, "\n"), "index cache") {
				t.Fatalf("no warning of the tampered cache (lookups failed: %d): %v", failed, warns)
			}
			// The next load rebuilds it.
			warns = nil
			sameAnswers(t, loadIndex(t, w), ref, repotest.Chunks(t, r.Writer, s))
			if len(warns) != 0 {
				t.Fatalf("warnings after the rebuild: %v", warns)
			}
		})
	}
}

// TestIndexCacheDirRefused: a cache directory that another user owns or
// may write is not used (the index is kept in memory) and the user is
// told; nothing is read from or written to it.
func TestIndexCacheDirRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root, sub string)
	}{
		{"root writable by others", func(t *testing.T, root, _ string) { os.Chmod(root, 0o777) }},
		{"root writable by the group", func(t *testing.T, root, _ string) { os.Chmod(root, 0o770) }},
		{"repository directory readable by others", func(t *testing.T, _, sub string) {
			os.Mkdir(sub, 0o755)
			os.Chmod(sub, 0o755)
		}},
		{"repository directory a symlink", func(t *testing.T, root, sub string) {
			os.Mkdir(filepath.Join(root, "elsewhere"), 0o700)
			os.Symlink(filepath.Join(root, "elsewhere"), sub)
		}},
		{"owned by another user", func(t *testing.T, root, _ string) {
			if os.Geteuid() != 0 {
				t.Log("not root: checking ownership needs a directory of another user; this case only runs as root")
				os.Chmod(root, 0o777)
				return
			}
			if err := os.Chown(root, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pruneRepo(t)
			root := filepath.Join(t.TempDir(), "cache")
			os.Mkdir(root, 0o700)
			sub := filepath.Join(root, r.Writer.Config().ID+"-g1")
			tc.setup(t, root, sub)
			var warns []string
			w := cachedWriter(t, r.Backend, r, root, &warns)
			s := snap(t, w, synth.Bytes(4, 2<<20), "a")
			warns = nil
			sameAnswers(t, loadIndex(t, w), loadIndex(t, r.Writer), repotest.Chunks(t, r.Writer, s))
			if len(warns) == 0 || !strings.Contains(warns[0], "index cache") {
				t.Fatalf("warnings: %v", warns)
			}
			if m, _ := filepath.Glob(filepath.Join(root, "*", "manifest")); len(m) != 0 {
				t.Fatalf("a cache was written to a refused directory: %v", m)
			}
		})
	}
}

// TestPruneWritesBoundedIndex: prune's consolidated index is cut into
// objects of at most the bound, of which only the last supersedes; a prune
// killed before that last one leaves an index that finds every chunk.
func TestPruneWritesBoundedIndex(t *testing.T) {
	ctx := context.Background()
	defer repository.SetMaxIndexBlobs(40)()
	r := pruneRepo(t)
	data := [][]byte{synth.Bytes(1, 3<<20), synth.Bytes(2, 3<<20), synth.Bytes(3, 3<<20)}
	var snaps []*repository.Snapshot
	for i, d := range data {
		snaps = append(snaps, snap(t, r.Writer, d, string(rune('a'+i))))
	}
	// Killed before the last part: the old objects and some new ones.
	if err := r.Writer.SaveConsolidatedPrefix(ctx); err != nil {
		t.Fatal(err)
	}
	ix := loadIndex(t, r.Writer)
	for i, s := range snaps {
		for _, c := range repotest.Chunks(t, r.Writer, s) {
			if ok, err := ix.Has(c); !ok || err != nil {
				t.Fatalf("after a prune killed mid-index, chunk %s of snapshot %d: %v %v", c.Short(), i, ok, err)
			}
		}
	}
	mustCheck(t, r.Restorer)

	if err := r.Writer.DeleteSnapshot(ctx, snaps[0].ID()); err != nil {
		t.Fatal(err)
	}
	if rep := prune(t, r.Writer); !rep.Swept {
		t.Fatalf("prune: %+v", rep)
	}
	ids, err := r.Writer.ListIDs(ctx, "index")
	if err != nil {
		t.Fatal(err)
	}
	superseding := 0
	for _, id := range ids {
		f, err := r.Writer.LoadIndexFile(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range f.Packs {
			n += len(p.Blobs)
		}
		if n > 40 && len(f.Packs) > 1 {
			t.Fatalf("index object %s lists %d blobs in %d packs, more than the bound of 40", id.Short(), n, len(f.Packs))
		}
		if len(f.Supersedes) > 0 {
			superseding++
		}
	}
	if len(ids) < 2 || superseding != 1 {
		t.Fatalf("%d index objects after prune, %d of them superseding: want several, one", len(ids), superseding)
	}
	for i, s := range snaps[1:] {
		mustRestore(t, r.Restorer, s, data[i+1])
	}
	mustCheck(t, r.Restorer)
}

// TestIndexWithoutCache: without a cache directory the index is built in
// unlinked temporary files: it answers as the index objects say, and
// nothing is left in the temporary directory.
func TestIndexWithoutCache(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r := pruneRepo(t)
	s := snap(t, r.Writer, synth.Bytes(6, 4<<20), "a")
	ix := loadIndex(t, r.Writer)
	for _, c := range repotest.Chunks(t, r.Writer, s) {
		if ok, err := ix.Has(c); !ok || err != nil {
			t.Fatalf("chunk %s: %v %v", c.Short(), ok, err)
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("left in the temporary directory: %v", ents)
	}
}
