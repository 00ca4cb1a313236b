//go:build unix && !linux

package testminio

import "syscall"

// procAttr puts the server in its own process group so stop can kill it
// and anything it spawned. Without Pdeathsig, a test binary killed before
// Main's cleanup leaves the server running.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
