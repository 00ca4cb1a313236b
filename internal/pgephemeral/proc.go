package pgephemeral

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// kill ends the server of dataDir when it runs as ourselves: SIGQUIT to
// the postmaster, which ends its children, then SIGKILL to every process
// still working in dataDir.
func kill(ctx context.Context, dataDir string, pid int) error {
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		dataDir = real
	} else if pid == 0 {
		return nil // no data directory: nothing ever ran
	}
	if belongs(pid, dataDir) {
		syscall.Kill(pid, syscall.SIGQUIT)
	}
	left := processes(dataDir, pid)
	for round, sig := range []syscall.Signal{0, syscall.SIGKILL} {
		if round > 0 {
			for _, p := range left {
				syscall.Kill(p, sig)
			}
		}
		deadline := time.Now().Add(stopTimeout / 3)
		for len(left) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			left = processes(dataDir, pid)
		}
		if len(left) == 0 {
			return nil
		}
	}
	return fmt.Errorf("processes %v survive SIGKILL", left)
}

// killUser kills every process of uid, a throwaway user's, until none is
// left (a process may fork while it is being killed).
func killUser(ctx context.Context, uid uint32) error {
	if uid == 0 || int(uid) == os.Geteuid() {
		return fmt.Errorf("refusing to kill the processes of uid %d", uid) // never ours, never root's
	}
	deadline := time.Now().Add(stopTimeout / 3)
	for {
		left := userProcesses(uid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("processes %v of uid %d survive SIGKILL", left, uid)
		}
		for _, p := range left {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// userProcesses lists the live processes any of whose user ids is uid.
func userProcesses(uid uint32) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	want := strconv.FormatUint(uint64(uid), 10)
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				for _, f := range strings.Fields(rest) {
					if f == want && alive(p) {
						out = append(out, p)
						break
					}
				}
				break
			}
		}
	}
	return out
}

// processes lists the live processes of the server in dataDir: the
// postmaster pid, and (where /proc tells) all processes whose working
// directory is in dataDir, as every PostgreSQL process's is.
func processes(dataDir string, pid int) []int {
	var out []int
	if belongs(pid, dataDir) {
		out = append(out, pid)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && inDir(cwd, dataDir) && alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// belongs reports whether pid is a live process of the server in dataDir,
// so that a pid reused since postmaster.pid was written is left alone.
func belongs(pid int, dataDir string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		return true // no /proc: trust postmaster.pid
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	return err == nil && inDir(cwd, dataDir)
}

func inDir(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// alive reports whether pid runs; a zombie (an orphaned postmaster whose
// new parent has not reaped it yet) does not.
func alive(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		i := bytes.LastIndexByte(b, ')')
		return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
	} else if _, serr := os.Stat("/proc/self"); serr == nil {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// startTime is when process pid started, in clock ticks since boot (the
// 22nd field of /proc/PID/stat), or 0: with the pid, it names a process
// even after the pid was reused.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // from field 3 (state) on
	if len(f) < 20 {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// readPID reads the postmaster's pid from the first line of postmaster.pid.
func readPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s/postmaster.pid: no pid on its first line", dataDir)
	}
	return pid, nil
}
