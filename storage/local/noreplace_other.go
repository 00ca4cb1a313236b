//go:build !linux

package local

import (
	"errors"
	"os"
)

// renameNoReplace is only available on Linux; elsewhere the file system
// must support hard links.
func renameNoReplace(tmp, p string) error {
	return &os.LinkError{Op: "rename", Old: tmp, New: p, Err: errors.New("rename without replace is not available on this system")}
}
