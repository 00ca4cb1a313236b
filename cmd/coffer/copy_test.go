package main_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/internal/testminio"
)

type copyJSON struct {
	Initialised      bool     `json:"initialised"`
	Snapshots        int      `json:"snapshots"`
	SnapshotsPresent int      `json:"snapshots_present"`
	Packs            int      `json:"packs"`
	Bytes            int64    `json:"copied_bytes"`
	Refused          []string `json:"refused"`
}

func (c *cli) copyTo(to string, args ...string) copyJSON {
	c.t.Helper()
	out := c.ok(nil, append([]string{"copy", "--json", "--to", to}, args...)...)
	var s copyJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		c.t.Fatalf("copy --json: %v\n%s", err, out)
	}
	return s
}

// at returns c pointed at another repository (same keys and identity).
func (c *cli) at(env ...string) *cli { return c.with(env...) }

// copyEnv turns a MinIO environment (testminio Env) into the copy's
// destination credentials.
func copyEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "COFFER_S3_ENDPOINT="):
			out = append(out, "COFFER_COPY_"+strings.TrimPrefix(kv, "COFFER_"))
		case strings.HasPrefix(kv, "AWS_"):
			out = append(out, "COFFER_COPY_"+kv)
		}
	}
	return out
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// sameRestores restores every snapshot of from, whole, from both
// repositories and compares the bytes.
func sameRestores(t *testing.T, from, to *cli) {
	t.Helper()
	rows := from.snapshots()
	if got := to.snapshots(); len(got) != len(rows) {
		t.Fatalf("the copy lists %d snapshots, the source %d", len(got), len(rows))
	}
	dir := t.TempDir()
	for _, s := range rows {
		a, b := filepath.Join(dir, s.ID+".src"), filepath.Join(dir, s.ID+".dst")
		from.ok(nil, "restore", s.ID, "--part", "all", "-o", a)
		to.ok(nil, "restore", s.ID, "--part", "all", "-o", b)
		if fileHash(t, a) != fileHash(t, b) {
			t.Fatalf("snapshot %s (%s) restored from the copy differs from the source's", s.ID[:8], s.Source)
		}
	}
}

// TestCLICopy: a repository with snapshots of stdin, PostgreSQL and SQLite
// copied from a local directory to MinIO, then from that bucket to another
// under the copier policy's own credentials; every snapshot restores
// byte-identically from both copies, drills pass on them, and a second
// copy after one more backup carries only what that backup added.
func TestCLICopy(t *testing.T) {
	m := testminio.Server(t)
	dir := t.TempDir()
	src := newCLI(t, filepath.Join(dir, "repo"))
	pgDrillSource(t, src, 5000) // inits the repository
	src.ok(nil, "demo", "--dir", filepath.Join(dir, "demo"), "--customers", "500")
	src.backup(nil, "--source", "shop", "--sqlite", filepath.Join(dir, "demo", "customers.db"))
	src.backup(strings.NewReader(string(synth.Bytes(1, 3<<20))), "--source", "stream", "--stdin")

	envA := m.Env(m.Bucket(t, false), "copy")
	first := src.with(copyEnv(envA)...).copyTo(strings.TrimPrefix(envA[0], "COFFER_REPO="))
	if !first.Initialised || first.Snapshots != 3 || len(first.Refused) != 0 {
		t.Fatalf("first copy: %+v", first)
	}
	copyA := src.at(envA...)
	sameRestores(t, src, copyA)
	mustContain(t, "snapshots of the copy", copyA.ok(nil, "snapshots"), "copy of", filepath.Join(dir, "repo"))
	copyA.ok(nil, "check", "--read-data")
	if d, _ := copyA.drill("--source", "shop"); !d.Passed {
		t.Fatalf("drill of the SQLite snapshot on the copy: %+v", d)
	}
	if d, _ := copyA.drill("--source", "pg", "--scratch", "postgres://postgres@127.0.0.1:5432/"); !d.Passed {
		t.Fatalf("drill of the PostgreSQL snapshot on the copy: %+v", d)
	}

	// One more backup: the next copy carries its packs and nothing else.
	before := countFiles(t, filepath.Join(dir, "repo", "data"))
	src.backup(strings.NewReader(string(synth.Bytes(2, 2<<20))), "--source", "stream", "--stdin")
	added := countFiles(t, filepath.Join(dir, "repo", "data")) - before
	second := src.with(copyEnv(envA)...).copyTo(strings.TrimPrefix(envA[0], "COFFER_REPO="))
	if second.Initialised || second.Snapshots != 1 || second.SnapshotsPresent != 3 || second.Packs != added {
		t.Fatalf("second copy: %+v; the backup added %d packs", second, added)
	}
	sameRestores(t, src, copyA)

	// Bucket to bucket: the destination is initialised with one snapshot
	// by its owner, then the copier role (no delete, no reading data/)
	// carries the rest, reading the source as the copy-source role.
	envB := m.Env(m.Bucket(t, false), "second")
	toB := strings.TrimPrefix(envB[0], "COFFER_REPO=")
	rows := copyA.snapshots()
	copyA.with(copyEnv(envB)...).copyTo(toB, "--snapshot", rows[0].ID)
	copyB := src.at(envB...)
	copier, _ := asRole(t, m, copyB, "copier")
	var creds []string
	for _, kv := range copier.env {
		if strings.HasPrefix(kv, "AWS_") {
			creds = append(creds, "COFFER_COPY_"+kv)
		}
	}
	creds = append(creds, "COFFER_COPY_S3_ENDPOINT="+m.Endpoint)
	reader, _ := asRole(t, m, copyA, "copy-source")
	rest := reader.with(creds...).copyTo(toB)
	if rest.Snapshots != len(rows)-1 || rest.SnapshotsPresent != 1 {
		t.Fatalf("copy under the copier policy: %+v", rest)
	}
	sameRestores(t, src, copyB)
	copyB.ok(nil, "check", "--read-data")
	if d, _ := copyB.drill("--source", "shop"); !d.Passed {
		t.Fatalf("drill on the second copy: %+v", d)
	}
}

