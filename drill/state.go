package drill

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
)

// A drill's state directory holds the markers of running drills (see
// Cleanup). What a marker names is deleted by the next drill, so only
// coffer's user may write there: the directory must be owned by that user
// and closed to everyone else (0700), and a marker must be a regular file
// of that user's. Anything else is refused or ignored, never acted on.

// maxMarker bounds the size of a marker read.
const maxMarker = 1 << 16

// EnsureStateDir creates dir (mode 0700, parents too) if it does not
// exist, and checks that it is a directory of ours that no one else may
// enter: markers there are trusted to name what a drill may delete.
func EnsureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("drill state directory: %w; give --state-dir a directory of yours (mode 0700)", err)
	}
	f, err := openStateDir(dir)
	if err != nil {
		return err
	}
	return f.Close()
}

// openStateDir opens dir, which must exist, without following a symbolic
// link, and checks its owner and mode on what it opened.
func openStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("drill state directory %s is a symbolic link or not a directory: give --state-dir a directory of yours (mode 0700)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("drill state directory: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkStateDir(dir, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkStateDir(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("drill state directory %s: cannot tell its owner", dir)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("drill state directory %s is owned by uid %d, not by you (uid %d): another user could plant markers there that make a drill delete files and drop databases; give --state-dir a directory of your own (mode 0700)",
			dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("drill state directory %s has mode %v: others could plant markers there; make it yours alone (chmod 700 %s) or give another --state-dir",
			dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// markerName is the file name of a marker: the drill's id and .json.
var markerName = regexp.MustCompile(`^(.+)\.json$`)

// storedMarker is one file of the state directory that looks like a
// marker, read if it is a regular file of ours.
type storedMarker struct {
	name string // the file's name in the state directory
	data []byte
	err  error // why it was not read
}

// readMarkers reads the markers in the state directory d.
func readMarkers(d *os.File) ([]storedMarker, error) {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("drill state directory %s: %w", d.Name(), err)
	}
	var out []storedMarker
	for _, name := range names {
		if !markerName.MatchString(name) {
			continue // atomicfile's .NAME.tmp-* and anything else
		}
		b, err := readMarker(d, name)
		out = append(out, storedMarker{name: name, data: b, err: err})
	}
	return out, nil
}

// readMarker opens name in d without following a symbolic link, and reads
// it only if it is a regular file owned by us.
func readMarker(d *os.File, name string) ([]byte, error) {
	fd, err := syscall.Openat(int(d.Fd()), name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errors.New("it is a symbolic link")
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.Name(), name))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("it is not a regular file (%v)", fi.Mode().Type())
	case st == nil || int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("it is owned by uid %d, not by you", st.Uid)
	case fi.Size() > maxMarker:
		return nil, fmt.Errorf("it is %d bytes long, not a marker", fi.Size())
	}
	return io.ReadAll(io.LimitReader(f, maxMarker))
}
