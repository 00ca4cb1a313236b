package main_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeSkipped are the README's shell commands that TestREADMECommands
// does not run, each with the reason. A stale entry fails the test, so the
// list stays what README holds.
var readmeSkipped = map[string]string{
	"go test -timeout 30m ./...": "it is the test suite this test is part of",
}

// readmeSections are the README sections whose sh blocks the test runs,
// in order, in one shell. The others are listed with why in readmeOther.
var readmeSections = []string{"The two commands", "Install", "A first backup, restore and drill"}

// readmeOther are the sections whose commands other tests run.
var readmeOther = map[string]string{
	"Point-in-time recovery (PostgreSQL)": "needs a server of its own that archives its WAL: TestPITRRestoreToTargets and TestWALArchiveCommand run these commands against one",
	"A second copy":                       "needs a second repository with credentials of its own: TestCLICopy runs coffer copy local → MinIO → MinIO with COFFER_COPY_* credentials",
	"Recovery from a versioned bucket":    "needs a versioned bucket and an attack on it: TestCLIAsOfAfterAttack runs snapshots, check and restore --as-of and undelete (--dry-run, --hide-newer) against MinIO",
	"Copies for staging":                  "needs a staging server and an editor: TestClassifyShop, TestMaskedRestorePostgres, TestCanaries, TestMaskedRestoreMariaDB, TestMaskedRestoreSQLite and TestCanariesMariaDBSQLite run classify, restore --mask --canaries and trace",
}

// TestREADMECommands is done-when 1 of the operator issue: every shell
// command of README's first sections runs, as written, against the local
// PostgreSQL server, in a fresh home directory. Two things are put in
// place: the database README calls shop (under a name of the test's own,
// with customers and orders) and the repository path (under a temporary
// directory); the assertions file is README's own YAML block.
func TestREADMECommands(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks, yamlBlock := readmeBlocks(t, filepath.Join(root, "README.md"))
	dir := t.TempDir()
	db := fmt.Sprintf("coffer_readme_%d", time.Now().UnixNano()%1e9)
	ctx := context.Background()
	admin := postgres(t, "postgres")
	t.Cleanup(func() { dropLike(t, db) })
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres(t, db).Exec(ctx, `CREATE TABLE customers (id int PRIMARY KEY, email text);
		CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2));
		INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 2000) g;
		INSERT INTO orders SELECT g, 1 + g % 2000, g / 7.0 FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o700)
	if err := os.WriteFile(filepath.Join(work, "drill-assertions.yaml"), []byte(yamlBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	shop := regexp.MustCompile(`\bshop(\b|_)`)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	used := map[string]bool{}
	for _, b := range blocks {
		for _, line := range b.commands {
			if why, ok := readmeSkipped[line]; ok {
				used[line] = true
				t.Logf("not run (%s): %s", why, line)
				continue
			}
			cmd := strings.ReplaceAll(line, "/srv/backups", filepath.Join(dir, "srv", "backups"))
			cmd = shop.ReplaceAllString(cmd, db+"$1")
			if strings.Contains(cmd, "./cmd/coffer") {
				cmd = "(cd " + shellQuote(root) + " && " + cmd + ")"
			}
			fmt.Fprintf(&script, "echo %s >&2\nSECONDS=0\n%s\necho \"($SECONDS s)\" >&2\n", shellQuote("$ "+line), cmd)
		}
	}
	for line := range readmeSkipped {
		if !used[line] {
			t.Errorf("readmeSkipped names %q, which README no longer holds", line)
		}
	}
	home, gobin := filepath.Join(dir, "home"), filepath.Join(dir, "gobin")
	os.MkdirAll(home, 0o700)
	// Go's own settings as this machine has them (its proxy, caches),
	// which the fresh home directory would otherwise lose.
	goVars := []string{"GOPATH", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOTOOLCHAIN"}
	goEnv, err := exec.Command("go", append([]string{"env"}, goVars...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "PATH=" + gobin + ":" + os.Getenv("PATH"), "GOBIN=" + gobin, "TMPDIR=" + os.TempDir()}
	for i, v := range strings.Split(strings.TrimRight(string(goEnv), "\n"), "\n") {
		env = append(env, goVars[i]+"="+v)
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "bash", "-c", script.String())
	cmd.Dir = work
	// A fresh environment: README's exports are all the commands get, but
	// for where programs and Go's caches are.
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("a README command failed: %v\n%s", err, out)
	}
	t.Logf("README's commands:\n%s", out)
	for _, want := range []string{"coffer " + "0.1.0", "saved", db, "verified", "PASSED"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("README's commands printed no %q:\n%s", want, out)
		}
	}
}

type readmeBlock struct {
	section  string
	commands []string
}

// readmeBlocks returns the commands of the sh blocks of readmeSections
// (continuation lines joined, comments and blank lines dropped), and the
// first yaml block of the last of them. Every other section with an sh
// block must be in readmeOther.
func readmeBlocks(t *testing.T, path string) ([]readmeBlock, string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var yamlBlock strings.Builder
	section, fence, pending := "", "", ""
	run := map[string]bool{}
	for _, s := range readmeSections {
		run[s] = true
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case fence == "" && strings.HasPrefix(trimmed, "```"):
			fence = strings.TrimPrefix(trimmed, "```")
			if fence == "sh" {
				if !run[section] && readmeOther[section] == "" {
					t.Errorf("README section %q has shell commands that no test runs: add it to readmeSections or readmeOther", section)
				}
				blocks = append(blocks, readmeBlock{section: section})
			}
		case strings.HasPrefix(trimmed, "```"):
			fence = ""
		case fence == "yaml" && section == readmeSections[len(readmeSections)-1] && !strings.Contains(yamlBlock.String(), "\n\n"):
			yamlBlock.WriteString(line + "\n")
		case fence == "sh" && run[section]:
			c := trimmed
			if i := strings.Index(c, " #"); i >= 0 && !strings.Contains(c[:i], "'") {
				c = strings.TrimSpace(c[:i])
			}
			if c == "" || strings.HasPrefix(c, "#") {
				continue
			}
			if strings.HasSuffix(c, "\\") {
				pending += strings.TrimSuffix(c, "\\") + " "
				continue
			}
			b := &blocks[len(blocks)-1]
			b.commands = append(b.commands, pending+c)
			pending = ""
		}
	}
	if yamlBlock.Len() == 0 {
		t.Fatal("README's first-backup section has no yaml block (the assertions file)")
	}
	return blocks, yamlBlock.String()
}
