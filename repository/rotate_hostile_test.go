package repository

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
)

// TestHostileOldKeysAfterRotation: whoever kept an earlier generation's
// writer key (a removed operator, an old backup host) and can write the
// storage cannot make the rotated repository accept anything: not a new
// snapshot, not a replaced carried one, not an audit record.
func TestHostileOldKeysAfterRotation(t *testing.T) {
	ctx := context.Background()
	be, op, r := newLocalRepo(t)
	honest := &Snapshot{Source: "shop", Host: "db1", Size: 0}
	id, err := r.SaveSnapshot(ctx, honest)
	if err != nil {
		t.Fatal(err)
	}
	old := r.wk
	if _, err := r.Rotate(ctx, RotateOptions{Operators: []age.Recipient{op.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	forge := func(kind, name string, v any) {
		t.Helper()
		plain, _ := json.Marshal(v)
		fid, ct, err := old.sealMeta(kind, plain)
		if err != nil {
			t.Fatal(err)
		}
		if name == "" {
			name = kindDir(kind) + "/" + fid.String()
		}
		if err := be.Put(ctx, name, ct, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	evil := &Snapshot{Version: FormatVersion, Source: "shop", Host: "attacker", Tags: []string{"evil"}}
	forge("snapshot", "", evil)                       // a new snapshot under its old-key name
	forge("snapshot", "snapshots/"+id.String(), evil) // the carried snapshot replaced
	forge("audit", auditName(r.clock(), ID{1}), &AuditRecord{Version: 1, Event: "restore", Actor: "mallory"})

	for _, who := range []string{"operator", "writer"} {
		rr, err := OpenRestorer(ctx, be, []age.Identity{op}, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if who == "writer" {
			if rr, err = OpenWriter(ctx, be, rr.wk); err != nil {
				t.Fatal(err)
			}
		}
		snaps, err := rr.Snapshots(ctx)
		for _, s := range snaps {
			if s.Host == "attacker" {
				t.Fatalf("%s: a snapshot forged with the old keys was accepted", who)
			}
		}
		if err == nil || strings.Count(err.Error(), "snapshots/") != 2 {
			t.Fatalf("%s: forged snapshots were not reported: %v", who, err)
		}
		if _, err := rr.LoadSnapshot(ctx, id); err == nil {
			t.Fatalf("%s: the replaced carried snapshot loaded", who)
		}
		_, problems, err := rr.AuditLog(ctx)
		if err != nil || len(problems) == 0 {
			t.Fatalf("%s: the forged audit record was not reported: %v %v", who, problems, err)
		}
	}
}

func kindDir(kind string) string {
	for _, d := range carriedDirs {
		if d.kind == kind {
			return d.dir
		}
	}
	return kind
}

// TestKeyRotationWAL: a rotation carries the WAL archive over: what was
// archived before it is still fetched, what an old-key holder archives
// after it is refused, and re-encryption moves every file to the new keys.
func TestKeyRotationWAL(t *testing.T) {
	ctx := context.Background()
	be, op, r := newLocalRepo(t)
	const before, after = "000000010000000000000001", "000000010000000000000002"
	if _, err := r.PushWAL(ctx, before, []byte("archived before")); err != nil {
		t.Fatal(err)
	}
	oldRepo := *r
	if _, err := r.Rotate(ctx, RotateOptions{Operators: []age.Recipient{op.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	// Someone who kept the old keys archives a file of their own.
	if _, err := oldRepo.PushWAL(ctx, "000000010000000000000009", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PushWAL(ctx, after, []byte("archived after")); err != nil {
		t.Fatal(err)
	}
	open := func() *Repo {
		rr, err := OpenRestorer(ctx, be, []age.Identity{op}, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rr
	}
	rr := open()
	for file, want := range map[string]string{before: "archived before", after: "archived after"} {
		if got, err := rr.FetchWAL(ctx, file); err != nil || string(got) != want {
			t.Fatalf("fetch %s after the rotation: %q %v", file, got, err)
		}
	}
	if _, err := rr.FetchWAL(ctx, "000000010000000000000009"); err == nil || !strings.Contains(err.Error(), "forged") {
		t.Fatalf("a WAL file archived with the old keys after the rotation: %v", err)
	}
	rep, err := rr.Reencrypt(ctx, ReencryptOptions{})
	if err != nil || rep.WAL != 1 || len(rep.Retired) != 1 {
		t.Fatalf("reencrypt: %+v %v", rep, err)
	}
	files, _, _ := rr.WALFiles(ctx)
	for _, f := range files {
		if f.Generation != 2 && f.File != "000000010000000000000009" {
			t.Fatalf("%s is still of generation %d", f.Name(), f.Generation)
		}
	}
	if got, err := open().FetchWAL(ctx, before); err != nil || string(got) != "archived before" {
		t.Fatalf("fetch after re-encryption: %q %v", got, err)
	}
}

// newLocalRepo initialises a repository in a temporary directory for one
// operator, opened with the operator's identity.
func newLocalRepo(t *testing.T) (storage.Backend, *age.X25519Identity, *Repo) {
	t.Helper()
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := age.GenerateX25519Identity()
	r, err := Init(context.Background(), be, InitOptions{Operators: []age.Recipient{op.Recipient()}})
	if err != nil {
		t.Fatal(err)
	}
	return be, op, r
}

// TestKeyRotationCarriedLazy: the carried list is read only when an
// object needs it. With the list made unreadable after a rotation, a
// writer still opens and archives WAL, an object written under the
// current keys still loads, and only a carried object fails, naming the
// list.
func TestKeyRotationCarriedLazy(t *testing.T) {
	ctx := context.Background()
	be, op, r := newLocalRepo(t)
	carriedID, err := r.SaveSnapshot(ctx, &Snapshot{Source: "shop", Host: "db1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, RotateOptions{Operators: []age.Recipient{op.Recipient()}}); err != nil {
		t.Fatal(err)
	}
	list := r.cfg.Carried.Object
	ct, err := readBounded(ctx, be, list, MaxLargeMeta)
	if err != nil {
		t.Fatal(err)
	}
	ct[len(ct)/2] ^= 1
	if err := be.Delete(ctx, list); err != nil {
		t.Fatal(err)
	}
	if err := be.Put(ctx, list, ct, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(ctx, be, r.wk)
	if err != nil {
		t.Fatalf("a writer's open read the carried list: %v", err)
	}
	if _, err := w.PushWAL(ctx, "000000010000000000000003", []byte("after the rotation")); err != nil {
		t.Fatalf("wal-push read the carried list: %v", err)
	}
	fresh, err := w.SaveSnapshot(ctx, &Snapshot{Source: "shop", Host: "db1"})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := OpenRestorer(ctx, be, []age.Identity{op}, OpenOptions{})
	if err != nil {
		t.Fatalf("an operator's open read the carried list: %v", err)
	}
	if _, err := rr.LoadSnapshot(ctx, fresh); err != nil {
		t.Fatalf("a snapshot of the current keys needed the carried list: %v", err)
	}
	if _, err := rr.LoadSnapshot(ctx, carriedID); err == nil || !strings.Contains(err.Error(), "carried over") {
		t.Fatalf("a carried snapshot with the list unreadable: %v", err)
	}
}
