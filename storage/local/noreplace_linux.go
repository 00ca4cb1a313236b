package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames tmp to p unless p exists (renameat2 with
// RENAME_NOREPLACE); an existing p gives an error wrapping fs.ErrExist.
func renameNoReplace(tmp, p string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p, unix.RENAME_NOREPLACE); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: p, Err: err}
	}
	return nil
}
