// Package trust keeps an operator's pins: for each repository location the
// repository id and the writer key fingerprint this machine trusted first
// (trust on first use), so that a repository whose keys were replaced in
// storage is refused instead of believed.
//
// The pins live in one small JSON file, mode 0600, changed only under an
// exclusive lock (flock on FILE.lock) and replaced atomically, so that
// concurrent coffer processes neither lose a pin nor read a partial file.
// A file that cannot be parsed is an error, never an empty set of pins:
// treating it as empty would silently trust whatever storage holds now.
package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// fileVersion is the version of the trust file's format.
const fileVersion = 1

// Entry is one pinned repository.
type Entry struct {
	Location     string    `json:"location"`      // where the repository was opened
	RepositoryID string    `json:"repository_id"` // 32 hex digits
	Fingerprint  string    `json:"writer_key_fingerprint"`
	Pinned       time.Time `json:"pinned"`
}

type fileFormat struct {
	Version      int     `json:"version"`
	Comment      string  `json:"comment,omitempty"`
	Repositories []Entry `json:"repositories"`
}

var (
	idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	fpPattern = regexp.MustCompile(`^[0-9a-f]{4}(-[0-9a-f]{4}){7}$`)
)

// File is a trust file at Path.
type File struct {
	Path string
	Now  func() time.Time // the pin date; time.Now when nil
}

// MismatchError reports that a repository's id or writer key is not the
// one this machine pinned.
type MismatchError struct {
	Path   string // the trust file
	Pinned Entry  // what was trusted
	Found  Entry  // what the repository has now
}

func (e *MismatchError) Error() string {
	where := ""
	if e.Pinned.Location != e.Found.Location {
		where = fmt.Sprintf(" at %s", e.Pinned.Location)
	}
	return fmt.Sprintf("repository %s is not the one this machine trusts: found writer key fingerprint %s (repository id %s), "+
		"but %s pinned writer key fingerprint %s (repository id %s)%s on %s. Its keys may have been replaced by whoever can write the storage: "+
		"do not use it until you know why. If the change is legitimate (a new repository at this location, a key rotation), "+
		"confirm the new fingerprint with whoever made it and run `coffer key trust`, which shows both and pins the new one",
		e.Found.Location, e.Found.Fingerprint, e.Found.RepositoryID,
		e.Path, e.Pinned.Fingerprint, e.Pinned.RepositoryID, where, e.Pinned.Pinned.UTC().Format(time.RFC3339))
}

// ErrorObject names the repository.
func (e *MismatchError) ErrorObject() string { return e.Found.Location }

// ErrorRemedy says what to do about it.
func (e *MismatchError) ErrorRemedy() string {
	return "do not use it until you know why; if the change is legitimate, confirm the new fingerprint and run `coffer key trust`"
}

// Result says what Check did.
type Result int

// Results of Check.
const (
	Trusted Result = iota // the repository matches its pin
	Pinned                // first use: the repository was pinned now
)

// Check compares found with the pins. A repository seen for the first time
// is pinned (Pinned); one that matches its pin is Trusted; one whose pin at
// this location names another writer key or id, or that is new here but
// whose repository id is pinned elsewhere with another writer key, gives a
// *MismatchError and changes nothing.
func (f *File) Check(found Entry) (Result, error) {
	if err := validEntry(found); err != nil {
		return 0, err
	}
	// The usual case, a repository pinned and matching, only reads: an
	// identity on a read-only medium works without a lock file beside it.
	// Files are replaced atomically, so a read never sees half a file.
	if entries, err := f.read(); err == nil {
		for _, e := range entries {
			if e.Location == found.Location && conflict(entries, found) == nil {
				return Trusted, nil
			}
		}
	}
	res := Trusted
	err := f.update(func(entries []Entry) ([]Entry, error) {
		if old := conflict(entries, found); old != nil {
			return nil, &MismatchError{Path: f.Path, Pinned: *old, Found: found}
		}
		for _, e := range entries {
			if e.Location == found.Location {
				return nil, nil // trusted: nothing to write
			}
		}
		res = Pinned
		found.Pinned = f.now()
		return append(entries, found), nil
	})
	return res, err
}