// TestCLICopyKilled: a copy killed with SIGKILL at several points while it
// stores packs leaves a destination that check passes (no snapshot there
// lacks anything), each run resumes where the last stopped, and the last
// completes with check --read-data clean.
func TestCLICopyKilled(t *testing.T) {
	dir := t.TempDir()
	src := newCLI(t, filepath.Join(dir, "repo"))
	src.init()
	// incompressible: several packs
	src.backup(strings.NewReader(string(randomBytes(3, 80<<20))), "--source", "big", "--stdin")
	src.backup(strings.NewReader(string(randomBytes(4, 40<<20))), "--source", "big", "--stdin")
	to := filepath.Join(dir, "copy")
	dst := src.at("COFFER_REPO=" + to)
	for _, after := range []int{1, 3, 5} {
		cmd := src.cmd(t.Context(), nil, "copy", "--to", to)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
		for deadline := time.Now().Add(2 * time.Minute); !killed; time.Sleep(2 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("the copy ended (%v) before it stored %d packs", err, after)
			default:
			}
			if countFiles(t, filepath.Join(to, "data")) >= after {
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				killed = true
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the copy stored no %d packs within 2 minutes", after)
			}
		}
		if n := countFiles(t, filepath.Join(to, "snapshots")); n != 0 {
			t.Fatalf("killed while storing packs, the copy left %d snapshots", n)
		}
		t.Logf("killed with %d files under data/", countFiles(t, filepath.Join(to, "data")))
		dst.ok(nil, "check") // what the killed copy left is a sound repository
	}
	again := src.copyTo(to)
	if again.Snapshots != 2 || again.Initialised {
		t.Fatalf("the copy after the kills: %+v", again)
	}
	dst.ok(nil, "check", "--read-data")
	sameRestores(t, src, dst)
}

// TestDaemonCopies: the daemon runs the copies: list of coffer.yaml on
// their own schedules, into a local directory and into a MinIO bucket whose
// credentials come from the environment variables the file names.
func TestDaemonCopies(t *testing.T) {
	m := testminio.Server(t)
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	c.backup(strings.NewReader(string(synth.Bytes(5, 1<<20))), "--source", "shop", "--stdin")
	bucket := m.Bucket(t, false)
	cfg := `repository:
  url: ` + filepath.Join(dir, "repo") + `
  writer_key_file: ` + filepath.Join(c.dir, "writer.key") + `
  time_zone: UTC
copies:
  - to: ` + filepath.Join(dir, "offsite") + `
    schedule: "* * * * *"
  - to: s3://` + bucket + `/offsite
    schedule: "* * * * *"
    sources: [shop]
    s3_endpoint: ` + m.Endpoint + `
    access_key_id_env: OFFSITE_KEY_ID
    secret_access_key_env: OFFSITE_SECRET
daemon:
  retries: 0
  state_file: ` + filepath.Join(dir, "state.json") + `
`
	cfgPath := filepath.Join(dir, "coffer.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	c.ok(nil, "config", "check", cfgPath)
	mustContain(t, "coffer schedule", c.ok(nil, "schedule", "--config", cfgPath), "copy 1", "copy 2")
	cmd := c.without("COFFER_IDENTITY_FILE", "COFFER_REPO").with("OFFSITE_KEY_ID="+m.AccessKey, "OFFSITE_SECRET="+m.SecretKey).cmd(t.Context(), nil, "daemon", "--config", cfgPath)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	local := c.at("COFFER_REPO=" + filepath.Join(dir, "offsite"))
	remote := c.at(m.Env(bucket, "offsite")...)
	for deadline := time.Now().Add(150 * time.Second); ; time.Sleep(time.Second) {
		if countFiles(t, filepath.Join(dir, "offsite", "copies")) > 0 && strings.Contains(logs.String(), "copy 2") &&
			strings.Contains(remote.run(nil, "snapshots").stdout, "copy of") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the daemon did not copy within the deadline\n%s", logs.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	sameRestores(t, c, local)
	sameRestores(t, c, remote)
}

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}
