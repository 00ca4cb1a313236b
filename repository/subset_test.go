package repository_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// readLog is a backend that records which packs are read.
type readLog struct {
	storage.Backend
	mu    sync.Mutex
	packs map[string]int
}

func (l *readLog) Get(ctx context.Context, name string, off, n int64, fn func(io.Reader) error) error {
	if strings.HasPrefix(name, "data/") {
		l.mu.Lock()
		l.packs[name]++
		l.mu.Unlock()
	}
	return l.Backend.Get(ctx, name, off, n, fn)
}

func TestSubsetSlicesReadEachPackOnce(t *testing.T) {
	tr := pruneRepo(t)
	for i := range 8 {
		snap(t, tr.Writer, []byte(strings.Repeat(fmt.Sprintf("row %d\n", i), 2000)), "db")
	}
	ctx := context.Background()
	log := &readLog{Backend: tr.Backend, packs: map[string]int{}}
	r, err := repository.OpenRestorer(ctx, log, []age.Identity{tr.Identity}, repository.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clear(log.packs)
	total := 0
	for n := 1; n <= 3; n++ {
		sub, err := repository.ParseSubset(fmt.Sprintf("%d/3", n))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Check(ctx, repository.CheckOptions{ReadData: true, Subset: sub})
		if err != nil || !rep.OK() {
			t.Fatalf("check %d/3: %v %+v", n, err, rep)
		}
		total = rep.Packs
	}
	if total < 6 {
		t.Fatalf("%d packs: too few to show the slices", total)
	}
	if len(log.packs) != total {
		t.Errorf("slices read %d distinct packs of %d", len(log.packs), total)
	}
	for name, n := range log.packs {
		if n != 1 {
			t.Errorf("%s read %d times", name, n)
		}
	}
}
