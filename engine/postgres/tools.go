package postgres

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/engine/command"
)

// binDirs is where PostgreSQL's programs are looked for after PATH:
// Debian and Ubuntu install each major version's client programs there.
var binDirs = "/usr/lib/postgresql/*/bin"

// tools are the client programs found, by name.
type tools struct {
	path map[string]string
}

// findTools finds each named program (pg_dump, pg_restore…) of major version
// minMajor or later: the one on PATH if it is recent enough, else the
// newest under binDirs.
func findTools(ctx context.Context, minMajor int, names ...string) (*tools, error) {
	t := &tools{path: map[string]string{}}
	for _, name := range names {
		cands := candidates(name)
		if len(cands) == 0 {
			return nil, fmt.Errorf("%s is not installed: it is neither on PATH nor in %s; install the PostgreSQL %d client programs (e.g. apt install postgresql-client-%d)", name, binDirs, minMajor, minMajor)
		}
		var seen []string
		for _, p := range cands {
			m, err := toolMajor(ctx, p)
			if err != nil {
				seen = append(seen, fmt.Sprintf("%s (%v)", p, err))
				continue
			}
			if m >= minMajor {
				t.path[name] = p
				break
			}
			seen = append(seen, fmt.Sprintf("%s is version %d", p, m))
		}
		if t.path[name] == "" {
			return nil, fmt.Errorf("%s is older than the server, PostgreSQL %d (%s): a dump or restore must use programs of the server's version or later; install the PostgreSQL %d client programs (e.g. apt install postgresql-client-%d)", name, minMajor, strings.Join(seen, "; "), minMajor, minMajor)
		}
	}
	return t, nil
}

// candidates lists where name may be: PATH, then binDirs newest first.
func candidates(name string) []string {
	var out []string
	if p, err := exec.LookPath(name); err == nil {
		out = append(out, p)
	}
	dirs, _ := filepath.Glob(binDirs)
	version := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := exec.LookPath(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

var versionRe = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// toolMajor runs `program --version`, e.g. "pg_dump (PostgreSQL) 15.20",
// with a minimal environment like every child (command.New).
func toolMajor(ctx context.Context, program string) (int, error) {
	out, err := command.New(ctx, command.Env(nil), program, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", program, err)
	}
	m := versionRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s --version: unexpected output %q", program, strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}
