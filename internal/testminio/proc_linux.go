package testminio

import "syscall"

// procAttr puts the server in its own process group, so stop can kill it
// and anything it spawned, and asks the kernel to kill it if the test
// binary dies without running Main's cleanup (a panic, a timeout, kill -9).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
