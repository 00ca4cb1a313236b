package repository_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
)

// walSegment is a 16 MiB segment as PostgreSQL writes them: records at
// the start, zeroes after.
func walSegment(seed uint64) []byte {
	seg := make([]byte, 16<<20)
	copy(seg, synth.Bytes(seed, 3<<20))
	return seg
}

func TestWALPushFetch(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, localBackend(t), repository.InitOptions{})
	seg := walSegment(1)
	const name = "000000010000000000000003"
	if stored, err := r.Writer.PushWAL(ctx, name, seg); err != nil || !stored {
		t.Fatalf("push: %v %v", stored, err)
	}
	// PostgreSQL retries after a crash: the same content succeeds, once.
	if stored, err := r.Writer.PushWAL(ctx, name, seg); err != nil || stored {
		t.Fatalf("second push of the same content: stored=%v %v", stored, err)
	}
	// Other content under the same name is refused loudly.
	var conflict *repository.WALConflictError
	if _, err := r.Writer.PushWAL(ctx, name, walSegment(2)); !errors.As(err, &conflict) {
		t.Fatalf("push of other content: %v", err)
	}
	files, foreign, err := r.Writer.WALFiles(ctx)
	if err != nil || len(files) != 1 || len(foreign) != 0 {
		t.Fatalf("archive: %v %v %v", files, foreign, err)
	}
	got, err := r.Restorer.FetchWAL(ctx, name)
	if err != nil || !bytes.Equal(got, seg) {
		t.Fatalf("fetch: %v (equal %v)", err, bytes.Equal(got, seg))
	}
	if _, err := r.Writer.FetchWAL(ctx, name); !errors.Is(err, repository.ErrNeedIdentity) {
		t.Fatalf("fetch with the writer key: %v", err)
	}
	if _, err := r.Restorer.FetchWAL(ctx, "000000010000000000000004"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("fetch of a segment not archived: %v", err)
	}
	if _, err := r.Writer.PushWAL(ctx, "../../etc/passwd", seg); err == nil {
		t.Fatal("a path was taken for a WAL file name")
	}
}

// TestHostileWALObjects: whoever can write the storage knows the
// repository's public key, so they can encrypt WAL of their choosing to it;
// a damaged object, a forged one under the real name, and a zstd bomb are
// each refused by name, and never handed to PostgreSQL.
func TestHostileWALObjects(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, localBackend(t), repository.InitOptions{})
	const name = "000000010000000000000007"
	if _, err := r.Writer.PushWAL(ctx, name, walSegment(7)); err != nil {
		t.Fatal(err)
	}
	files, _, _ := r.Writer.WALFiles(ctx)
	obj := files[0].Name()
	original, err := storage.ReadAll(ctx, r.Backend, obj)
	if err != nil {
		t.Fatal(err)
	}
	recipient, err := age.ParseX25519Recipient(r.Writer.Config().Recipient)
	if err != nil {
		t.Fatal(err)
	}
	sealTo := func(plain []byte) []byte {
		var buf bytes.Buffer
		w, _ := age.Encrypt(&buf, recipient)
		w.Write(plain)
		w.Close()
		return buf.Bytes()
	}
	enc, _ := zstd.NewWriter(nil)
	bomb := rleBomb(repository.MaxWALFile + 128<<10)
	damaged := bytes.Clone(original)
	damaged[len(damaged)/2] ^= 1
	for what, content := range map[string][]byte{
		"damaged":   damaged,
		"forged":    sealTo(enc.EncodeAll(walSegment(8), nil)),
		"zstd bomb": sealTo(bomb),
		"not zstd":  sealTo([]byte("DROP TABLE customers")),
	} {
		if err := r.Backend.Put(ctx, obj, content, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := r.Restorer.FetchWAL(ctx, name)
		var ce *repository.CorruptError
		if got != nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), obj) {
			t.Fatalf("%s WAL object: got %d bytes, %v", what, len(got), err)
		}
	}
}

