// Package testminio runs one real MinIO server per test binary and hands
// out fresh buckets, so storage tests exercise the S3 protocol rather than
// a fake of it.
//
// A package that uses it calls Main from TestMain, which stops the server
// and removes its data when the tests end:
//
//	func TestMain(m *testing.M) { testminio.Main(m) }
//
// The server binary is the project's pinned MinIO (see Install). Without
// it, tests fail with instructions; they never skip.
package testminio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Install is how to get the server binary this harness runs.
const Install = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c (about 5 minutes the first time), or run .ci/run"

// startTimeout bounds the wait for a started server to answer.
const startTimeout = 30 * time.Second

// MinIO is a running server and its root credentials.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string

	cmd     *exec.Cmd
	dir     string
	log     *logBuffer
	exited  chan struct{}
	client  *minio.Client
	buckets atomic.Int64
}

var (
	once    sync.Once
	server  *MinIO
	starter error
)

// Server returns the test binary's MinIO server, starting it on first use.
// It fails the test when the server cannot be found or started.
func Server(t testing.TB) *MinIO {
	t.Helper()
	once.Do(func() { server, starter = start() })
	if starter != nil {
		t.Fatalf("testminio: %v", starter)
	}
	return server
}

// Main runs the tests, then stops the server (if one was started) and
// removes its data directory.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server, if one was started, and removes its data. For a
// TestMain that has more to clean up than Main does.
func Stop() {
	if server != nil {
		server.stop()
	}
}

// Binary finds the minio executable: on PATH, then in $HOME/go/bin, then
// in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("the minio server binary is not on PATH nor in %s: install it with %s", strings.Join(dirs, " or "), Install)
}

func start() (*MinIO, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testminio-")
	if err != nil {
		return nil, err
	}
	m := &MinIO{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKey: "coffertest",
		SecretKey: "coffertest-" + randomHex(8),
		dir:       dir,
		log:       &logBuffer{},
		exited:    make(chan struct{}),
	}
	if err := m.run(bin, port, console); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := m.waitReady(); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

func (m *MinIO) run(bin string, port, console int) error {
	cmd := exec.Command(bin, "server", filepath.Join(m.dir, "data"),
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = m.log, m.log
	cmd.SysProcAttr = procAttr() // dies with the test binary, see proc_*.go
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	m.cmd = cmd
	go func() { cmd.Wait(); close(m.exited) }()
	return nil
}

// waitReady polls the cluster health endpoint, then makes the client that
// Bucket uses. The liveness endpoint answers before the object layer and
// IAM are up, when S3 requests still fail with "Server not initialized yet".
func (m *MinIO) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for !m.live() {
		select {
		case <-m.exited:
			return fmt.Errorf("minio exited at start (%v); its log:\n%s", m.cmd.ProcessState, m.log.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio did not answer on %s within %v; its log:\n%s", m.Endpoint, startTimeout, m.log.tail())
		}
	}
	c, err := minio.New(strings.TrimPrefix(m.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		return err
	}
	m.client = c
	return nil
}

func (m *MinIO) live() bool {
	hc := &http.Client{Timeout: time.Second}
	resp, err := hc.Get(m.Endpoint + "/minio/health/cluster")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop kills the server's process group and removes its data.
func (m *MinIO) stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		killGroup(m.cmd.Process.Pid)
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
		}
	}
	os.RemoveAll(m.dir)
}

// Bucket creates a fresh, uniquely named bucket, with Object Lock (and so
// versioning) when objectLock is set, and returns its name.
func (m *MinIO) Bucket(t testing.TB, objectLock bool) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%s", bucketStem(t.Name()), m.buckets.Add(1), randomHex(3))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.client.MakeBucket(ctx, name, minio.MakeBucketOptions{ObjectLocking: objectLock}); err != nil {
		t.Fatalf("testminio: create bucket %s: %v; server log:\n%s", name, err, m.log.tail())
	}
	return name
}

// bucketStem turns a test name into the start of a valid bucket name
// (lower case letters, digits and dashes), to tell buckets apart in logs.
func bucketStem(test string) string {
	var b strings.Builder
	// Short: a bucket's name is in every resource of the role policies,
	// which MinIO's STS must take as session policies of 2048 characters.
	for _, r := range strings.ToLower(strings.TrimPrefix(test, "Test")) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 12 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) < 3 {
		s = "bucket"
	}
	return s
}

// Env returns the environment a coffer subprocess needs to use bucket
// under prefix on this server.
func (m *MinIO) Env(bucket, prefix string) []string {
	repo := "s3://" + bucket
	if p := strings.Trim(prefix, "/"); p != "" {
		repo += "/" + p
	}
	return []string{
		"COFFER_REPO=" + repo,
		"COFFER_S3_ENDPOINT=" + m.Endpoint,
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
	}
}

// Log returns the end of the server's output, for failure messages.
func (m *MinIO) Log() string { return m.log.tail() }

// ClosedEndpoint returns an http://127.0.0.1:PORT URL on which nothing
// listens, for tests of an unreachable server.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testminio: %v", err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before it is used; on loopback in a test run that is rare.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// logBuffer keeps the server's output for failure messages.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// Client returns a MinIO client with the server's root credentials, for
// tests that act on the bucket directly, as an operator or attacker would.
func (m *MinIO) Client() *minio.Client { return m.client }
