// Package storagetest is the conformance suite every storage.Backend must
// pass. A backend's tests call Run with a function that returns a fresh,
// empty backend.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// Run runs the suite; newBackend must return an empty backend each call.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Backend)
	}{
		{"PutGet", testPutGet},
		{"Ranges", testRanges},
		{"Overwrite", testOverwrite},
		{"NoOverwrite", testNoOverwrite},
		{"NoOverwriteRace", testNoOverwriteRace},
		{"Stat", testStat},
		{"List", testList},
		{"ListStops", testListStops},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"GetCallbackError", testGetCallbackError},
		{"CancelledPut", testCancelledPut},
		{"Large", testLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend(t)) })
	}
}

// Bytes returns n deterministic pseudo-random bytes.
func Bytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// put stores data or fails the test.
func put(t *testing.T, b storage.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Put(ctxFor(t), name, data, storage.PutOptions{}); err != nil {
		t.Fatalf("Put %s: %v", name, err)
	}
}

// mustRead reads a range or fails the test.
func mustRead(t *testing.T, b storage.Backend, name string, off, n int64) []byte {
	t.Helper()
	got, err := storage.ReadRange(ctxFor(t), b, name, off, n)
	if err != nil {
		t.Fatalf("Get %s [%d,+%d): %v", name, off, n, err)
	}
	return got
}

func testPutGet(t *testing.T, b storage.Backend) {
	data := Bytes(1, 4096)
	put(t, b, "data/ab/abcdef", data)
	if got := mustRead(t, b, "data/ab/abcdef", 0, 0); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want the %d put", len(got), len(data))
	}
	put(t, b, "empty", nil)
	if got := mustRead(t, b, "empty", 0, 0); len(got) != 0 {
		t.Fatalf("empty object read back as %d bytes", len(got))
	}
}

func testRanges(t *testing.T, b storage.Backend) {
	data := Bytes(2, 1000)
	put(t, b, "obj", data)
	for _, tc := range []struct {
		name        string
		off, length int64
		want        []byte
	}{
		{"whole", 0, 0, data},
		{"whole negative length", 0, -1, data},
		{"head", 0, 10, data[:10]},
		{"middle", 100, 250, data[100:350]},
		{"tail exactly", 990, 10, data[990:]},
		{"last byte", 999, 1, data[999:]},
		{"offset to end", 400, 0, data[400:]},
		{"offset to end negative", 400, -5, data[400:]},
		{"offset at the end", 1000, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustRead(t, b, "obj", tc.off, tc.length); !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d bytes of the object from %d", len(got), len(tc.want), tc.off)
			}
		})
	}
}

func testOverwrite(t *testing.T, b storage.Backend) {
	put(t, b, "config", Bytes(3, 500))
	v2 := Bytes(4, 123)
	put(t, b, "config", v2)
	if got := mustRead(t, b, "config", 0, 0); !bytes.Equal(got, v2) {
		t.Fatalf("after overwrite read %d bytes, want the second version's %d", len(got), len(v2))
	}
	st, err := b.Stat(ctxFor(t), "config")
	if err != nil || st.Size != int64(len(v2)) {
		t.Fatalf("Stat after overwrite = %+v, %v; want size %d", st, err, len(v2))
	}
}

// testNoOverwrite: a conditional put stores a new name, refuses a taken
// one with ErrExists (same bytes or not) and leaves the stored object and
// the listing as they were.
func testNoOverwrite(t *testing.T, b storage.Backend) {
	ctx := ctxFor(t)
	first := Bytes(20, 3000)
	if err := b.Put(ctx, "data/3c/3c01", first, storage.PutOptions{NoOverwrite: true}); err != nil {
		t.Fatalf("conditional Put of a new name: %v", err)
	}
	for _, data := range [][]byte{Bytes(21, 10), first} {
		err := b.Put(ctx, "data/3c/3c01", data, storage.PutOptions{NoOverwrite: true})
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("conditional Put over an existing object = %v, want ErrExists", err)
		}
		if !strings.Contains(err.Error(), "data/3c/3c01") {
			t.Errorf("the error does not name the object: %v", err)
		}
	}
	if got := mustRead(t, b, "data/3c/3c01", 0, 0); !bytes.Equal(got, first) {
		t.Fatalf("after refused puts read %d bytes, want the first object's %d", len(got), len(first))
	}
	var names []string
	if err := b.List(ctx, "data/", func(i storage.Info) error { names = append(names, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"data/3c/3c01"}) {
		t.Errorf("after refused puts the listing is %q, want only data/3c/3c01", names)
	}
	// A plain put still replaces (config is rewritten by key add/remove).
	put(t, b, "data/3c/3c01", Bytes(22, 5))
}

// testNoOverwriteRace: of several conditional puts of one name at once,
// exactly one succeeds and its bytes are what is stored.
func testNoOverwriteRace(t *testing.T, b storage.Backend) {
	ctx := ctxFor(t)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Put(ctx, "index/race", Bytes(uint64(30+i), 2000+i), storage.PutOptions{NoOverwrite: true})
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("conditional puts %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Fatalf("conditional put %d: %v, want success or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no conditional put succeeded")
	}
	if got := mustRead(t, b, "index/race", 0, 0); !bytes.Equal(got, Bytes(uint64(30+winner), 2000+winner)) {
		t.Fatalf("stored %d bytes, not the winning put's", len(got))
	}
}

