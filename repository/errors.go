package repository

import "fmt"

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
	return msg + " (" + corruptRemedy + ")"
}

const corruptRemedy = "run `coffer check --read-data` to list every damaged object; restore an older snapshot or a replica of the repository"

// ErrorObject names the damaged object.
func (e *CorruptError) ErrorObject() string { return e.Object }

// ErrorRemedy says what to do about it.
func (e *CorruptError) ErrorRemedy() string { return corruptRemedy }

func (e *CorruptError) Unwrap() error { return e.Err }

// ErrNeedIdentity is returned when an operation needs the repository key and
// only the writer key was given.
var ErrNeedIdentity error = needIdentity{}

type needIdentity struct{}

func (needIdentity) Error() string {
	return "this needs an operator's age identity: the writer key can add backups but cannot read them; " + needIdentityRemedy
}

const needIdentityRemedy = "set COFFER_IDENTITY_FILE"

func (needIdentity) ErrorObject() string { return "COFFER_IDENTITY_FILE" }
func (needIdentity) ErrorRemedy() string { return needIdentityRemedy }

// UnsupportedVersionError reports a stored object from a newer format.
type UnsupportedVersionError struct {
	Object  string
	Version int
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("%s has format version %d, newer than this coffer understands (version %d): upgrade coffer", e.Object, e.Version, FormatVersion)
}

// ErrorObject names the object of the newer format.
func (e *UnsupportedVersionError) ErrorObject() string { return e.Object }

// ErrorRemedy says what to do about it.
func (e *UnsupportedVersionError) ErrorRemedy() string { return "upgrade coffer" }

// FormatVersion is the repository format version this code writes and reads.
const FormatVersion = 1
