package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
)

// faultRepo is a local repository with one snapshot of 8 MB.
type faultRepo struct {
	*cli
	root  string
	snap  string
	input []byte
}

func newFaultRepo(t *testing.T) *faultRepo {
	root := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t, root)
	c.init()
	in := synth.Bytes(21, 8<<20)
	b := c.backup(bytes.NewReader(in), "--source", "customers", "--stdin")
	return &faultRepo{cli: c, root: root, snap: b.Snapshot, input: in}
}

// objects returns the repository's object names under dir.
func (f *faultRepo) objects(dir string) []string {
	var names []string
	filepath.WalkDir(filepath.Join(f.root, dir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(f.root, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(names) == 0 {
		f.t.Fatalf("no objects under %s", dir)
	}
	return names
}

// restoreFails restores to a file and requires a failure that leaves no file.
func (f *faultRepo) restoreFails(args ...string) string {
	out := filepath.Join(f.t.TempDir(), "out.sql")
	msg := f.fail(nil, append([]string{"restore", "--output", out}, args...)...)
	if _, err := os.Stat(out); err == nil {
		f.t.Errorf("a failed restore left %s behind", out)
	}
	return msg
}

func TestFaultWrongIdentity(t *testing.T) {
	f := newFaultRepo(t)
	other, _ := age.GenerateX25519Identity()
	p := filepath.Join(t.TempDir(), "someone-else.txt")
	os.WriteFile(p, []byte(other.String()+"\n"), 0o600)
	wrong := &faultRepo{cli: f.with("COFFER_IDENTITY_FILE=" + p), root: f.root}
	msg := wrong.restoreFails(f.snap)
	mustContain(t, "restore with a wrong identity", msg, "keys/repository.age", "operator's identity", p)
}

func TestFaultFlippedByte(t *testing.T) {
	f := newFaultRepo(t)
	pack := f.objects("data")[0]
	path := filepath.Join(f.root, pack)
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0x01
	os.WriteFile(path, b, 0o600)

	mustContain(t, "restore of a damaged pack", f.restoreFails(f.snap), pack, "damaged", "check --read-data")
	r := f.run(nil, "check", "--read-data")
	if r.code != 1 {
		t.Fatalf("check --read-data exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "check --read-data", r.stdout, pack)
}

func TestFaultDeletedPack(t *testing.T) {
	f := newFaultRepo(t)
	pack := f.objects("data")[0]
	os.Remove(filepath.Join(f.root, pack))
	w := f.without("COFFER_IDENTITY_FILE")
	r := w.run(nil, "check")
	if r.code != 1 {
		t.Fatalf("check exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "check", r.stdout, pack, "missing")
	mustContain(t, "restore", f.restoreFails("latest"), pack)
}

func TestFaultTruncatedSnapshot(t *testing.T) {
	f := newFaultRepo(t)
	snap := "snapshots/" + f.snap
	path := filepath.Join(f.root, snap)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)/2], 0o600)
	mustContain(t, "snapshots", f.fail(nil, "snapshots"), snap)
	mustContain(t, "restore", f.restoreFails(f.snap[:12]), snap)
	r := f.run(nil, "check")
	if r.code != 1 {
		t.Fatalf("check exit %d, want 1", r.code)
	}
	mustContain(t, "check", r.stdout, snap)
}

func TestFaultUnknownFormatVersion(t *testing.T) {
	f := newFaultRepo(t)
	path := filepath.Join(f.root, "config")
	b, _ := os.ReadFile(path)
	var cfg map[string]any
	json.Unmarshal(b, &cfg)
	cfg["version"] = 2
	b, _ = json.Marshal(cfg)
	os.WriteFile(path, b, 0o600)
	for _, args := range [][]string{{"snapshots"}, {"restore", "latest"}, {"backup", "--source", "x", "--stdin"}} {
		mustContain(t, strings.Join(args, " "), f.fail(strings.NewReader("x"), args...), "version 2", "upgrade coffer")
	}
}

// TestFaultForgedSnapshot: someone who can write to the storage and knows
// the public keys plants a snapshot; coffer must refuse it.
func TestFaultForgedSnapshot(t *testing.T) {
	f := newFaultRepo(t)
	kb, _ := os.ReadFile(filepath.Join(f.dir, "writer.key"))
	wk, err := repository.ParseWriterKey(kb, "writer.key")
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot naming an existing chunk, as an attacker would build it.
	forged := `{"version":1,"time":"2030-01-01T00:00:00Z","host":"evil","source":"customers","engine":"stdin","format":"raw","size":5,"chunks":[],"digest":"` + strings.Repeat("00", 32) + `"}`
	var z bytes.Buffer
	zw, _ := zstd.NewWriter(&z)
	zw.Write([]byte(forged))
	zw.Close()
	var ct bytes.Buffer
	w, _ := age.Encrypt(&ct, wk.Metadata.Recipient())
	w.Write(z.Bytes())
	w.Close()
	name := "snapshots/" + strings.Repeat("ab", 32)
	os.WriteFile(filepath.Join(f.root, name), ct.Bytes(), 0o600)

	mustContain(t, "restore of the forged snapshot", f.restoreFails("abab"), name, "not authenticated")
	// latest skips it, warning, and restores the newest authentic snapshot.
	out := filepath.Join(t.TempDir(), "latest.out")
	res := f.run(nil, "restore", "--output", out, "latest")
	if res.code != 0 {
		t.Fatalf("restore latest beside a forged snapshot: exit %d\n%s", res.code, res.stderr)
	}
	mustContain(t, "restore latest", res.stderr, "warning: skipped "+name, "not authenticated")
	if got, _ := os.ReadFile(out); !bytes.Equal(got, f.input) {
		t.Error("restore latest did not restore the authentic snapshot")
	}
	r := f.run(nil, "check")
	if r.code != 1 {
		t.Fatalf("check exit %d, want 1", r.code)
	}
	mustContain(t, "check", r.stdout, name)
}

func TestFaultExecFails(t *testing.T) {
	f := newFaultRepo(t)
	for _, tc := range []struct{ cmd, want string }{
		{"seq 1 2000000; echo 'pg_dump: error: connection lost' >&2; exit 3", "exit status 3"},
		{"seq 1 2000000; kill -9 $$", "killed"},
	} {
		msg := f.fail(nil, "backup", "--source", "broken", "--exec", tc.cmd)
		mustContain(t, tc.cmd, msg, tc.want, "no snapshot")
		if !strings.Contains(tc.cmd, "kill") {
			mustContain(t, tc.cmd, msg, "connection lost")
		}
	}
	if rows := f.snapshots("--source", "broken"); len(rows) != 0 {
		t.Fatalf("a failed command left snapshots: %+v", rows)
	}
	f.ok(nil, "check")
}

// TestFaultKilledBackup kills a backup with SIGKILL while it uploads; the
// repository must still check clean and the next backup must complete.
func TestFaultKilledBackup(t *testing.T) {
	f := newFaultRepo(t)
	before := len(f.objects("data"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := f.cmd(ctx, nil, "backup", "--source", "big", "--stdin")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		io.Copy(stdin, synth.Dump(33, 1<<30))
		stdin.Close()
	}()
	for len(f.objects("data")) < before+2 {
		if ctx.Err() != nil {
			t.Fatal("the backup stored no pack in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	out := f.without("COFFER_IDENTITY_FILE").ok(nil, "check")
	mustContain(t, "check after a killed backup", out, "no errors")
	in := synth.Bytes(34, 40<<20)
	b := f.backup(bytes.NewReader(in), "--source", "big", "--stdin")
	got := f.ok(nil, "restore", b.Snapshot)
	if !bytes.Equal([]byte(got), in) {
		t.Fatal("the backup after the killed one does not restore identically")
	}
	f.ok(nil, "check", "--read-data")
}

var _ = exec.Command
