package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cofferBin is the coffer binary built once for the tests in this package.
var cofferBin string

func buildCoffer() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "coffer-bin-")
	if err != nil {
		return nil, err
	}
	cofferBin = filepath.Join(dir, "coffer")
	out, err := exec.Command("go", "build", "-tags", "coffertestclock", "-o", cofferBin, ".").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return func() { os.RemoveAll(dir) }, nil
}

// cli runs coffer against one repository with a fixed environment.
type cli struct {
	t   *testing.T
	dir string   // holds the keys
	env []string // COFFER_* settings
}

// newCLI returns a cli for repository repo, with the writer key and the
// operator identity in a fresh directory (not yet created: run init).
func newCLI(t *testing.T, repo string, extra ...string) *cli {
	dir := t.TempDir()
	env := []string{
		"COFFER_REPO=" + repo,
		"COFFER_WRITER_KEY_FILE=" + filepath.Join(dir, "writer.key"),
		"COFFER_IDENTITY_FILE=" + filepath.Join(dir, "operator.txt"),
		"COFFER_CACHE_DIR=" + filepath.Join(dir, "cache"),
	}
	return &cli{t: t, dir: dir, env: append(env, extra...)}
}

// without returns a copy of c with the named variables unset.
func (c *cli) without(names ...string) *cli {
	d := *c
	d.env = nil
	for _, kv := range c.env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			d.env = append(d.env, kv)
		}
	}
	return &d
}

// with returns a copy of c with more variables set.
func (c *cli) with(kv ...string) *cli {
	d := *c
	d.env = append(append([]string{}, c.env...), kv...)
	return &d
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) cmd(ctx context.Context, stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, cofferBin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = stdin
	return cmd
}

func (c *cli) run(stdin io.Reader, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := c.cmd(ctx, stdin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("coffer %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// ok runs coffer and fails the test unless it exits 0; it returns stdout.
func (c *cli) ok(stdin io.Reader, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("coffer %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// fail runs coffer, fails the test if it exits 0, and returns stderr.
func (c *cli) fail(stdin io.Reader, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code == 0 {
		c.t.Fatalf("coffer %s succeeded; want a failure\nstdout: %.500s", strings.Join(args, " "), r.stdout)
	}
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		c.t.Fatalf("coffer %s panicked:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r.stderr
}

func (c *cli) init() {
	c.t.Helper()
	c.ok(nil, "init")
}

// mustContain fails unless s contains every part (case-insensitive).
func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(strings.ToLower(s), strings.ToLower(p)) {
			t.Errorf("%s does not mention %q:\n%s", what, p, s)
		}
	}
}

// runTool runs a helper program and returns its output.
func runTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
