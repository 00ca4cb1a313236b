package pgephemeral

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/engine/command"
)

// userPrefix starts the name of every throwaway user; userPattern is the
// whole name. gecosPrefix starts its comment, which records the coffer
// process that made it and the server's directory, for Sweep.
const (
	userPrefix  = "coffer-drill-"
	gecosPrefix = "coffer drill server "
)

var (
	userPattern = regexp.MustCompile(`^` + userPrefix + `[0-9a-f]{8}$`)
	// plainPath is what a directory recorded in a user's comment may hold
	// (/etc/passwd separates fields with ':' and lines with '\n').
	plainPath = regexp.MustCompile(`^/[A-Za-z0-9/._+-]*$`)
	gecosRE   = regexp.MustCompile(`^` + gecosPrefix + `pid=([0-9]+) start=([0-9]+) dir=(/[A-Za-z0-9/._+-]*)$`)
)

// adminTimeout bounds useradd, userdel and groupdel, which wait up to 15
// seconds for a lock on /etc/passwd.
const adminTimeout = 60 * time.Second

// usersMu serializes useradd and userdel in this process (they lock
// /etc/passwd, and give up after a while).
var usersMu sync.Mutex

// account is a throwaway user.
type account struct {
	name     string
	uid, gid uint32
	gecos    string
}

// currentUser names the user coffer runs as.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Geteuid())
}

// createUser makes the throwaway system user of the server in dir: no
// home, no shell, its own group and no other.
func createUser(ctx context.Context, dir string) (*account, error) {
	if !plainPath.MatchString(dir) {
		return nil, fmt.Errorf("the server's directory %s has characters other than letters, digits and / . _ + -: coffer runs as root and records it in the throwaway user's entry; give a plain temporary directory (TMPDIR)", dir)
	}
	suffix, err := randomHex(4)
	if err != nil {
		return nil, err
	}
	name := userPrefix + suffix
	gecos := fmt.Sprintf("%spid=%d start=%d dir=%s", gecosPrefix, os.Getpid(), startTime(os.Getpid()), dir)
	if err := runAdmin(ctx, "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", "--user-group", "--comment", gecos, name); err != nil {
		for _, a := range throwaways() {
			if a.name == name { // made all the same
				err = errors.Join(err, deleteUser(ctx, &a))
			}
		}
		return nil, fmt.Errorf("create the throwaway user %s for the server (coffer runs as root, and the server must not): %w", name, err)
	}
	for _, a := range throwaways() {
		if a.name == name {
			return &a, nil
		}
	}
	return nil, fmt.Errorf("useradd created user %s, but /etc/passwd does not list it", name)
}

// deleteUser removes a throwaway user and its group. Its processes must
// have been killed.
func deleteUser(ctx context.Context, a *account) error {
	if !userPattern.MatchString(a.name) {
		return fmt.Errorf("refusing to delete user %s: not a throwaway user of coffer's", a.name)
	}
	err := runAdmin(ctx, "userdel", a.name)
	if err != nil && !exists(a.name) {
		err = nil // swept meanwhile
	}
	if err != nil {
		return fmt.Errorf("delete the throwaway user %s of the ephemeral server: %w; delete it with userdel %s", a.name, err, a.name)
	}
	if _, gerr := user.LookupGroup(a.name); gerr == nil {
		if err := runAdmin(ctx, "groupdel", a.name); err != nil {
			if _, gerr := user.LookupGroup(a.name); gerr == nil {
				return fmt.Errorf("delete the group %s of the ephemeral server's user: %w; delete it with groupdel %s", a.name, err, a.name)
			}
		}
	}
	return nil
}

func exists(name string) bool {
	for _, a := range throwaways() {
		if a.name == name {
			return true
		}
	}
	return false
}

