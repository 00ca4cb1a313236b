package repository_test

import (
	"context"
	"testing"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
)

// TestStatsPerSource: the stored bytes of each source, those only it
// references, and, once a snapshot is forgotten, the bytes no snapshot
// references inside live packs and in dead ones, against the same sums
// worked out from the snapshots' chunk lists and the index.
func TestStatsPerSource(t *testing.T) {
	ctx := context.Background()
	r := pruneRepo(t)
	a := synth.Bytes(40, 8<<20)
	b := append(append([]byte(nil), a[:3<<19]...), synth.Bytes(41, 2<<20)...)
	sa := snap(t, r.Writer, a, "alpha")
	sb := snap(t, r.Writer, b, "beta")
	idx, err := r.Writer.LoadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	set := func(s *repository.Snapshot) map[repository.ID]bool {
		m := map[repository.ID]bool{}
		for _, c := range repotest.Chunks(t, r.Writer, s) {
			m[c] = true
		}
		return m
	}
	ca, cb := set(sa), set(sb)
	size := func(c repository.ID) (repository.PackInfo, int64) {
		p, bl, ok, err := idx.Lookup(c)
		if err != nil || !ok {
			t.Fatalf("chunk %s: %v %v", c.Short(), ok, err)
		}
		return p, int64(bl.Len)
	}
	sum := func(m, not map[repository.ID]bool) (n int64) {
		for c := range m {
			if !not[c] {
				_, l := size(c)
				n += l
			}
		}
		return n
	}
	st, err := r.Writer.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.PerSource || len(st.Sources) != 2 || st.Unreferenced != 0 || st.UnreferencedPacks != 0 {
		t.Fatalf("stats: %+v", st)
	}
	want := []repository.SourceStats{{Stored: sum(ca, nil), Unique: sum(ca, cb)}, {Stored: sum(cb, nil), Unique: sum(cb, ca)}}
	for i, s := range st.Sources {
		if s.Stored != want[i].Stored || s.Unique != want[i].Unique {
			t.Errorf("source %s: stored %d, only it %d; want %d, %d", s.Source, s.Stored, s.Unique, want[i].Stored, want[i].Unique)
		}
	}
	if want[0].Unique == 0 || want[0].Unique == want[0].Stored {
		t.Fatalf("the sources share nothing or everything: %+v", want)
	}

	// alpha's stream is beta's shared start and more: its own chunks share
	// a pack with shared ones where the two meet.
	if err := r.Writer.DeleteSnapshot(ctx, sa.ID()); err != nil {
		t.Fatal(err)
	}
	live := map[repository.ID]bool{}
	for c := range cb {
		p, _ := size(c)
		live[p.ID] = true
	}
	var inLive, deadPacks int64
	dead := map[repository.ID]int64{}
	for c := range ca {
		if cb[c] {
			continue
		}
		p, l := size(c)
		if live[p.ID] {
			inLive += l
		} else {
			dead[p.ID] = p.Size
		}
	}
	for _, s := range dead {
		deadPacks += s
	}
	st, err = r.Writer.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unreferenced != inLive || st.UnreferencedPacks != deadPacks || deadPacks == 0 || inLive == 0 {
		t.Fatalf("after forgetting %s: unreferenced %d in live packs, %d in dead ones; want %d and %d", sa.ID().Short(), st.Unreferenced, st.UnreferencedPacks, inLive, deadPacks)
	}
	t.Logf("unreferenced: %d bytes in live packs, %d in %d dead packs", inLive, deadPacks, len(dead))
}
