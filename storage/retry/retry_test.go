package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
	"github.com/coffer-backup/coffer/storage/retry"
)

// errTransient stands for a reset connection: not permanent, so retried.
var errTransient = errors.New("connection reset by peer")

// fault makes the next n calls of one operation fail with err.
type fault struct {
	n   int
	err error
}

// flaky wraps a real backend and fails calls as its faults say. A Get
// fault fails inside fn, after part of the object was read; a List fault
// fails after listAfter objects were handed to fn.
type flaky struct {
	storage.Backend
	mu        sync.Mutex
	faults    map[string]*fault
	calls     map[string]int
	listAfter int
	onCall    func(op string) // called before each operation, if set
}

func newFlaky(t *testing.T) *flaky {
	t.Helper()
	be, err := local.Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	return &flaky{Backend: be, faults: map[string]*fault{}, calls: map[string]int{}}
}

// failNext makes the next n calls of op fail with err.
func (f *flaky) failNext(op string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = &fault{n: n, err: err}
}

// call counts a call of op and returns the error it must fail with, if any.
func (f *flaky) call(op string) error {
	f.mu.Lock()
	f.calls[op]++
	hook := f.onCall
	var err error
	if ft := f.faults[op]; ft != nil && ft.n > 0 {
		ft.n--
		err = ft.err
	}
	f.mu.Unlock()
	if hook != nil {
		hook(op)
	}
	return err
}

func (f *flaky) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *flaky) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	if err := f.call("put"); err != nil {
		return err
	}
	return f.Backend.Put(ctx, name, data, opts)
}

func (f *flaky) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := f.call("stat"); err != nil {
		return storage.Info{}, err
	}
	return f.Backend.Stat(ctx, name)
}

func (f *flaky) Delete(ctx context.Context, name string) error {
	if err := f.call("delete"); err != nil {
		return err
	}
	return f.Backend.Delete(ctx, name)
}

// Get fails the way a cut connection does: fn gets the first bytes of the
// object, then an error.
func (f *flaky) Get(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	ferr := f.call("get")
	return f.Backend.Get(ctx, name, offset, length, func(r io.Reader) error {
		if ferr != nil {
			r = io.MultiReader(io.LimitReader(r, 3), errReader{ferr})
		}
		return fn(r)
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func (f *flaky) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	ferr := f.call("list")
	if ferr == nil {
		return f.Backend.List(ctx, prefix, fn)
	}
	seen := 0
	err := f.Backend.List(ctx, prefix, func(i storage.Info) error {
		if seen == f.listAfter {
			return ferr
		}
		seen++
		return fn(i)
	})
	if err == nil && seen == f.listAfter {
		err = ferr // fewer objects than listAfter+1: fail at the end
	}
	return err
}

func put(t *testing.T, be storage.Backend, name, data string) {
	t.Helper()
	if err := be.Put(context.Background(), name, []byte(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRetryTransient(t *testing.T) {
	ops := map[string]func(ctx context.Context, be storage.Backend) error{
		"put": func(ctx context.Context, be storage.Backend) error {
			return be.Put(ctx, "data/new", []byte("fresh"), storage.PutOptions{})
		},
		"get": func(ctx context.Context, be storage.Backend) error {
			_, err := storage.ReadAll(ctx, be, "data/obj")
			return err
		},
		"stat": func(ctx context.Context, be storage.Backend) error {
			_, err := be.Stat(ctx, "data/obj")
			return err
		},
		"delete": func(ctx context.Context, be storage.Backend) error {
			return be.Delete(ctx, "data/obj")
		},
		"list": func(ctx context.Context, be storage.Backend) error {
			return be.List(ctx, "data/", func(storage.Info) error { return nil })
		},
	}
	for op, run := range ops {
		for _, tc := range []struct {
			name     string
			failures int
			wantErr  bool
		}{
			{"no failure", 0, false},
			{"one failure", 1, false},
			{"attempts-1 failures", 3, false},
			{"attempts failures", 4, true},
			{"more failures than attempts", 10, true},
		} {
			t.Run(op+"/"+tc.name, func(t *testing.T) {
				f := newFlaky(t)
				put(t, f.Backend, "data/obj", "stored object")
				f.failNext(op, tc.failures, errTransient)
				err := run(context.Background(), retry.New(f, 4, time.Millisecond))
				if tc.wantErr {
					if !errors.Is(err, errTransient) {
						t.Fatalf("err = %v, want the transient error after the last attempt", err)
					}
				} else if err != nil {
					t.Fatalf("err = %v, want success after retries", err)
				}
				want := min(tc.failures+1, 4)
				if got := f.count(op); got != want {
					t.Errorf("%s called %d times, want %d", op, got, want)
				}
			})
		}
	}
}

func TestRetryPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"not found", fmt.Errorf("data/obj: %w", storage.ErrNotFound)},
		{"locked", fmt.Errorf("delete data/obj: %w", storage.ErrLocked)},
		{"unsupported", fmt.Errorf("retention: %w", storage.ErrUnsupported)},
		{"canceled", fmt.Errorf("request: %w", context.Canceled)},
		{"deadline", fmt.Errorf("request: %w", context.DeadlineExceeded)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlaky(t)
			put(t, f.Backend, "data/obj", "stored object")
			be := retry.New(f, 5, time.Millisecond)
			ctx := context.Background()
			checks := map[string]func() error{
				"put": func() error { return be.Put(ctx, "data/obj", []byte("x"), storage.PutOptions{}) },
				"get": func() error { _, err := storage.ReadAll(ctx, be, "data/obj"); return err },
				"stat": func() error {
					_, err := be.Stat(ctx, "data/obj")
					return err
				},
				"delete": func() error { return be.Delete(ctx, "data/obj") },
				"list":   func() error { return be.List(ctx, "", func(storage.Info) error { return nil }) },
			}
			for op, run := range checks {
				f.failNext(op, 5, tc.err)
				if err := run(); !errors.Is(err, tc.err) {
					t.Errorf("%s: err = %v, want %v", op, err, tc.err)
				}
				if got := f.count(op); got != 1 {
					t.Errorf("%s: called %d times for a permanent error, want 1", op, got)
				}
			}
		})
	}
}

// TestRetryRealNotFound: a missing object from the real backend is not retried.
func TestRetryRealNotFound(t *testing.T) {
	f := newFlaky(t)
	be := retry.New(f, 5, time.Millisecond)
	_, err := storage.ReadAll(context.Background(), be, "data/missing")
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if _, err := be.Stat(context.Background(), "data/missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat err = %v, want ErrNotFound", err)
	}
	if f.count("get") != 1 || f.count("stat") != 1 {
		t.Errorf("get called %d times, stat %d times; want 1 each", f.count("get"), f.count("stat"))
	}
}

