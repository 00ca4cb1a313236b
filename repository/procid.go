package repository

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// procIdentity is what makes a process unique on a running Linux host: the
// boot it runs in, its PID namespace and its start time (clock ticks since
// boot, field 22 of /proc/PID/stat). A PID alone is not: PIDs are reused.
type procIdentity struct {
	Machine   string // os.Hostname
	BootID    string
	Namespace string
	Start     uint64
}

// ownIdentity returns the identity of process pid as seen from here, or
// ok false where /proc does not tell (another OS, a hardened /proc).
func ownIdentity(pid int) (procIdentity, bool) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return procIdentity{}, false
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return procIdentity{}, false
	}
	start, ok := procStart(pid)
	if !ok {
		return procIdentity{}, false
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return procIdentity{}, false
	}
	return procIdentity{Machine: host, BootID: strings.TrimSpace(string(boot)), Namespace: ns, Start: start}, true
}

// procStart returns the start time of process pid, ok false if there is
// no such process.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 { // fields 3… ; starttime is field 22
		return 0, false
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	return n, err == nil
}

// deadHere reports whether the lock's process is provably gone: the lock
// was written on this machine (same host name, boot and PID namespace), and
// its PID now names no process or one started at another time. Anything
// less certain (another host, another boot, a lock without an identity)
// is not dead: only storage time can retire it.
func (l *LockInfo) deadHere() bool {
	if l.BootID == "" {
		return false
	}
	me, ok := ownIdentity(os.Getpid())
	if !ok || me.Machine != l.Machine || me.BootID != l.BootID || me.Namespace != l.PIDNamespace {
		return false
	}
	start, alive := procStart(l.PID)
	return !alive || start != l.StartTicks
}
