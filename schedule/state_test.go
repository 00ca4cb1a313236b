package schedule

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFileStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := FileState(filepath.Join(dir, "schedule.json"))

	st, err := f.Load()
	if err != nil || len(st) != 0 {
		t.Fatalf("missing file: got %v, %v; want an empty state", st, err)
	}
	want := map[string]JobState{
		"pg-nightly": {
			LastScheduled: time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC),
			LastStart:     time.Date(2026, 3, 29, 3, 0, 1, 5, time.UTC),
			LastEnd:       time.Date(2026, 3, 29, 3, 7, 0, 0, time.UTC),
			LastError:     "dial tcp: connection refused",
			Successes:     41,
			Failures:      2,
		},
		"files": {Successes: 1},
	}
	for range 2 { // the second Save replaces the first file
		if err := f.Save(want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	fi, err := os.Stat(string(f))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	assertOnly(t, dir, "schedule.json")
}

// TestFileStateFailedSave: a Save that cannot rename leaves no temporary
// file behind and the old state intact.
func TestFileStateFailedSave(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "schedule.json")
	if err := os.Mkdir(target, 0o700); err != nil { // rename onto a directory fails
		t.Fatal(err)
	}
	if err := FileState(target).Save(map[string]JobState{"a": {Successes: 1}}); err == nil {
		t.Fatal("Save onto a directory succeeded")
	}
	assertOnly(t, dir, "schedule.json")

	if err := FileState(filepath.Join(dir, "missing", "s.json")).Save(nil); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
}

func TestFileStateCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "schedule.json")
	if err := os.WriteFile(path, []byte(`{"a": {"successes": "many"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := FileState(path).Load()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove the file") {
		t.Fatalf("corrupt state: got %v, want an error naming the file and the remedy", err)
	}
}

func FuzzFileStateLoad(f *testing.F) {
	f.Add([]byte(`{"a":{"last_scheduled":"2026-01-01T02:30:00Z","successes":3}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":{"last_end":"not a time"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "s.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := FileState(path).Load()
		if err == nil && st == nil {
			t.Fatal("nil state without an error")
		}
	})
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