// conflict returns the pin that found contradicts, or nil. The pin at
// found's location decides; a location seen for the first time must not
// contradict a pin of the same repository id elsewhere (a copy, another
// address of the same bucket).
func conflict(entries []Entry, found Entry) *Entry {
	for i, e := range entries {
		if e.Location == found.Location {
			if e.RepositoryID != found.RepositoryID || e.Fingerprint != found.Fingerprint {
				return &entries[i]
			}
			return nil
		}
	}
	for i, e := range entries {
		if e.RepositoryID == found.RepositoryID && e.Fingerprint != found.Fingerprint {
			return &entries[i]
		}
	}
	return nil
}

// Pin records e as trusted, replacing any pin at its location, and returns
// the pin it replaced (nil if none).
func (f *File) Pin(e Entry) (*Entry, error) {
	if err := validEntry(e); err != nil {
		return nil, err
	}
	var old *Entry
	err := f.update(func(entries []Entry) ([]Entry, error) {
		out := entries[:0:0]
		for _, x := range entries {
			if x.Location == e.Location {
				old = &x
				continue
			}
			out = append(out, x)
		}
		e.Pinned = f.now()
		return append(out, e), nil
	})
	return old, err
}

// Lookup returns the pin at location, or nil. It takes no lock: the file is
// only ever replaced whole.
func (f *File) Lookup(location string) (*Entry, error) {
	entries, err := f.read()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Location == location {
			return &e, nil
		}
	}
	return nil, nil
}

func (f *File) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC()
	}
	return time.Now().UTC()
}

// update runs edit on the pins under the file's lock and writes what it
// returns; a nil slice writes nothing.
func (f *File) update(edit func([]Entry) ([]Entry, error)) error {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("trust file %s: %w (set COFFER_TRUST_FILE to a writable path)", f.Path, err)
	}
	lock, err := os.OpenFile(f.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock trust file: %w (set COFFER_TRUST_FILE to a writable path)", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock trust file %s: %w", f.Path, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	entries, err := f.read()
	if err != nil {
		return err
	}
	next, err := edit(entries)
	if err != nil || next == nil {
		return err
	}
	b, err := json.MarshalIndent(fileFormat{
		Version:      fileVersion,
		Comment:      "repositories this operator trusts; change with `coffer key trust`",
		Repositories: next,
	}, "", "  ")
	if err != nil {
		return err
	}
	err = atomicfile.Write(f.Path, atomicfile.Options{Perm: 0o600}, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("write trust file %s: %w (set COFFER_TRUST_FILE to a writable path)", f.Path, err)
	}
	return nil
}

// read parses the file; a missing file holds no pins.
func (f *File) read() ([]Entry, error) {
	fh, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, f.damaged("not a regular file")
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("trust file %s is writable by other users (mode %v): anyone who can change it chooses which keys you trust; run chmod 600 %s and check its pins",
			f.Path, st.Mode().Perm(), f.Path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	var ff fileFormat
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ff); err != nil {
		return nil, f.damaged(err.Error())
	}
	if ff.Version != fileVersion {
		return nil, f.damaged(fmt.Sprintf("version %d, this coffer reads version %d", ff.Version, fileVersion))
	}
	for i, e := range ff.Repositories {
		if err := validEntry(e); err != nil {
			return nil, f.damaged(fmt.Sprintf("entry %d: %v", i+1, err))
		}
	}
	return ff.Repositories, nil
}

func (f *File) damaged(reason string) error {
	return fmt.Errorf("trust file %s is damaged (%s): coffer will not guess which repositories you trusted. "+
		"Restore it or repair it by hand; removing it makes the next open of each repository trust whatever keys it finds, "+
		"so compare the fingerprints coffer then prints with the ones `coffer init` printed", f.Path, reason)
}

func validEntry(e Entry) error {
	switch {
	case e.Location == "":
		return errors.New("no location")
	case !idPattern.MatchString(e.RepositoryID):
		return fmt.Errorf("repository id %q is not 32 hex digits", e.RepositoryID)
	case !fpPattern.MatchString(e.Fingerprint):
		return fmt.Errorf("writer key fingerprint %q is malformed", e.Fingerprint)
	}
	return nil
}
