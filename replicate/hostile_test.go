package replicate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/replicate"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
)

func plant(t *testing.T, be storage.Backend, name string, data []byte) {
	t.Helper()
	if err := be.Put(context.Background(), name, data, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestHostileCopyPlantedMetadata: a snapshot sealed with another
// repository's keys and a forged audit record, planted in the source, are
// named and not carried; the genuine snapshot is.
func TestHostileCopyPlantedMetadata(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	good := backupBytes(t, src.Writer, synth.Bytes(6, 1<<20), "shop")
	evil := repotest.New(t, localBackend(t), repository.InitOptions{})
	forged := backupBytes(t, evil.Writer, synth.Bytes(7, 1<<20), "shop")
	forgedName := "snapshots/" + forged.ID().String()
	ct, err := storage.ReadAll(ctx, evil.Backend, forgedName)
	if err != nil {
		t.Fatal(err)
	}
	plant(t, src.Backend, forgedName, ct)
	auditName := fmt.Sprintf("audit/%020d-%s", time.Now().UnixNano(), strings.Repeat("ab", 32))
	plant(t, src.Backend, auditName, []byte("not an age file"))

	dst := localBackend(t)
	var warned []string
	sum := copyTo(t, src.Writer, dst, replicate.Options{Warn: func(err error) { warned = append(warned, err.Error()) }})
	all := strings.Join(sum.Refused, "\n")
	for _, name := range []string{forgedName, auditName} {
		if !strings.Contains(all, name) {
			t.Errorf("the planted %s was not named as refused: %q", name, all)
		}
		if _, err := dst.Stat(ctx, name); err == nil {
			t.Errorf("the planted %s was copied", name)
		}
	}
	if len(warned) != len(sum.Refused) {
		t.Errorf("warned %d times for %d refusals", len(warned), len(sum.Refused))
	}
	cp := openCopy(t, dst, src.Identity)
	if restored(t, cp, good.ID()) == [32]byte{} {
		t.Fatal("unreachable")
	}
	checkClean(t, cp)
}

// TestHostileCopyDamagedPack: a pack whose bytes no longer match its name
// is not carried, the copy fails naming it, and no snapshot reaches the
// destination without its pack.
func TestHostileCopyDamagedPack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be := mustLocal(t, dir)
	src := repotest.New(t, be, repository.InitOptions{})
	backupBytes(t, src.Writer, synth.Bytes(8, 1<<20), "shop")
	var pack string
	for name := range listNames(t, be, "data/") {
		pack = name
	}
	path := filepath.Join(dir, filepath.FromSlash(pack))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := localBackend(t)
	_, err = replicate.Copy(ctx, src.Writer, dst, replicate.Options{})
	if err == nil || !strings.Contains(err.Error(), pack) {
		t.Fatalf("copy of a damaged pack: %v, want an error naming %s", err, pack)
	}
	if got := listNames(t, dst, "data/"); len(got) != 0 {
		t.Fatalf("the damaged pack was copied: %v", got)
	}
	if got := listNames(t, dst, "snapshots/"); len(got) != 0 {
		t.Fatalf("a snapshot reached the destination without its pack: %v", got)
	}
}

// TestHostileCopyTamperedDestination: a destination object under a
// snapshot's name with other bytes is found and named, not trusted.
func TestHostileCopyTamperedDestination(t *testing.T) {
	src := repotest.New(t, localBackend(t), repository.InitOptions{})
	s := backupBytes(t, src.Writer, synth.Bytes(9, 1<<20), "shop")
	dst := localBackend(t)
	copyTo(t, src.Writer, dst, replicate.Options{})
	name := "snapshots/" + s.ID().String()
	if err := dst.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	plant(t, dst, name, []byte("junk"))
	_, err := replicate.Copy(context.Background(), src.Writer, dst, replicate.Options{})
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("copy onto a tampered destination: %v, want an error naming %s", err, name)
	}
}

func mustLocal(t *testing.T, dir string) storage.Backend {
	t.Helper()
	be, err := localOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func localOpen(dir string) (storage.Backend, error) { return local.Open(dir, true) }
