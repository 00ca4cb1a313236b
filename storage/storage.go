// Package storage defines the object store that a coffer repository lives
// in, and the errors its backends return. Backends are plain: storage/local
// keeps objects in a directory, storage/s3 in an S3-compatible bucket.
// Cross-cutting behaviour (retries) wraps a Backend rather than living in it.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("object not found")

// ErrLocked is returned (wrapped) when an object cannot be deleted or
// overwritten because its retention (S3 Object Lock) has not expired.
var ErrLocked = errors.New("object is under retention")

// ErrExists is returned (wrapped) by a Put with PutOptions.NoOverwrite
// when an object of that name is already stored. The stored object is left
// as it was; whether it holds the same content is for the caller to judge.
var ErrExists = errors.New("object already exists")

// ErrUnsupported is returned (wrapped) by operations the backend cannot
// perform, such as retention on a local directory.
var ErrUnsupported = errors.New("operation not supported by this backend")

// Info describes one stored object.
type Info struct {
	Name    string    // full object name, relative to the repository root
	Size    int64     // bytes
	ModTime time.Time // last modification, as the backend reports it
}

// PutOptions are optional settings for Put.
type PutOptions struct {
	// RetainUntil, when non-zero, locks the object against deletion and
	// overwrite until that time (S3 Object Lock). Backends that cannot lock
	// return ErrUnsupported.
	RetainUntil time.Time
	// NoOverwrite makes the put conditional: when an object of that name
	// exists, Put stores nothing and returns ErrExists. The check and the
	// write are one atomic step of the store (S3 If-None-Match: *, a hard
	// link on a local directory), so two writers cannot both succeed.
	NoOverwrite bool
}

// Backend is an object store. Object names use "/" as separator and never
// start with "/". Implementations must make Put atomic: an object is either
// absent or complete under its final name, never partial.
type Backend interface {
	// Put stores data under name, replacing any existing object unless
	// opts.NoOverwrite is set.
	Put(ctx context.Context, name string, data []byte, opts PutOptions) error
	// Get calls fn with a reader of length bytes of the object starting at
	// offset. length <= 0 reads to the end. fn's error is returned as is;
	// the reader is only valid during fn, so a failed read can be retried
	// by calling Get again.
	Get(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error
	// Stat describes one object.
	Stat(ctx context.Context, name string) (Info, error)
	// List calls fn for every object whose name starts with prefix, in no
	// particular order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes an object. Deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// Location names the store for messages, e.g. "s3://bucket/prefix".
	Location() string
}

// Retainer is implemented by backends that support object retention.
type Retainer interface {
	// SetRetention extends the retain-until date of an existing object.
	// It never shortens a retention.
	SetRetention(ctx context.Context, name string, until time.Time) error
	// Retention returns the object's retain-until date (zero when none).
	Retention(ctx context.Context, name string) (time.Time, error)
}

// ReadAll returns the whole object.
func ReadAll(ctx context.Context, b Backend, name string) ([]byte, error) {
	return ReadRange(ctx, b, name, 0, 0)
}

// ReadRange returns length bytes of an object from offset (length <= 0: to
// the end), failing if the object is shorter than asked.
func ReadRange(ctx context.Context, b Backend, name string, offset, length int64) ([]byte, error) {
	var out []byte
	err := b.Get(ctx, name, offset, length, func(r io.Reader) error {
		var err error
		if length <= 0 {
			out, err = io.ReadAll(r)
			return err
		}
		// A known length is read into one buffer of that size: growing
		// one as io.ReadAll does copies a pack range several times over.
		out = make([]byte, length)
		n, err := io.ReadFull(r, out)
		out = out[:n]
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil // a short object: reported below
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if length > 0 && int64(len(out)) != length {
		return nil, fmt.Errorf("read %s at %d: got %d bytes, want %d: %w", name, offset, len(out), length, io.ErrUnexpectedEOF)
	}
	return out, nil
}

// Unwrapper is implemented by backends that wrap another (retries).
type Unwrapper interface {
	Unwrap() Backend
}

// Find returns the first backend in b's chain of wrappers that implements
// T, such as Retainer.
func Find[T any](b Backend) (T, bool) {
	for {
		if t, ok := b.(T); ok {
			return t, true
		}
		u, ok := b.(Unwrapper)
		if !ok {
			var zero T
			return zero, false
		}
		b = u.Unwrap()
	}
}
