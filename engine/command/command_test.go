package command

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCommandFailures(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		want      []string
	}{
		{"exit status", "printf 'half a dump'; echo 'pg_dump: error: server closed the connection' >&2; exit 3", []string{"exit status 3", "server closed the connection", "no snapshot"}},
		{"signal", "printf data; kill -KILL $$", []string{"killed"}},
		{"missing binary", "no-such-dump-tool-xyz", []string{"exit status 127", "not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(context.Background(), tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = io.ReadAll(s)
			if err == nil {
				t.Fatal("a failing command read to a clean EOF")
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(err.Error()), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCommandOK(t *testing.T) {
	s, err := Start(context.Background(), "seq 1 100000")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(s)
	if err != nil || !strings.HasSuffix(string(b), "\n100000\n") {
		t.Fatalf("read %d bytes: %v", len(b), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCommandCancel: cancelling kills the whole process group.
func TestCommandCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, "sleep 60 | cat")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = io.ReadAll(s)
	if err == nil {
		t.Fatal("a cancelled command read to EOF")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("cancel did not stop the command's children")
	}
	s.Close()
}

func TestReadAfterEnd(t *testing.T) {
	s, _ := Start(context.Background(), "echo hi")
	io.ReadAll(s)
	if n, err := s.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v; want 0, EOF", n, err)
	}
}
