package repository

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage/local"
)

// hostileRepo is a local repository, its key files for the coffer binary,
// and the repository opened in-process as an attacker holding the writer
// key would open it.
type hostileRepo struct {
	t        *testing.T
	dir, bin string
	env      []string
	r        *Repo
}

func newHostileRepo(t *testing.T) *hostileRepo {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the coffer binary")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "coffer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/coffer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	be, err := local.Open(filepath.Join(dir, "repo"), true)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(ctx, be, InitOptions{Operators: []age.Recipient{id.Recipient()}, OperatorNames: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	wkFile, idFile := filepath.Join(dir, "writer.key"), filepath.Join(dir, "operator.txt")
	if err := os.WriteFile(wkFile, r.WriterKey().Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &hostileRepo{t: t, dir: dir, bin: bin, r: r,
		env: []string{"COFFER_REPO=" + filepath.Join(dir, "repo"), "COFFER_WRITER_KEY_FILE=" + wkFile, "COFFER_IDENTITY_FILE=" + idFile}}
}

type run struct {
	stdout, stderr string
	code           int
	rss            int64 // peak resident set of the child, bytes
	took           time.Duration
}

// coffer runs the binary and measures the child's peak RSS.
func (h *hostileRepo) coffer(stdin []byte, args ...string) run {
	h.t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), h.env...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := run{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			h.t.Fatalf("coffer %v: %v", args, err)
		}
		res.code = cmd.ProcessState.ExitCode()
	}
	res.rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	if strings.Contains(res.stderr, "panic:") {
		h.t.Fatalf("coffer %v panicked:\n%s", args, res.stderr)
	}
	return res
}

// bounded fails unless the run failed fast within 200 MiB, naming objects.
func (h *hostileRepo) bounded(res run, what string, names ...string) {
	h.t.Helper()
	if res.code == 0 {
		h.t.Errorf("%s succeeded on a bomb:\n%s", what, res.stdout)
	}
	if res.rss > 200<<20 {
		h.t.Errorf("%s: peak RSS %d MiB, want under 200 MiB", what, res.rss>>20)
	}
	if res.took > 30*time.Second {
		h.t.Errorf("%s took %s: not failing fast", what, res.took)
	}
	for _, n := range names {
		if !strings.Contains(res.stdout+res.stderr, n) {
			h.t.Errorf("%s does not name %s:\nstdout: %s\nstderr: %s", what, n, res.stdout, res.stderr)
		}
	}
	h.t.Logf("%s: exit %d in %s, peak RSS %d MiB", what, res.code, res.took.Round(time.Millisecond), res.rss>>20)
}

// bombPack stores, with the writer key, a pack holding one blob whose
// frame is given, an index listing it as raw bytes, and a snapshot of
// source that needs it.
func (h *hostileRepo) bombPack(source string, frame []byte, raw uint32, like *Snapshot) string {
	h.t.Helper()
	ctx := context.Background()
	pw, err := h.r.NewPackWriter(new(bytes.Buffer), len(frame))
	if err != nil {
		h.t.Fatal(err)
	}
	chunk := h.r.wk.ChunkHasher().Sum([]byte(source))
	if err := pw.Add(chunk, frame, int(raw)); err != nil {
		h.t.Fatal(err)
	}
	e, ct, err := pw.Finish()
	if err != nil {
		h.t.Fatal(err)
	}
	e.Blobs[0].Raw = raw
	if err := h.r.SavePack(ctx, e, ct); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.r.SaveIndex(ctx, &IndexFile{Packs: []PackEntry{e}}); err != nil {
		h.t.Fatal(err)
	}
	s := *like
	s.Source, s.Time, s.Chunks, s.Lists, s.ChunksTotal, s.Size, s.Private = source, time.Now(), []ID{chunk}, nil, 1, int64(raw), nil
	if _, err := h.r.SaveSnapshot(ctx, &s); err != nil {
		h.t.Fatal(err)
	}
	return PackName(e.ID)
}

// bombMeta stores frame as a metadata object under dir, encrypted to the
// metadata key as sealMeta does. Its name is random: the MAC covers the
// plaintext, which is only checked after decompression, so a valid one
// (which a writer-key holder can compute) changes nothing here.
func (h *hostileRepo) bombMeta(dir string, frame []byte) string {
	h.t.Helper()
	ct, err := encrypt(frame, h.r.wk.Metadata.Recipient())
	if err != nil {
		h.t.Fatal(err)
	}
	name := dir + "/" + sha256ID(frame).String()
	if err := h.r.be.Put(context.Background(), name, ct, h.r.putOptions()); err != nil {
		h.t.Fatal(err)
	}
	return name
}

// TestHostileZstdBombs: a writer-key holder stores packs and metadata that
// decompress to many GiB. Restore and check fail fast, naming the object,
// within 200 MiB; the good source still restores.
func TestHostileZstdBombs(t *testing.T) {
	h := newHostileRepo(t)
	good := bytes.Repeat([]byte("good row\n"), 50000)
	if res := h.coffer(good, "backup", "--source", "good", "--stdin"); res.code != 0 {
		t.Fatalf("backup: %s", res.stderr)
	}
	snap, err := h.r.FindSnapshot(context.Background(), "latest", "good")
	if err != nil {
		t.Fatal(err)
	}
	packs := map[string]string{
		"lying":      h.bombPack("lying", bombFrame(64<<10, 16<<30), 64<<10, snap),
		"undeclared": h.bombPack("undeclared", bombFrame(-1, 16<<30), 64<<10, snap),
		"huge":       h.bombPack("huge", bombFrame(4<<30-1, 4<<30-1), 4<<30-1, snap),
	}
	snapBomb := h.bombMeta("snapshots", bombFrame(-1, 16<<30))
	snapBomb2 := h.bombMeta("snapshots", bombFrame(16<<30, 16<<30))

	res := h.coffer(nil, "restore", "--source", "good", "latest", "--output", filepath.Join(h.dir, "good.out"))
	if res.code != 0 {
		t.Fatalf("restore of the good source: exit %d\n%s", res.code, res.stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(h.dir, "good.out")); !bytes.Equal(got, good) {
		t.Fatal("the good source restored different data")
	}
	for _, n := range []string{snapBomb, snapBomb2} {
		if !strings.Contains(res.stderr, "warning: skipped "+n) {
			t.Errorf("restore does not warn of %s:\n%s", n, res.stderr)
		}
	}
	for source, pack := range packs {
		res := h.coffer(nil, "restore", "--source", source, "latest", "--output", filepath.Join(h.dir, source+".out"))
		h.bounded(res, "restore of "+source, pack)
	}
	res = h.coffer(nil, "check", "--read-data")
	h.bounded(res, "check --read-data", packs["lying"], packs["undeclared"], packs["huge"], snapBomb, snapBomb2)

	res = h.coffer(nil, "snapshots")
	if !strings.Contains(res.stdout, "good") || !strings.Contains(res.stderr, snapBomb) {
		t.Errorf("snapshots does not list the rest and warn:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
	}

	indexBomb := h.bombMeta("index", bombFrame(1<<20, 16<<30))
	h.bounded(h.coffer(nil, "restore", "--source", "good", "latest", "--output", filepath.Join(h.dir, "again.out")), "restore with an index bomb", indexBomb)
	h.bounded(h.coffer(nil, "check"), "check with an index bomb", indexBomb)
}

// TestHostileJunkObjects: objects that are not coffer's, or junk under a
// coffer name, neither stop the other sources' restores nor panic prune.
func TestHostileJunkObjects(t *testing.T) {
	h := newHostileRepo(t)
	ctx := context.Background()
	other := bytes.Repeat([]byte("other row\n"), 20000)
	for _, s := range []struct {
		source string
		data   []byte
	}{{"one", []byte("one\n")}, {"other", other}} {
		if res := h.coffer(s.data, "backup", "--source", s.source, "--stdin"); res.code != 0 {
			t.Fatalf("backup: %s", res.stderr)
		}
	}
	junk := "snapshots/" + sha256ID([]byte("junk")).String()
	for name, data := range map[string]string{
		junk:                 "not an age file",
		"snapshots/junk.txt": "hello",
		"data/.DS_Store":     "finder",
		"data/zz/not-hex":    "stray",
		"index/.DS_Store":    "finder",
	} {
		if err := h.r.be.Put(ctx, name, []byte(data), h.r.putOptions()); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(h.dir, "other.out")
	res := h.coffer(nil, "restore", "--source", "other", "latest", "--output", out)
	if res.code != 0 {
		t.Fatalf("restore latest --source other with junk in snapshots/: exit %d\n%s", res.code, res.stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, other) {
		t.Fatal("restored different data")
	}
	if !strings.Contains(res.stderr, "warning: skipped "+junk) {
		t.Errorf("restore does not warn of %s:\n%s", junk, res.stderr)
	}
	res = h.coffer(nil, "snapshots")
	if !strings.Contains(res.stdout, "one") || !strings.Contains(res.stdout, "other") || !strings.Contains(res.stderr, junk) {
		t.Errorf("snapshots does not list the rest and name the junk:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
	}
	res = h.coffer(nil, "check")
	if res.code == 0 || !strings.Contains(res.stdout, "error: "+junk) {
		t.Errorf("check does not count the junk snapshot as a problem: exit %d\n%s", res.code, res.stdout)
	}
	// Prune refuses a snapshot object it cannot read (it might need packs),
	// but names that are not coffer's are left and reported.
	if err := h.r.be.Delete(ctx, junk); err != nil {
		t.Fatal(err)
	}
	res = h.coffer(nil, "prune")
	if res.code != 0 {
		t.Fatalf("prune with stray names: exit %d\n%s", res.code, res.stderr)
	}
	for _, n := range []string{"data/.DS_Store", "data/zz/not-hex", "snapshots/junk.txt", "index/.DS_Store"} {
		if !strings.Contains(res.stdout, n) {
			t.Errorf("prune does not report %s:\n%s", n, res.stdout)
		}
	}
	if _, err := h.r.be.Stat(ctx, "data/.DS_Store"); err != nil {
		t.Errorf("prune removed a stray object: %v", err)
	}
}
