package repository_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage"
)

// smallLists cuts lists of 4 to 16 ids, so that a few MiB of stream spans
// several lists.
var smallLists = repository.ListCut{Min: 4, AvgBits: 3, Max: 16}

func listSnap(t *testing.T, r *repository.Repo, data []byte, source string) *repository.Snapshot {
	t.Helper()
	sum, err := backup.Run(context.Background(), r, bytes.NewReader(data), backup.Options{Source: source, Host: "h", Lists: smallLists})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Snapshot
}

// storedLists returns the names under chunklists/.
func storedLists(t *testing.T, be storage.Backend) []string {
	t.Helper()
	var names []string
	if err := be.List(context.Background(), "chunklists/", func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestChunkListsDeduplicate: a snapshot names chunk lists instead of
// holding its chunk ids; the same stream gives the same lists, stored
// once; an edited stream shares the lists of its unchanged stretches; and
// forget + prune leaves no list behind.
func TestChunkListsDeduplicate(t *testing.T) {
	for name, mk := range raceRepos(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := mk(t)
			a := synth.Bytes(1, 6<<20)
			s1 := listSnap(t, r.Writer, a, "a")
			loaded, err := r.Restorer.LoadSnapshot(ctx, s1.ID())
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Version != repository.SnapshotVersion || len(loaded.Chunks) != 0 || len(loaded.Lists) < 3 {
				t.Fatalf("snapshot version %d with %d chunk ids and %d lists, want version 2 with lists only", loaded.Version, len(loaded.Chunks), len(loaded.Lists))
			}
			if got := len(repotest.Chunks(t, r.Restorer, loaded)); got != loaded.ChunksTotal {
				t.Fatalf("the lists hold %d chunks, the snapshot %d", got, loaded.ChunksTotal)
			}
			stored := storedLists(t, r.Backend)
			s2 := listSnap(t, r.Writer, a, "a")
			if !slices.Equal(s1.Lists, s2.Lists) || len(storedLists(t, r.Backend)) != len(stored) {
				t.Fatalf("the same stream stored other lists: %d lists, then %d", len(stored), len(storedLists(t, r.Backend)))
			}
			b := slices.Clone(a)
			synth.Edit(b, 7, 1, 0.01)
			s3 := listSnap(t, r.Writer, b, "a")
			shared := 0
			for _, l := range s3.Lists {
				if slices.Contains(s1.Lists, l) {
					shared++
				}
			}
			if shared == 0 || shared == len(s3.Lists) {
				t.Fatalf("an edit in one place: %d of %d lists shared with the unedited stream, want some but not all", shared, len(s3.Lists))
			}
			for _, c := range []struct {
				s    *repository.Snapshot
				want []byte
			}{{s1, a}, {s2, a}, {s3, b}} {
				mustRestore(t, r.Restorer, c.s, c.want)
			}
			if rep := mustCheck(t, r.Restorer); len(rep.UnreferencedLists) != 0 {
				t.Fatalf("check found unreferenced lists: %v", rep.UnreferencedLists)
			}
			// Forget the unedited snapshots: only s3's lists stay.
			for _, s := range []*repository.Snapshot{s1, s2} {
				if err := r.Writer.DeleteSnapshot(ctx, s.ID()); err != nil {
					t.Fatal(err)
				}
			}
			gone := 0
			for _, l := range distinct(s1.Lists) {
				if !slices.Contains(s3.Lists, l) {
					gone++
				}
			}
			if rep := mustCheck(t, r.Restorer); len(rep.UnreferencedLists) != gone {
				t.Fatalf("check after forget: %d unreferenced lists, want %d", len(rep.UnreferencedLists), gone)
			}
			rep := prune(t, r.Writer)
			if !rep.Swept || rep.DeletedLists != gone {
				t.Fatalf("prune: %+v, want %d lists deleted", rep, gone)
			}
			if got := storedLists(t, r.Backend); len(got) != len(distinct(s3.Lists)) {
				t.Fatalf("after prune %d lists are stored, snapshot %s names %d", len(got), s3.ID().Short(), len(distinct(s3.Lists)))
			}
			mustRestore(t, r.Restorer, s3, b)
			if err := r.Writer.DeleteSnapshot(ctx, s3.ID()); err != nil {
				t.Fatal(err)
			}
			prune(t, r.Writer)
			if got := storedLists(t, r.Backend); len(got) != 0 {
				t.Fatalf("forget of every snapshot and prune left lists: %v", got)
			}
			mustCheck(t, r.Restorer)
		})
	}
}

func distinct(ids []repository.ID) []repository.ID {
	s := slices.Clone(ids)
	slices.SortFunc(s, func(a, b repository.ID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(s)
}

// TestChunkListDamage: a missing or replaced list fails the restore and
// check, naming the snapshot and the list.
func TestChunkListDamage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(r *repotest.Repo, victim, other string)
		want   string
	}{
		{"missing", func(r *repotest.Repo, victim, _ string) {
			if err := r.Backend.Delete(ctx, victim); err != nil {
				t.Fatal(err)
			}
		}, "is missing"},
		{"another list under its name", func(r *repotest.Repo, victim, other string) {
			ct, err := storage.ReadAll(ctx, r.Backend, other)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Backend.Delete(ctx, victim); err != nil {
				t.Fatal(err)
			}
			if err := r.Backend.Put(ctx, victim, ct, storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "not authenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pruneRepo(t)
			in := synth.Bytes(3, 4<<20)
			s := listSnap(t, r.Writer, in, "a")
			if len(distinct(s.Lists)) < 2 {
				t.Fatalf("only %d lists", len(s.Lists))
			}
			victim := "chunklists/" + s.Lists[len(s.Lists)/2].String()
			other := "chunklists/" + s.Lists[0].String()
			if other == victim {
				other = "chunklists/" + s.Lists[len(s.Lists)-1].String()
			}
			tc.damage(r, victim, other)
			_, err := restore.Run(ctx, r.Restorer, s, &bytes.Buffer{}, restore.Options{})
			if err == nil || !strings.Contains(err.Error(), s.ID().Short()) || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore with a damaged list: %v, want an error naming the snapshot and %s (%s)", err, victim, tc.want)
			}
			rep, err := r.Restorer.Check(ctx, repository.CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Problems[0].Object != "snapshots/"+s.ID().String() || !strings.Contains(rep.Problems[0].Reason, victim) {
				t.Fatalf("check with a damaged list: %+v", rep.Problems)
			}
			if _, err := r.Writer.Prune(ctx, repository.PruneOptions{}); err == nil || !strings.Contains(err.Error(), victim) {
				t.Fatalf("prune ran with a snapshot whose list is damaged: %v", err)
			}
		})
	}
}

// TestSnapshotChunksStop: ErrStop ends the iteration early without error.
func TestSnapshotChunksStop(t *testing.T) {
	r := pruneRepo(t)
	s := listSnap(t, r.Writer, synth.Bytes(4, 2<<20), "a")
	all := repotest.Chunks(t, r.Writer, s)
	var got []repository.ID
	err := r.Writer.SnapshotChunks(context.Background(), s, func(id repository.ID) error {
		if got = append(got, id); len(got) == 5 {
			return repository.ErrStop
		}
		return nil
	})
	if err != nil || !slices.Equal(got, all[:5]) {
		t.Fatalf("stopped after %d ids (%v), want the first 5", len(got), err)
	}
	boom := errors.New("boom")
	if err := r.Writer.SnapshotChunks(context.Background(), s, func(repository.ID) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("the function's error came back as %v", err)
	}
}
