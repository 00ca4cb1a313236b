package repository_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
	"github.com/coffer-backup/coffer/storage/retry"
)

// lostAnswers stores every put, then (once per name) reports a reset
// connection, as when the server's answer is lost: the retry meets the
// object its first attempt stored. It counts the puts made without
// NoOverwrite.
type lostAnswers struct {
	storage.Backend
	mu    sync.Mutex
	seen  map[string]bool
	plain []string
}

func (l *lostAnswers) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	if err := l.Backend.Put(ctx, name, data, opts); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !opts.NoOverwrite {
		l.plain = append(l.plain, name)
	}
	if l.seen[name] {
		return nil
	}
	l.seen[name] = true
	return errors.New("read tcp 127.0.0.1:9000: connection reset by peer")
}

// TestNoOverwriteRetriedPuts: with every put's answer lost once, two
// nights of backups (the second reusing and adding packs) succeed, every
// object is put conditionally, and check --read-data passes.
func TestNoOverwriteRetriedPuts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := local.Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{PackSize: 1 << 20})
	lost := &lostAnswers{Backend: be, seen: map[string]bool{}}
	w, err := repository.OpenWriter(ctx, retry.New(lost, 3, time.Millisecond), r.Key)
	if err != nil {
		t.Fatal(err)
	}
	night1 := synth.Bytes(12, 3<<20)
	if _, err := backup.Run(ctx, w, bytes.NewReader(night1), backup.Options{Source: "db"}); err != nil {
		t.Fatalf("night 1 with lost answers: %v", err)
	}
	night2 := append(append([]byte(nil), night1...), synth.Bytes(13, 2<<20)...)
	sum, err := backup.Run(ctx, w, bytes.NewReader(night2), backup.Options{Source: "db"})
	if err != nil {
		t.Fatalf("night 2 with lost answers: %v", err)
	}
	if sum.ChunksNew == 0 || sum.ChunksNew >= sum.ChunksTotal {
		t.Errorf("night 2 stored %d of %d chunks new, want some reused and some new", sum.ChunksNew, sum.ChunksTotal)
	}
	if len(lost.seen) == 0 {
		t.Fatal("no put went through the backend")
	}
	// Locks are the one object a backup stores again under its name, to
	// refresh it (the storage's time of the object is its refresh time).
	var plain []string
	for _, name := range lost.plain {
		if !strings.HasPrefix(name, "locks/") {
			plain = append(plain, name)
		}
	}
	if len(plain) > 0 {
		t.Errorf("the backups made puts that may overwrite: %q", plain)
	}
	rep, err := r.Restorer.Check(ctx, repository.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check --read-data after retried puts: %v %+v", err, rep)
	}
}

// TestHostileObjectUnderMetadataName: an object planted under the name a
// record is stored as (junk, or another authentic record copied there) is
// never replaced: saving the record again fails, naming the object, and
// the planted bytes stay. Saving over the genuine record succeeds.
func TestHostileObjectUnderMetadataName(t *testing.T) {
	ctx := context.Background()
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{})
	rec := map[string]string{"verdict": "pass", "source": "shop"}
	id, err := r.Writer.SaveRecord(ctx, "drill", "drills", rec)
	if err != nil {
		t.Fatal(err)
	}
	name := "drills/" + id.String()
	genuine, err := storage.ReadAll(ctx, be, name)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r.Writer.SaveRecord(ctx, "drill", "drills", rec); err != nil || again != id {
		t.Fatalf("saving the same record again = %v, %v; want %v, nil", again, err, id)
	}
	if got, _ := storage.ReadAll(ctx, be, name); !bytes.Equal(got, genuine) {
		t.Fatal("saving the same record again replaced the stored object")
	}

	otherID, err := r.Writer.SaveRecord(ctx, "drill", "drills", map[string]string{"verdict": "fail"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := storage.ReadAll(ctx, be, "drills/"+otherID.String())
	if err != nil {
		t.Fatal(err)
	}
	for what, planted := range map[string][]byte{"junk": []byte("not a coffer object"), "another record": other} {
		if err := be.Put(ctx, name, planted, storage.PutOptions{}); err != nil { // the attacker's plain put
			t.Fatal(err)
		}
		_, err := r.Writer.SaveRecord(ctx, "drill", "drills", rec)
		if !errors.Is(err, storage.ErrExists) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s under %s: save = %v, want ErrExists naming the object", what, name, err)
		}
		if got, _ := storage.ReadAll(ctx, be, name); !bytes.Equal(got, planted) {
			t.Errorf("%s under %s: the refused save replaced it", what, name)
		}
	}
}
