// Package retry wraps a storage.Backend so that transient failures (a reset
// connection, a body cut short, a throttled request) are tried again with
// exponential backoff. Permanent answers (not found, locked, exists,
// unsupported, a cancelled context) are returned at once.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// Backend retries the operations of the backend it wraps.
type Backend struct {
	storage.Backend
	attempts int
	base     time.Duration
}

// New wraps b: each operation is tried up to attempts times, waiting base,
// 2·base, 4·base… (with jitter) in between.
func New(b storage.Backend, attempts int, base time.Duration) *Backend {
	if attempts < 1 {
		attempts = 1
	}
	return &Backend{Backend: b, attempts: attempts, base: base}
}

// Unwrap returns the wrapped backend (for Retainer and other extensions).
func (b *Backend) Unwrap() storage.Backend { return b.Backend }

func permanent(err error) bool {
	var stop *stopError
	return errors.As(err, &stop) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrLocked) ||
		errors.Is(err, storage.ErrExists) ||
		errors.Is(err, storage.ErrUnsupported) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

func (b *Backend) do(ctx context.Context, op func() error) error {
	var err error
	for i := 0; i < b.attempts; i++ {
		if i > 0 {
			d := b.base << (i - 1)
			d += time.Duration(rand.Int64N(int64(d)/2 + 1))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				// Keep both: callers check for cancellation, people read
				// why the attempts were failing.
				return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
			case <-t.C:
			}
		}
		err = op()
		if err == nil || permanent(err) {
			return err
		}
	}
	return err
}

// Put retries a failed upload; Put is idempotent. A conditional put
// (NoOverwrite) whose first attempt was stored but whose answer was lost
// meets its own object on the retry and returns storage.ErrExists: callers
// of conditional puts decide whether the stored object is theirs.
func (b *Backend) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	return b.do(ctx, func() error { return b.Backend.Put(ctx, name, data, opts) })
}

// Get retries the whole read, fn included: fn must be safe to call again
// (it reads the object into memory or a position it can rewind).
func (b *Backend) Get(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	return b.do(ctx, func() error { return b.Backend.Get(ctx, name, offset, length, fn) })
}

// Stat retries a failed stat.
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	var info storage.Info
	err := b.do(ctx, func() error {
		var err error
		info, err = b.Backend.Stat(ctx, name)
		return err
	})
	return info, err
}

// Delete retries a failed delete; deleting twice is harmless.
func (b *Backend) Delete(ctx context.Context, name string) error {
	return b.do(ctx, func() error { return b.Backend.Delete(ctx, name) })
}

// List is not retried once fn has been called, since fn would see objects
// twice; a listing that fails before its first object is retried.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	err := b.do(ctx, func() error {
		called := false
		err := b.Backend.List(ctx, prefix, func(i storage.Info) error {
			called = true
			return fn(i)
		})
		if err != nil && called {
			return &stopError{err}
		}
		return err
	})
	var stop *stopError
	if errors.As(err, &stop) {
		return stop.err
	}
	return err
}

type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }
