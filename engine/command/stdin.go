package command

import (
	"io"
	"os/exec"
	"syscall"
)

// Stdin feeds a loader (psql, pg_restore, mysql) from a restored stream.
// A stream that fails must not reach the loader as an end of input, on
// which it would run a half-read statement: Stdin kills the loader's
// process group first, and keeps the error for Err.
type Stdin struct {
	r   io.Reader
	cmd *exec.Cmd
	err error
}

// NewStdin returns a reader for cmd.Stdin; cmd must run in its own process
// group (SysProcAttr.Setpgid).
func NewStdin(r io.Reader, cmd *exec.Cmd) *Stdin { return &Stdin{r: r, cmd: cmd} }

func (s *Stdin) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
		if s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	return n, err
}

// Err is the stream's error, if it failed.
func (s *Stdin) Err() error { return s.err }
