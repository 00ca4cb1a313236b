package auditlog_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/auditlog"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/repository/repotest"
	"github.com/coffer-backup/coffer/storage/local"
)

// keyLog is a repository whose repository key is rotated: gens[i] is the
// repository opened with generation i+1's key.
type keyLog struct {
	t    *testing.T
	r    *repotest.Repo
	gens []*repository.Repo
	ids  []*age.X25519Identity
	wk   *repository.WriterKey
}

func newKeyLog(t *testing.T) *keyLog {
	be, err := local.Open(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	r := repotest.New(t, be, repository.InitOptions{})
	return &keyLog{t: t, r: r, gens: []*repository.Repo{r.Restorer},
		ids: []*age.X25519Identity{repotest.RepositoryIdentity(t, be, r.Identity)}, wk: r.Key}
}

// pub is generation gen's audit public key (1 is the first).
func (k *keyLog) pub(gen int) ed25519.PublicKey {
	return repository.AuditKeyOf(k.ids[gen-1]).Public().(ed25519.PublicKey)
}

// append adds a record of event written with generation gen's key (0: the
// writer key).
func (k *keyLog) append(gen int, event string, detail map[string]string) {
	k.t.Helper()
	w := k.writer()
	if gen > 0 {
		w = k.gens[gen-1]
	}
	if err := w.AppendAudit(context.Background(), &repository.AuditRecord{Event: event, Actor: "alice", Host: "ops1", Detail: detail}); err != nil {
		k.t.Fatal(err)
	}
}

// rekey makes a new generation; with endorse it also appends the
// rotation's record as `coffer key rotate` does, its endorsement signed by
// endorser (nil: the previous audit key).
func (k *keyLog) rekey(endorse bool, endorser ed25519.PrivateKey) {
	k.t.Helper()
	r, wk, id := repotest.Rekey(k.t, k.r.Backend, k.r.Identity, k.wk)
	prev := repository.AuditKeyOf(k.ids[len(k.ids)-1])
	k.gens, k.ids, k.wk = append(k.gens, r), append(k.ids, id), wk
	if !endorse {
		return
	}
	gen := len(k.gens)
	detail := repository.RotationDetail(prev, k.pub(gen), gen)
	if endorser != nil {
		detail["endorsement"] = repository.RotationDetail(endorser, k.pub(gen), gen)["endorsement"]
	}
	k.append(gen, "key-change", detail)
}

// writer is the repository opened with the current writer key alone.
func (k *keyLog) writer() *repository.Repo {
	k.t.Helper()
	w, err := repository.OpenWriter(context.Background(), k.r.Backend, k.wk)
	if err != nil {
		k.t.Fatal(err)
	}
	return w
}

func (k *keyLog) records() []*repository.AuditRecord {
	k.t.Helper()
	recs, problems := k.log()
	if len(problems) > 0 {
		k.t.Fatalf("audit log: %v", problems)
	}
	return recs
}

// log returns the records and the problems of reading them.
func (k *keyLog) log() ([]*repository.AuditRecord, []repository.Problem) {
	k.t.Helper()
	recs, problems, err := k.writer().AuditLog(context.Background())
	if err != nil {
		k.t.Fatal(err)
	}
	return recs, problems
}

// TestVerifyKeyRotation: records signed by each generation's audit key
// verify when rotations endorsed by the key before link them, and a pin of
// an earlier key moves along such a chain only.
func TestVerifyKeyRotation(t *testing.T) {
	cases := []struct {
		name string
		log  func(k *keyLog)
		// want are parts of the problems; nil: the log verifies and a pin
		// of the first key moves to the last.
		want      []string
		rotations int
	}{
		{"one rotation", func(k *keyLog) {
			k.append(1, "restore", nil)
			k.append(0, "backup", nil)
			k.rekey(true, nil)
			k.append(2, "restore", nil)
			k.append(0, "backup", nil)
		}, nil, 1},
		{"two rotations", func(k *keyLog) {
			k.append(1, "restore", nil)
			k.rekey(true, nil)
			k.append(2, "drill", nil)
			k.rekey(true, nil)
			k.append(3, "restore", nil)
		}, nil, 2},
		{"old key used after the rotation", func(k *keyLog) {
			k.append(1, "restore", nil)
			k.rekey(true, nil)
			k.append(1, "restore", nil)
		}, []string{"not encrypted to this repository's metadata key", "altered or forged"}, 1},
		{"endorsement by another key", func(k *keyLog) {
			k.append(1, "restore", nil)
			_, other, _ := ed25519.GenerateKey(nil)
			k.rekey(true, other)
			k.append(2, "restore", nil)
		}, []string{"claims a rotation", "not endorsed by the previous audit key", "forged"}, 0},
		{"no rotation record", func(k *keyLog) {
			k.append(1, "restore", nil)
			k.rekey(false, nil)
			k.append(2, "restore", nil)
		}, []string{"not by the operators' audit key"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeyLog(t)
			tc.log(k)
			recs, problems := k.log()
			last := len(k.ids)
			rep := auditlog.Verify(auditlog.Input{Records: recs, Problems: problems, Key: k.pub(last)})
			if rep.Rotations != tc.rotations || len(rep.AuditKeys) != tc.rotations+1 {
				t.Errorf("%d rotations, keys %v; want %d", rep.Rotations, rep.AuditKeys, tc.rotations)
			}
			now := time.Now().UTC().Truncate(time.Second)
			first := hex.EncodeToString(k.pub(1))
			pin := &auditlog.Pin{AuditKey: first}
			err := pin.AcceptKey(recs, k.pub(last), now)
			if tc.want == nil {
				if len(rep.Problems) > 0 {
					t.Fatalf("problems: %v", rep.Problems)
				}
				var wantPrev []string
				for g := 1; g < last; g++ {
					wantPrev = append(wantPrev, hex.EncodeToString(k.pub(g)))
				}
				if err != nil || pin.AuditKey != hex.EncodeToString(k.pub(last)) || !pin.KeyPinned.Equal(now) || !slices.Equal(pin.PreviousKeys, wantPrev) {
					t.Fatalf("the pin did not move along the chain: %v %+v", err, pin)
				}
				if rep.AuditKeys[len(rep.AuditKeys)-1] != first {
					t.Errorf("accepted keys %v do not end with the first %s", rep.AuditKeys, first)
				}
				return
			}
			if len(rep.Problems) == 0 {
				t.Fatal("the log verified")
			}
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.Object+": "+p.Reason)
			}
			t.Logf("problems:\n%s\nrefused: %v", strings.Join(all, "\n"), err)
			for _, w := range tc.want {
				if !strings.Contains(strings.Join(all, "\n"), w) {
					t.Errorf("problems do not mention %q:\n%s", w, strings.Join(all, "\n"))
				}
			}
			if tc.rotations > 0 {
				return // the rotation is proven; the log's other problems keep the pin from being saved
			}
			if err == nil || pin.AuditKey != first || pin.PreviousKeys != nil {
				t.Fatalf("the pin moved without a proven chain: %v %+v", err, pin)
			}
		})
	}
}

