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
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := age.GenerateX25519Identity()
	r, err := Init(ctx, be, InitOptions{Operators: []age.Recipient{op.Recipient()}})
	if err != nil {
		t.Fatal(err)
	}
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