// runAdmin runs useradd, userdel or groupdel with a built environment.
func runAdmin(ctx context.Context, tool string, args ...string) error {
	path := ""
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if fi, err := os.Stat(filepath.Join(d, tool)); err == nil && !fi.IsDir() {
			path = filepath.Join(d, tool)
			break
		}
	}
	if path == "" {
		p, err := exec.LookPath(tool)
		if err != nil {
			return fmt.Errorf("%s not found: install the passwd package (apt-get install passwd), or run coffer as an ordinary user", tool)
		}
		path = p
	}
	usersMu.Lock()
	defer usersMu.Unlock()
	// Never killed half-way: it edits /etc/passwd, /etc/shadow and
	// /etc/group, and would leave them locked.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := command.New(ctx, command.Env(nil, "LC_ALL=C"), append([]string{path}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// throwaways lists the throwaway users in /etc/passwd: names of the
// pattern with a comment of createUser's.
func throwaways() []account {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || !userPattern.MatchString(fields[0]) || !strings.HasPrefix(fields[4], gecosPrefix) {
			continue
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		out = append(out, account{name: fields[0], uid: uint32(uid), gid: uint32(gid), gecos: fields[4]})
	}
	return out
}

// throwawayByUID returns the throwaway user of uid, or nil.
func throwawayByUID(uid uint32) *account {
	for _, a := range throwaways() {
		if a.uid == uid {
			return &a
		}
	}
	return nil
}

// Swept is one throwaway user that Sweep removed.
type Swept struct {
	User string // coffer-drill-…
	Dir  string // its server's directory, removed if it was still there; "" for a group alone
}

// Sweep removes the throwaway users (coffer-drill-…, in /etc/passwd) of
// servers whose coffer process is gone — killed before it could Stop them
// — with every process of theirs and their server's directory. Users of
// running coffer processes are left alone. Only root has such users: for
// anyone else Sweep does nothing.
func Sweep(ctx context.Context) ([]Swept, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var out []Swept
	var errs []error
	for _, a := range throwaways() {
		m := gecosRE.FindStringSubmatch(a.gecos)
		if m == nil {
			continue // not one of ours after all: leave it
		}
		pid, _ := strconv.Atoi(m[1])
		start, _ := strconv.ParseUint(m[2], 10, 64)
		if alive(pid) && startTime(pid) == start {
			continue // its coffer still runs
		}
		dir := m[3]
		if err := killUser(ctx, a.uid); err != nil {
			errs = append(errs, fmt.Errorf("throwaway user %s: %w", a.name, err))
			continue
		}
		if err := removeDirOf(dir, a.uid); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := deleteUser(ctx, &a); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Swept{User: a.name, Dir: dir})
	}
	// A group of the pattern without its user: left by a useradd that
	// was interrupted (useradd locks the files it edits, so none is half
	// made while this runs).
	users := map[string]bool{}
	for _, a := range throwaways() {
		users[a.name] = true
	}
	for _, g := range orphanGroups(users) {
		if err := runAdmin(ctx, "groupdel", g); err != nil {
			if _, gerr := user.LookupGroup(g); gerr != nil {
				continue // deleted meanwhile, by the process whose user it was
			}
			errs = append(errs, fmt.Errorf("delete the group %s of a throwaway user that is gone: %w", g, err))
			continue
		}
		out = append(out, Swept{User: g})
	}
	return out, errors.Join(errs...)
}

// orphanGroups lists the groups in /etc/group named like throwaway users
// that are not in users.
func orphanGroups(users map[string]bool) []string {
	b, err := os.ReadFile("/etc/group")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		name, _, _ := strings.Cut(line, ":")
		if userPattern.MatchString(name) && !users[name] {
			if _, err := user.Lookup(name); err != nil {
				out = append(out, name)
			}
		}
	}
	return out
}

// removeDirOf removes dir if it is a server directory of uid's (or still
// root's: Start chowns it after creating the user). Anything else at that
// path is left alone.
func removeDirOf(dir string, uid uint32) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !dirPattern.MatchString(filepath.Base(dir)) || !fi.IsDir() || !ok || (st.Uid != uid && st.Uid != 0) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove ephemeral PostgreSQL directory (customer data): %w", err)
	}
	return nil
}