func testStat(t *testing.T, b storage.Backend) {
	before := time.Now().Add(-time.Minute)
	put(t, b, "snapshots/s1", Bytes(5, 777))
	st, err := b.Stat(ctxFor(t), "snapshots/s1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "snapshots/s1" || st.Size != 777 {
		t.Errorf("Stat = %+v, want name snapshots/s1 size 777", st)
	}
	if st.ModTime.Before(before) || st.ModTime.After(time.Now().Add(time.Minute)) {
		t.Errorf("ModTime %v is not about now", st.ModTime)
	}
}

func testList(t *testing.T, b storage.Backend) {
	sizes := map[string]int64{
		"config": 1, "data/ab/ab01": 10, "data/ab/ab02": 20, "data/cd/cd01": 30,
		"dataX": 2, "index/ix1": 40, "snapshots/s1": 50,
	}
	for name, n := range sizes {
		put(t, b, name, Bytes(uint64(n), int(n)))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"config", "data/ab/ab01", "data/ab/ab02", "data/cd/cd01", "dataX", "index/ix1", "snapshots/s1"}},
		{"data/", []string{"data/ab/ab01", "data/ab/ab02", "data/cd/cd01"}},
		{"data/ab/", []string{"data/ab/ab01", "data/ab/ab02"}},
		{"data/a", []string{"data/ab/ab01", "data/ab/ab02"}},
		{"index/", []string{"index/ix1"}},
		{"nothing/", nil},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			var got []string
			err := b.List(ctxFor(t), tc.prefix, func(fi storage.Info) error {
				got = append(got, fi.Name)
				if fi.Size != sizes[fi.Name] {
					t.Errorf("%s: size %d, want %d", fi.Name, fi.Size, sizes[fi.Name])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
}

func testListStops(t *testing.T, b storage.Backend) {
	put(t, b, "data/1", []byte("a"))
	put(t, b, "data/2", []byte("b"))
	stop := errors.New("stop")
	calls := 0
	err := b.List(ctxFor(t), "data/", func(storage.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List returned %v after %d calls; want fn's error after 1", err, calls)
	}
}

func testDelete(t *testing.T, b storage.Backend) {
	ctx := ctxFor(t)
	put(t, b, "data/ab/x", []byte("x"))
	put(t, b, "data/ab/xy", []byte("xy"))
	for i := 0; i < 2; i++ { // the second time the object is already gone
		if err := b.Delete(ctx, "data/ab/x"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := b.Stat(ctx, "data/ab/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "data/ab/xy"); err != nil {
		t.Fatalf("Delete removed a neighbour sharing its prefix: %v", err)
	}
	if err := b.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("Delete of a missing object: %v", err)
	}
}

func testNotFound(t *testing.T, b storage.Backend) {
	ctx := ctxFor(t)
	err := b.Get(ctx, "data/zz/missing", 0, 0, func(io.Reader) error { return nil })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of a missing object: %v, want ErrNotFound", err)
	}
	if _, err := storage.ReadRange(ctx, b, "missing", 10, 5); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ranged Get of a missing object: %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a missing object: %v, want ErrNotFound", err)
	}
}

func testGetCallbackError(t *testing.T, b storage.Backend) {
	put(t, b, "obj", []byte("hello"))
	want := errors.New("callback failed")
	if err := b.Get(ctxFor(t), "obj", 0, 0, func(io.Reader) error { return want }); err != want {
		t.Fatalf("Get returned %v, want fn's error as is", err)
	}
}

func testCancelledPut(t *testing.T, b storage.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Put(ctx, "data/cancelled", Bytes(6, 1000), storage.PutOptions{}); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if _, err := b.Stat(ctxFor(t), "data/cancelled"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat after a cancelled Put: %v, want ErrNotFound", err)
	}
	var names []string
	b.List(ctxFor(t), "", func(fi storage.Info) error { names = append(names, fi.Name); return nil })
	if len(names) != 0 {
		t.Fatalf("a cancelled Put left %q", names)
	}
}

func testLarge(t *testing.T, b storage.Backend) {
	const size = 20 << 20
	data := Bytes(7, size)
	put(t, b, "data/large", data)
	if got := mustRead(t, b, "data/large", 0, 0); !bytes.Equal(got, data) {
		t.Fatalf("20 MiB object read back as %d different bytes", len(got))
	}
	off := int64(size - 3<<20 + 17)
	if got := mustRead(t, b, "data/large", off, 1<<20); !bytes.Equal(got, data[off:off+1<<20]) {
		t.Fatal("1 MiB range near the end differs")
	}
	if got := mustRead(t, b, "data/large", off, 0); !bytes.Equal(got, data[off:]) {
		t.Fatal("read from offset to the end differs")
	}
	st, err := b.Stat(ctxFor(t), "data/large")
	if err != nil || st.Size != size {
		t.Fatalf("Stat = %+v, %v; want size %d", st, err, size)
	}
}
