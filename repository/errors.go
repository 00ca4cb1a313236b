package repository

import (
	"errors"
	"fmt"
)

// CorruptError reports a stored object that failed verification: it could not
// be decrypted, decoded, or it does not match its name or checksum.
type CorruptError struct {
	Object string // the object's name in the repository
	Reason string // what failed
	Err    error  // the underlying error, if any
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("%s is damaged: %s", e.Object, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + " (run `coffer check --read-data` to list every damaged object; restore an older snapshot or a replica of the repository)"
}

func (e *CorruptError) Unwrap() error { return e.Err }

// ErrNeedIdentity is returned when an operation needs the repository key and
// only the writer key was given.
var ErrNeedIdentity = errors.New("this needs an operator's age identity: the writer key can add backups but cannot read them; set COFFER_IDENTITY_FILE")

// UnsupportedVersionError reports a stored object from a newer format.
type UnsupportedVersionError struct {
	Object  string
	Version int
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("%s has format version %d, newer than this coffer understands (version %d): upgrade coffer", e.Object, e.Version, FormatVersion)
}

// FormatVersion is the repository format version this code writes and reads.
const FormatVersion = 1
