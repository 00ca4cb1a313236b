package repository

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage/local"
)

func listTestRepo(t *testing.T) *Repo {
	t.Helper()
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(context.Background(), be, InitOptions{Operators: []age.Recipient{id.Recipient()}, OperatorNames: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChunkListBounds: what a writer-key holder can store as a chunk list
// or a snapshot is refused unless it is well formed and adds up.
func TestChunkListBounds(t *testing.T) {
	ctx := context.Background()
	id := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name  string
		plain []byte
		total int
		want  string
	}{
		{"one id", append([]byte(chunkListHeader(0)), id...), 1, ""},
		{"a later generation", append([]byte(chunkListHeader(3)), id...), 1, ""},
		{"a byte too many", append(append([]byte(chunkListHeader(0)), id...), 0), 1, "not 1 to"},
		{"no ids", []byte(chunkListHeader(0)), 0, "not 1 to"},
		{"another header", append([]byte("coffer chunk list v2\n"), id...), 1, "unknown header"},
		{"a generation with a leading zero", append([]byte(chunkListMagic+" 01\n"), id...), 1, "unknown header"},
		{"no header", id, 1, "unknown header"},
		{"more ids than chunks_total", append(append([]byte(chunkListHeader(0)), id...), id...), 1, "more than its 1 chunks"},
		{"fewer ids than chunks_total", append([]byte(chunkListHeader(0)), id...), 2, "hold 1 chunks, the snapshot says 2"},
		{"too many ids", append([]byte(chunkListHeader(0)), bytes.Repeat(id, MaxListIDs+1)...), MaxListIDs + 1, "not 1 to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := listTestRepo(t)
			l, err := r.putMeta(ctx, chunkListKind, chunkListDir, tc.plain, false)
			if err != nil {
				t.Fatal(err)
			}
			s := &Snapshot{Source: "a", Lists: []ID{l}, ChunksTotal: tc.total}
			if _, err := r.SaveSnapshot(ctx, s); err != nil {
				t.Fatal(err)
			}
			loaded, err := r.LoadSnapshot(ctx, s.ID())
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			err = r.SnapshotChunks(ctx, loaded, func(ID) error { n++; return nil })
			switch {
			case tc.want == "" && (err != nil || n != tc.total):
				t.Fatalf("refused a good list: %d ids, %v", n, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), s.ID().Short())):
				t.Fatalf("got %v, want an error naming snapshot %s: %s", err, s.ID().Short(), tc.want)
			}
		})
	}
}

// TestSnapshotVersions: a version 1 snapshot holds ids, a version 2 one
// names lists; mixing them, or a count that disagrees, is refused.
func TestSnapshotVersions(t *testing.T) {
	ctx := context.Background()
	r := listTestRepo(t)
	var c ID
	c[0] = 1
	for _, tc := range []struct {
		name string
		s    Snapshot
		want string
	}{
		{"version 1 with ids", Snapshot{Version: 1, Chunks: []ID{c}, ChunksTotal: 1}, ""},
		{"version 1 short of its total", Snapshot{Version: 1, Chunks: []ID{c}, ChunksTotal: 2}, "chunks_total is 2"},
		{"version 1 with lists", Snapshot{Version: 1, Chunks: []ID{c}, Lists: []ID{c}, ChunksTotal: 1}, "both"},
		{"version 2 with ids", Snapshot{Version: 2, Chunks: []ID{c}, Lists: []ID{c}, ChunksTotal: 1}, "both"},
		{"version 3", Snapshot{Version: 3}, "newer than this coffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := r.saveMeta(ctx, "snapshot", "snapshots", tc.s, false)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.LoadSnapshot(ctx, id)
			if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseChunkList(f *testing.F) {
	f.Add(append([]byte(chunkListHeader(0)), make([]byte, 32)...))
	f.Add(append([]byte(chunkListHeader(2)), make([]byte, 64)...))
	f.Add([]byte(chunkListMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := parseChunkList("chunklists/x", b)
		if err != nil {
			return
		}
		line, _, _ := bytes.Cut(b, []byte{'\n'})
		if len(ids) == 0 || len(ids)%32 != 0 || len(line)+1+len(ids) != len(b) || !strings.HasPrefix(string(line), chunkListMagic) {
			t.Fatalf("accepted %q as %d bytes of ids", b, len(ids))
		}
	})
}