// rleBomb is a zstd frame of RLE blocks, 4 bytes per 128 KiB, that
// declares and holds n zero bytes (n a multiple of 128 KiB).
func rleBomb(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0} // magic; single segment, 8-byte content size
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	const block = 128 << 10
	for left := n; left > 0; left -= block {
		h := uint32(block)<<3 | 1<<1 // RLE block of 128 KiB
		if left == block {
			h |= 1 // last
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// TestPruneWAL: prune deletes the WAL no base backup needs, and only that:
// what comes before the oldest physical base backup's first segment.
func TestPruneWAL(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t, localBackend(t), repository.InitOptions{})
	seg := func(n int) string { return fmt.Sprintf("0000000100000000%08X", n) }
	for n := 1; n <= 6; n++ {
		if _, err := r.Writer.PushWAL(ctx, seg(n), []byte(fmt.Sprint("segment ", n))); err != nil {
			t.Fatal(err)
		}
	}
	r.Writer.PushWAL(ctx, "00000002.history", []byte("1\t0/5000000\tno recovery target specified\n"))
	base := func(n int) repository.ID {
		s := &repository.Snapshot{Source: "pg", Engine: "postgres-physical", Time: time.Now(),
			Physical: &repository.PhysicalInfo{SystemIdentifier: "7310000000000000001", Timeline: 1, StartWAL: seg(n),
				StartLSN: fmt.Sprintf("0/%X", n<<24), StopLSN: fmt.Sprintf("0/%X", n<<24+0x100), WALSegmentSize: 16 << 20}}
		id, err := r.Writer.SaveSnapshot(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	older, _ := base(3), base(5)
	left := func() []string {
		files, _, err := r.Writer.WALFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.File)
		}
		return names
	}
	if rep, err := r.Writer.Prune(ctx, repository.PruneOptions{DryRun: true}); err != nil || rep.WALCandidates != 2 || len(left()) != 7 {
		t.Fatalf("dry run: %+v %v %v", rep, err, left())
	}
	if _, err := r.Writer.Prune(ctx, repository.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(left(), " "); got != seg(3)+" "+seg(4)+" "+seg(5)+" "+seg(6)+" 00000002.history" {
		t.Fatalf("after prune: %s", got)
	}
	if err := r.Writer.DeleteSnapshot(ctx, older); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Writer.Prune(ctx, repository.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(left(), " "); got != seg(5)+" "+seg(6)+" 00000002.history" {
		t.Fatalf("after forgetting the older base backup: %s", got)
	}
}

// TestHostilePhysicalInfo: a backup host writes what a physical snapshot
// says of its WAL; names that are not segments (a path, terminal control),
// locations that are not LSNs and absurd sizes are refused before any use.
func TestHostilePhysicalInfo(t *testing.T) {
	good := repository.PhysicalInfo{SystemIdentifier: "7310000000000000001", Timeline: 1, StartWAL: "000000010000000000000002",
		StartLSN: "0/2000028", StopLSN: "0/2000138", WALSegmentSize: 16 << 20}
	if _, err := good.Check("snapshots/x"); err != nil {
		t.Fatal(err) // an old snapshot: no superuser, no version
	}
	good.Superuser, good.ServerVersionNum = "postgres", 150004
	if _, err := good.Check("snapshots/x"); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(p *repository.PhysicalInfo){
		"short start":       func(p *repository.PhysicalInfo) { p.StartWAL = "0" },
		"path start":        func(p *repository.PhysicalInfo) { p.StartWAL = "../../../../etc/passwd00" },
		"other timeline":    func(p *repository.PhysicalInfo) { p.Timeline = 2 },
		"terminal control":  func(p *repository.PhysicalInfo) { p.StopLSN = "0/1\x1b]0;owned\x07" },
		"segment size":      func(p *repository.PhysicalInfo) { p.WALSegmentSize = 3 },
		"system identifier": func(p *repository.PhysicalInfo) { p.SystemIdentifier = "; DROP" },
		"start location":    func(p *repository.PhysicalInfo) { p.StartLSN = "" },
		"superuser option":  func(p *repository.PhysicalInfo) { p.Superuser = "-c" },
		"superuser quote":   func(p *repository.PhysicalInfo) { p.Superuser = `x" peer\nlocal all all trust` },
		"superuser space":   func(p *repository.PhysicalInfo) { p.Superuser = "a b" },
		"superuser control": func(p *repository.PhysicalInfo) { p.Superuser = "a\x1b[2J" },
		"superuser long":    func(p *repository.PhysicalInfo) { p.Superuser = strings.Repeat("a", 64) },
		"version":           func(p *repository.PhysicalInfo) { p.ServerVersionNum = -1 },
		"version huge":      func(p *repository.PhysicalInfo) { p.ServerVersionNum = 1 << 40 },
	} {
		p := good
		edit(&p)
		var ce *repository.CorruptError
		if _, err := p.Check("snapshots/x"); !errors.As(err, &ce) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestHostileTablespaceList: the tablespaces a physical snapshot lists
// are the backup host's word: oids that are not user oids or repeat,
// names too long or repeated, locations that are relative, hold "..",
// control characters or are too long, and too many entries are refused,
// naming the snapshot; a JSON oid that is not a number does not load.
func TestHostileTablespaceList(t *testing.T) {
	ts := func(oid uint32, name, loc string) repository.Tablespace {
		return repository.Tablespace{OID: oid, Name: name, Location: loc}
	}
	good := repository.PhysicalInfo{SystemIdentifier: "7310000000000000001", Timeline: 1, StartWAL: "000000010000000000000002",
		StartLSN: "0/2000028", StopLSN: "0/2000138", WALSegmentSize: 16 << 20,
		Tablespaces: []repository.Tablespace{ts(16390, "fast", "/srv/fast"), ts(16391, "", "/srv/b c")}}
	if _, err := good.Check("snapshots/x"); err != nil {
		t.Fatal(err)
	}
	many := make([]repository.Tablespace, 1001)
	for i := range many {
		many[i] = ts(uint32(16384+i), "", "/t")
	}
	for name, list := range map[string][]repository.Tablespace{
		"system oid":      {ts(1663, "pg_default", "/srv/a")},
		"zero oid":        {ts(0, "a", "/srv/a")},
		"duplicate oid":   {ts(16390, "a", "/srv/a"), ts(16390, "b", "/srv/b")},
		"duplicate name":  {ts(16390, "a", "/srv/a"), ts(16391, "a", "/srv/b")},
		"long name":       {ts(16390, strings.Repeat("n", 64), "/srv/a")},
		"nul name":        {ts(16390, "a\x00b", "/srv/a")},
		"relative":        {ts(16390, "a", "srv/a")},
		"dot-dot":         {ts(16390, "a", "/srv/../etc")},
		"dot-dot only":    {ts(16390, "a", "../../etc")},
		"root":            {ts(16390, "a", "/")},
		"empty":           {ts(16390, "a", "")},
		"control":         {ts(16390, "a", "/srv/\x1b]0;owned\x07")},
		"newline":         {ts(16390, "a", "/srv/a\n16391 /etc")},
		"long location":   {ts(16390, "a", "/"+strings.Repeat("l", 1024))},
		"too many":        many,
		"trailing slash":  {ts(16390, "a", "/srv/a/")},
		"double slash":    {ts(16390, "a", "/srv//a")},
		"dot":             {ts(16390, "a", "/srv/./a")},
		"second is wrong": {ts(16390, "a", "/srv/a"), ts(16391, "b", "b")},
	} {
		p := good
		p.Tablespaces = list
		var ce *repository.CorruptError
		if _, err := p.Check("snapshots/x"); !errors.As(err, &ce) || ce.Object != "snapshots/x" {
			t.Errorf("%s: %v", name, err)
		}
	}
	var p repository.PhysicalInfo
	if err := json.Unmarshal([]byte(`{"tablespaces": [{"oid": "../../etc", "name": "a", "location": "/a"}]}`), &p); err == nil {
		t.Error("an oid that is not a number was decoded")
	}
}
