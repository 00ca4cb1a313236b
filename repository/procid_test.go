package repository

import (
	"os"
	"os/exec"
	"testing"
)

// TestDeadHere: a lock is dead at once only when it was written on this
// host, in this boot and PID namespace, and its PID is gone or reused.
func TestDeadHere(t *testing.T) {
	me, ok := ownIdentity(os.Getpid())
	if !ok {
		t.Fatal("no process identity from /proc on this Linux host")
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	kid, ok := ownIdentity(child.Process.Pid)
	if !ok {
		t.Fatal("no identity for a running child")
	}
	child.Process.Kill()
	child.Wait()
	h := me.Machine
	lock := func(host string, pid int, id procIdentity) *LockInfo {
		return &LockInfo{Host: "label", Machine: host, PID: pid, BootID: id.BootID, PIDNamespace: id.Namespace, StartTicks: id.Start}
	}
	otherBoot := me
	otherBoot.BootID = "00000000-0000-0000-0000-000000000000"
	otherNS := me
	otherNS.Namespace = "pid:[1]"
	reused := me
	reused.Start++
	for _, c := range []struct {
		name string
		l    *LockInfo
		dead bool
	}{
		{"live process", lock(h, os.Getpid(), me), false},
		{"killed process", lock(h, child.Process.Pid, kid), true},
		{"PID reused by a later process", lock(h, os.Getpid(), reused), true},
		{"another host", lock("other", child.Process.Pid, kid), false},
		{"another boot", lock(h, child.Process.Pid, otherBoot), false},
		{"another PID namespace", lock(h, child.Process.Pid, otherNS), false},
		{"no identity (older coffer)", &LockInfo{Host: h, PID: child.Process.Pid}, false},
	} {
		if got := c.l.deadHere(); got != c.dead {
			t.Errorf("%s: dead %v, want %v", c.name, got, c.dead)
		}
	}
}