// TestRetryGetFreshReader: a read cut short is retried by calling fn again
// with a reader from the start of the range, not the rest of the old one.
func TestRetryGetFreshReader(t *testing.T) {
	f := newFlaky(t)
	content := "0123456789abcdefghij"
	put(t, f.Backend, "packs/p1", content)
	be := retry.New(f, 5, time.Millisecond)

	for _, tc := range []struct {
		name           string
		offset, length int64
		want           string
	}{
		{"whole object", 0, 0, content},
		{"range", 5, 10, content[5:15]},
		{"to the end", 12, 0, content[12:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.failNext("get", 2, errTransient)
			before := f.count("get")
			var reads []string
			err := be.Get(context.Background(), "packs/p1", tc.offset, tc.length, func(r io.Reader) error {
				var buf bytes.Buffer
				_, err := io.Copy(&buf, r)
				reads = append(reads, buf.String())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(reads) != 3 || f.count("get")-before != 3 {
				t.Fatalf("fn called %d times, Get %d times; want 3 each", len(reads), f.count("get")-before)
			}
			for i, got := range reads[:2] {
				if got != tc.want[:3] {
					t.Errorf("failed read %d saw %q, want the first 3 bytes %q", i, got, tc.want[:3])
				}
			}
			if reads[2] != tc.want {
				t.Errorf("final read %q, want %q", reads[2], tc.want)
			}
		})
	}
}

// TestRetryGetFnError: fn's own non-permanent error is retried too (Get
// retries the whole read, fn included), and returned as is at the end.
func TestRetryGetFnError(t *testing.T) {
	f := newFlaky(t)
	put(t, f.Backend, "packs/p1", "abc")
	be := retry.New(f, 3, time.Millisecond)
	calls := 0
	errFn := errors.New("decode failed")
	err := be.Get(context.Background(), "packs/p1", 0, 0, func(io.Reader) error {
		calls++
		return errFn
	})
	if err != errFn {
		t.Fatalf("err = %v, want fn's error as is", err)
	}
	if calls != 3 {
		t.Errorf("fn called %d times, want 3", calls)
	}
}

func TestRetryList(t *testing.T) {
	names := []string{"index/a", "index/b", "index/c"}
	for _, tc := range []struct {
		name      string
		listAfter int  // the failing listing fails after this many objects
		failures  int  // how many listings fail
		retried   bool // whether a failure is retried
	}{
		{"fails before the first object", 0, 2, true},
		{"fails after one object", 1, 1, false},
		{"fails after the last object", 3, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlaky(t)
			for _, n := range names {
				put(t, f.Backend, n, n)
			}
			f.listAfter = tc.listAfter
			f.failNext("list", tc.failures, errTransient)
			be := retry.New(f, 5, time.Millisecond)
			seen := map[string]int{}
			err := be.List(context.Background(), "index/", func(i storage.Info) error {
				seen[i.Name]++
				return nil
			})
			for n, k := range seen {
				if k > 1 {
					t.Errorf("fn saw %s %d times", n, k)
				}
			}
			if tc.retried {
				if err != nil {
					t.Fatalf("err = %v, want success after retries", err)
				}
				if got := f.count("list"); got != tc.failures+1 {
					t.Errorf("List called %d times, want %d", got, tc.failures+1)
				}
				var got []string
				for n := range seen {
					got = append(got, n)
				}
				sort.Strings(got)
				if fmt.Sprint(got) != fmt.Sprint(names) {
					t.Errorf("listed %v, want %v", got, names)
				}
				return
			}
			// The wrapper's internal marker must not leak: the error is the
			// backend's own.
			if err != errTransient {
				t.Fatalf("err = %v (%T), want the listing's error as is", err, err)
			}
			if got := f.count("list"); got != 1 {
				t.Errorf("List called %d times after fn saw objects, want 1", got)
			}
			if len(seen) != tc.listAfter {
				t.Errorf("fn saw %d objects, want %d", len(seen), tc.listAfter)
			}
		})
	}
}

// TestRetryListFnError: an error from fn stops the listing and is returned
// as is, without a retry.
func TestRetryListFnError(t *testing.T) {
	f := newFlaky(t)
	put(t, f.Backend, "index/a", "a")
	put(t, f.Backend, "index/b", "b")
	be := retry.New(f, 5, time.Millisecond)
	errFn := errors.New("bad index entry")
	calls := 0
	err := be.List(context.Background(), "index/", func(storage.Info) error {
		calls++
		return errFn
	})
	if err != errFn {
		t.Fatalf("err = %v (%T), want fn's error as is", err, err)
	}
	if calls != 1 || f.count("list") != 1 {
		t.Errorf("fn called %d times, List %d times; want 1 each", calls, f.count("list"))
	}
}

// TestRetryCancelDuringBackoff: cancelling the context ends the wait
// between attempts. The backoff is an hour, so a wait that ignored the
// context would hang the test rather than slow it.
func TestRetryCancelDuringBackoff(t *testing.T) {
	f := newFlaky(t)
	put(t, f.Backend, "data/obj", "x")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.failNext("stat", 100, errTransient)
	f.onCall = func(string) { cancel() }
	be := retry.New(f, 5, time.Hour)

	done := make(chan error, 1)
	go func() {
		_, err := be.Stat(ctx, "data/obj")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Stat succeeded; want an error")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want one that says the context was cancelled", err)
		}
		if !errors.Is(err, errTransient) {
			t.Errorf("err = %v, want one that keeps the last failure", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Stat still waiting a minute after its context was cancelled")
	}
	if got := f.count("stat"); got != 1 {
		t.Errorf("stat called %d times, want 1 (no attempt after the cancel)", got)
	}
}

// TestRetryCancelledBeforeStart: a context cancelled before the call is
// not retried.
func TestRetryCancelledBeforeStart(t *testing.T) {
	f := newFlaky(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	be := retry.New(f, 5, time.Millisecond)
	if err := be.Put(ctx, "data/obj", []byte("x"), storage.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := f.count("put"); got != 1 {
		t.Errorf("put called %d times, want 1", got)
	}
}

func TestRetryUnwrap(t *testing.T) {
	f := newFlaky(t)
	be := retry.New(f, 0, time.Millisecond) // attempts < 1 means one attempt
	if be.Unwrap() != storage.Backend(f) {
		t.Error("Unwrap does not return the wrapped backend")
	}
	f.failNext("delete", 1, errTransient)
	if err := be.Delete(context.Background(), "data/obj"); !errors.Is(err, errTransient) {
		t.Errorf("err = %v, want the single attempt's error", err)
	}
	if got := f.count("delete"); got != 1 {
		t.Errorf("delete called %d times, want 1", got)
	}
	if _, ok := storage.Find[*flaky](be); !ok {
		t.Error("storage.Find does not reach the wrapped backend")
	}
}
