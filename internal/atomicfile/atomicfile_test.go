package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func entries(t *testing.T, dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := Write(p, Options{}, write("one")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	// A failing writer, a failing check, or NoReplace leave the old file.
	boom := errors.New("boom")
	for _, err := range []error{
		Write(p, Options{}, func(w io.Writer) error { io.WriteString(w, "half"); return boom }),
		Write(p, Options{Check: func(string) error { return boom }}, write("two")),
		Write(p, Options{NoReplace: true}, write("two")),
	} {
		if err == nil {
			t.Fatal("a failed write succeeded")
		}
		if b, _ := os.ReadFile(p); string(b) != "one" || entries(t, dir) != 1 {
			t.Fatalf("after a failed write: %q, %d entries", b, entries(t, dir))
		}
	}
	if err := Write(p, Options{Perm: 0o644}, write("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" || entries(t, dir) != 1 {
		t.Fatalf("replaced: %q", b)
	}
	q := filepath.Join(dir, "new")
	if err := Write(q, Options{NoReplace: true}, write("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(q); errors.Is(err, fs.ErrNotExist) || entries(t, dir) != 2 {
		t.Fatal("NoReplace did not create a new file")
	}
}

// TestUnnamedWhileWriting: while the content is written, the directory
// holds no new name, so a process killed then leaves no partial file
// (of customer data) behind.
func TestUnnamedWhileWriting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "restored.dump")
	err := Write(p, Options{}, func(w io.Writer) error {
		if _, err := io.WriteString(w, "customer rows"); err != nil {
			return err
		}
		if n := entries(t, dir); n != 0 {
			t.Errorf("%d names in the directory while writing, want 0", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "customer rows" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if n := entries(t, dir); n != 1 {
		t.Fatalf("%d names after the write, want 1", n)
	}
}
