// Package command streams a command's standard output as a backup source.
// The stream ends with io.EOF only if the command exits 0: a dump that fails
// halfway makes the read fail, so no snapshot is written for it.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// Stream is a running command's standard output.
type Stream struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr *Tail
	name   string

	once    sync.Once
	waitErr error
	ended   bool   // the output ended and the command was waited for
	hint    string // what a failure means, after the command's error
}

// Start runs the user's command with `sh -c` and returns its standard
// output. It gets coffer's environment without coffer's secrets
// (UserEnv). Its standard error is kept (the last few KiB) for error
// messages.
func Start(ctx context.Context, command string) (*Stream, error) {
	return StartArgs(ctx, command, UserEnv(), "sh", "-c", command)
}

// StartArgs runs argv directly with environment env (see New); name is
// how errors refer to it.
func StartArgs(ctx context.Context, name string, env []string, argv ...string) (*Stream, error) {
	s, err := StartCmd(New(ctx, env, argv...), name)
	if s != nil {
		s.hint = ": no snapshot was written; fix the command and run the backup again"
	}
	return s, err
}

// StartCmd starts cmd (made by New, perhaps given ExtraFiles) and returns
// its standard output as a Stream; name is how errors refer to it.
func StartCmd(cmd *exec.Cmd, name string) (*Stream, error) {
	s := &Stream{cmd: cmd, stderr: NewTail(4096), name: name}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.stdout = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", name, err)
	}
	return s, nil
}

// Read reads the command's output. At the end of the output it waits for
// the command and returns io.EOF only when it succeeded.
func (s *Stream) Read(p []byte) (int, error) {
	if s.ended {
		// Wait has closed the pipe; repeat the outcome.
		if s.waitErr != nil {
			return 0, s.waitErr
		}
		return 0, io.EOF
	}
	n, err := s.stdout.Read(p)
	if err == io.EOF {
		s.ended = true
		if werr := s.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Close stops the command if it is still running and releases it.
func (s *Stream) Close() error {
	if s.cmd.ProcessState == nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	err := s.wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // already reported by Read, or we killed it
	}
	return err
}

func (s *Stream) wait() error {
	s.once.Do(func() {
		err := s.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			why := ee.String()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				why = "killed by signal " + ws.Signal().String()
			}
			msg := strings.TrimSpace(s.stderr.String())
			if msg != "" {
				msg = ": " + msg
			}
			err = fmt.Errorf("command %q failed (%s)%s%s", s.name, why, msg, s.hint)
		}
		s.waitErr = err
	})
	return s.waitErr
}

// NewTail returns a Tail that keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

// Tail keeps the last bytes written to it: a command's standard error,
// for error messages.
type Tail struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
