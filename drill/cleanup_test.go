package drill

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func writeMarker(t *testing.T, path string, m marker) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func nobody(t *testing.T) int {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return uid
}

func TestStateDirRefused(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o755)
	groupWritable := filepath.Join(root, "group")
	os.Mkdir(groupWritable, 0o700)
	os.Chmod(groupWritable, 0o770)
	real := filepath.Join(root, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(root, "link")
	os.Symlink(real, link)
	cases := map[string]struct{ dir, want string }{
		"mode 0755":        {open, "chmod 700"},
		"mode 0770":        {groupWritable, "chmod 700"},
		"a symbolic link":  {link, "symbolic link"},
		"a file, not dirs": {filepath.Join(root, "file"), "not a directory"},
	}
	os.WriteFile(filepath.Join(root, "file"), nil, 0o600)
	if os.Geteuid() == 0 {
		other := filepath.Join(root, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, nobody(t), -1)
		cases["another user's"] = struct{ dir, want string }{other, "not by you"}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := EnsureStateDir(c.dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("EnsureStateDir(%s) = %v, want an error mentioning %q", c.dir, err, c.want)
			}
			if _, err := Cleanup(context.Background(), CleanupOptions{StateDir: c.dir}); err == nil {
				t.Errorf("Cleanup(%s) worked in a directory it must refuse", c.dir)
			}
		})
	}
	fresh := filepath.Join(root, "new", "state")
	if err := EnsureStateDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("new state directory mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestCleanupActsOnlyOnItsOwn plants markers that name what coffer never
// creates; Cleanup must ignore each, with a warning, and delete nothing
// of theirs; a marker of coffer's shape is cleaned up.
func TestCleanupActsOnlyOnItsOwn(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	state := filepath.Join(root, "state")
	tmp := filepath.Join(root, "tmp")
	os.MkdirAll(tmp, 0o700)
	if err := EnsureStateDir(state); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "victim")
	os.MkdirAll(victim, 0o700)
	os.WriteFile(filepath.Join(victim, "precious"), []byte("x"), 0o600)
	pid := deadPID(t)
	id := func(i int) string { return "20250101t000000_abcdef_" + strconv.Itoa(i) }
	good := func(i int) marker {
		m := marker{ID: id(i), PID: pid, Started: time.Now(), Dir: filepath.Join(tmp, workPrefix+id(i))}
		m.Scratch = &scratch{Engine: "sqlite", File: filepath.Join(m.Dir, scratchPrefix+id(i)+".db")}
		return m
	}
	bad := map[string]func(m *marker){
		"work dir elsewhere":      func(m *marker) { m.Dir = victim },
		"work dir a relative":     func(m *marker) { m.Dir = workPrefix + m.ID },
		"ephemeral dir elsewhere": func(m *marker) { m.Ephemeral = victim },
		"ephemeral dir no prefix": func(m *marker) { m.Ephemeral = filepath.Join(tmp, "victim") },
		"id not coffer's":         func(m *marker) { m.ID = "../../victim" },
		"sqlite file elsewhere":   func(m *marker) { m.Scratch.File = filepath.Join(victim, "precious") },
		"database not a drill's": func(m *marker) {
			m.Scratch = &scratch{Engine: "postgres", Server: "postgres://postgres@127.0.0.1:5432/", Database: "production"}
		},
		"database on another server": func(m *marker) {
			m.Scratch = &scratch{Engine: "postgres", Server: "postgres://postgres@db.example:5432/", Database: scratchPrefix + m.ID}
		},
		"engine unknown": func(m *marker) { m.Scratch.Engine = "exec" },
	}
	i := 0
	names := map[string]string{} // file → case
	for name, breakIt := range bad {
		m := good(i)
		breakIt(&m)
		file := id(i) + ".json"
		writeMarker(t, filepath.Join(state, file), m)
		names[file] = name
		i++
	}
	// A symbolic link to a marker elsewhere, a marker that is not ours.
	elsewhere := filepath.Join(root, "elsewhere.json")
	writeMarker(t, elsewhere, good(i))
	os.Symlink(elsewhere, filepath.Join(state, id(i)+".json"))
	names[id(i)+".json"] = "symbolic link"
	i++
	if os.Geteuid() == 0 {
		p := filepath.Join(state, id(i)+".json")
		writeMarker(t, p, good(i))
		os.Chown(p, nobody(t), -1)
		names[id(i)+".json"] = "another user's"
		i++
	}
	// One of coffer's own, whose drill was killed.
	own := good(i)
	os.Mkdir(own.Dir, 0o700)
	os.WriteFile(own.Scratch.File, []byte("customer data"), 0o600)
	writeMarker(t, filepath.Join(state, own.ID+".json"), own)

	res, err := Cleanup(ctx, CleanupOptions{StateDir: state, TempDir: tmp, Scratch: "postgres://postgres@127.0.0.1:5432/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(victim, "precious")); err != nil {
		t.Fatalf("cleanup deleted a file no drill made: %v", err)
	}
	if _, err := os.Stat(own.Dir); err == nil {
		t.Errorf("the killed drill's work directory %s is left", own.Dir)
	}
	if len(res.Removed) != 1 || res.Removed[0].Drill != own.ID {
		t.Errorf("removed %+v, want only %s", res.Removed, own.ID)
	}
	warnings := strings.Join(res.Ignored, "\n")
	for file, name := range names {
		if !strings.Contains(warnings, file+" ignored") {
			t.Errorf("%s: no warning for %s in\n%s", name, file, warnings)
		}
		if _, err := os.Lstat(filepath.Join(state, file)); err != nil {
			t.Errorf("%s: the ignored marker %s was removed", name, file)
		}
	}
	t.Logf("warnings:\n%s", warnings)
}