// TestCheckRotation: a rotation record proves the change only with a
// well-formed detail, the previous key's endorsement of exactly the new
// key, and the new key's signature on the record.
func TestCheckRotation(t *testing.T) {
	k := newKeyLog(t)
	k.rekey(true, nil)
	rec := k.records()[0]
	prev, next, err := repository.CheckRotation(rec)
	if err != nil || !prev.Equal(k.pub(1)) || !next.Equal(k.pub(2)) {
		t.Fatalf("a valid rotation: %v", err)
	}
	// The same detail unsigned, by a backup host. (One signed by the
	// previous key after the rotation is sealed with the previous keys too,
	// and fails authentication: TestVerifyKeyRotation.)
	k.append(0, "key-change", rec.Detail)
	for _, a := range k.records()[1:] {
		if _, _, err := repository.CheckRotation(a); err == nil || !strings.Contains(err.Error(), "is not signed") {
			t.Errorf("a rotation record not signed by the new key: %v", err)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	cases := map[string]func(d map[string]string){
		"another new key":     func(d map[string]string) { d["audit_key"] = hex.EncodeToString(other) },
		"upper-case key":      func(d map[string]string) { d["audit_key"] = strings.ToUpper(d["audit_key"]) },
		"short previous key":  func(d map[string]string) { d["previous_audit_key"] = d["previous_audit_key"][:62] },
		"same key twice":      func(d map[string]string) { d["previous_audit_key"] = d["audit_key"] },
		"no generation":       func(d map[string]string) { delete(d, "generation") },
		"generation 02":       func(d map[string]string) { d["generation"] = "02" },
		"endorsement damaged": func(d map[string]string) { d["endorsement"] = "AAAA" + d["endorsement"][4:] },
		"not a rotation":      func(d map[string]string) { d["change"] = "add-operator" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			// Edit a copy's detail: its signature covers the stored
			// bytes, which are unchanged, so only the detail is at fault.
			d := map[string]string{}
			for key, v := range rec.Detail {
				d[key] = v
			}
			edit(d)
			a := *rec
			a.Detail = d
			if _, _, err := repository.CheckRotation(&a); err == nil || !strings.Contains(err.Error(), rec.Name()) {
				t.Fatalf("accepted, or the error does not name the record: %v", err)
			}
		})
	}
}
