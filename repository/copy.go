package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-backup/coffer/storage"
)

// The primitives of `coffer copy` (package replicate): a copy carries
// objects as ciphertext from one repository to another with the same keys,
// authenticating each before it is carried (docs/format.md, "Copies").

// Sealed names one stored metadata object: its kind (the KIND of its MAC),
// its object name and the id its name carries.
type Sealed struct {
	Kind string
	Name string
	ID   ID
	Size int64 // as listed
}

// sealedDirs are the directories of the metadata objects a copy carries,
// by kind.
var sealedDirs = map[string]string{
	"index": "index", "snapshot": "snapshots", "chunklist": chunkListDir,
	"drill": "drills", "audit": "audit",
}

// ListSealed lists the stored metadata objects of kind ("snapshot",
// "chunklist", "drill", "audit", "index") by name. Names that are not
// coffer's are left out.
func (r *Repo) ListSealed(ctx context.Context, kind string) (map[string]Sealed, error) {
	dir, ok := sealedDirs[kind]
	if !ok {
		return nil, fmt.Errorf("no metadata objects of kind %q", kind)
	}
	out := map[string]Sealed{}
	err := r.be.List(ctx, dir+"/", func(fi storage.Info) error {
		var id ID
		var err error
		if kind == "audit" {
			_, id, err = parseAuditName(fi.Name)
		} else {
			id, err = ParseID(strings.TrimPrefix(fi.Name, dir+"/"))
		}
		if err == nil {
			out[fi.Name] = Sealed{Kind: kind, Name: fi.Name, ID: id, Size: fi.Size}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s/ in %s: %w", dir, r.be.Location(), err)
	}
	return out, nil
}

// SealedName returns the Sealed of a metadata object of kind named by id
// (every kind but audit, whose names carry a time).
func SealedName(kind string, id ID) Sealed {
	return Sealed{Kind: kind, Name: sealedDirs[kind] + "/" + id.String(), ID: id}
}

// ReadSealed reads o and authenticates it with the repository's keys (its
// name must be its MAC, or the carried list must name it), and returns its
// ciphertext exactly as stored, to be carried to a copy.
func (r *Repo) ReadSealed(ctx context.Context, o Sealed) ([]byte, error) {
	ct, err := readBounded(ctx, r.be, o.Name, metaMax(o.Kind))
	if err != nil {
		return nil, err
	}
	if _, err := r.openMeta(ctx, o.Kind, o.Name, o.ID, ct); err != nil {
		return nil, err
	}
	return ct, nil
}

// PutSealed stores the ciphertext of a metadata object read (ReadSealed)
// from a repository with the same keys, under its name, retained under the
// Object Lock policy of this one. It never replaces an object: a taken
// name counts as stored only if what is stored authenticates as o.
func (r *Repo) PutSealed(ctx context.Context, o Sealed, ct []byte) error {
	return r.putSealed(ctx, o.Kind, o.Name, o.ID, ct, r.putOptions())
}

// CopyPack stores a pack's ciphertext read from another repository with
// the same keys, after checking that it is the pack its id names (the
// SHA-256 of the ciphertext), retained under this repository's policy. A
// taken name counts as stored (putPack).
func (r *Repo) CopyPack(ctx context.Context, id ID, ct []byte) error {
	if !VerifyPackChecksum(id, ct) {
		return &CorruptError{Object: PackName(id), Reason: "its bytes do not match its name (SHA-256 of the ciphertext): damaged or planted"}
	}
	return r.putPack(ctx, PackName(id), ct, r.putOptions())
}

// ReadPack reads a whole pack and checks it against its id and size.
func (r *Repo) ReadPack(ctx context.Context, p PackInfo) ([]byte, error) {
	name := PackName(p.ID)
	// No more than the indexed size is read: a planted object under the
	// name cannot fill memory.
	ct, err := readBounded(ctx, r.be, name, p.Size)
	if err != nil {
		return nil, err
	}
	if int64(len(ct)) != p.Size || !VerifyPackChecksum(p.ID, ct) {
		return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("its %d bytes do not match its name (SHA-256 of the ciphertext) and indexed size %d: damaged or planted", len(ct), p.Size)}
	}
	return ct, nil
}

// ConfigForCopy returns the config object of a copy of this repository:
// the same config, authenticated by the same writer key, with lock as its
// Object Lock policy (the copy's storage has its own).
func (r *Repo) ConfigForCopy(lock *ObjectLock) ([]byte, error) {
	if lock != nil {
		if err := lock.Validate(); err != nil {
			return nil, err
		}
	}
	cp := *r.cfg
	cp.Lock = lock
	cp.MAC = cp.computeMAC(r.wk)
	if err := cp.Validate(r.wk); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(&cp, "", "  ")
	return append(b, '\n'), err
}

// SameKeys reports why a copy's config differs from this repository's in
// anything but its Object Lock policy (a key rotation on one side), or nil.
func (r *Repo) SameKeys(other *Config) error {
	a, b := *r.cfg, *other
	a.Lock, b.Lock, a.MAC, b.MAC = nil, nil, "", ""
	ja, _ := json.Marshal(&a)
	jb, _ := json.Marshal(&b)
	if string(ja) != string(jb) {
		return fmt.Errorf("the copy's config (key generation %d) differs from the source's (generation %d) in more than its Object Lock policy: "+
			"a key rotation happened on one side; copy into a new destination", other.Gen(), r.cfg.Gen())
	}
	return nil
}

// ErrNotCopy is returned (wrapped) when a destination holds another
// repository than the one being copied.
var ErrNotCopy = errors.New("the destination holds another repository")

// CandidatePack reports whether an honoured prune marker names the pack:
// a prune may delete it, so nothing new may depend on it.
func (h *Honoured) CandidatePack(id ID) bool { return h != nil && h.packs[id] }

// CandidateList reports whether an honoured prune marker names the chunk
// list.
func (h *Honoured) CandidateList(id ID) bool { return h.avoids(id) }

// PrepareObjectLock checks that be can hold objects under lock (an S3
// bucket with Object Lock enabled) and sets the retention mode of its puts.
// A nil lock needs nothing.
func PrepareObjectLock(ctx context.Context, be storage.Backend, lock *ObjectLock) error {
	return setupLock(ctx, be, lock)
}

// CopyWAL stores a WAL object read from a repository with the same keys
// under its name, retained under this repository's policy. Its MAC covers
// the plaintext, which a writer cannot read: readers (wal-fetch) check it,
// here as at the source. A taken name counts as stored.
func (r *Repo) CopyWAL(ctx context.Context, name string, ct []byte) error {
	if _, ok := parseWALObject(name); !ok {
		return &CorruptError{Object: name, Reason: "not a WAL object's name"}
	}
	opts := r.putOptions()
	opts.NoOverwrite = true
	err := r.be.Put(ctx, name, ct, opts)
	if errors.Is(err, storage.ErrExists) {
		return nil
	}
	return err
}

// ReadWALObject reads a stored WAL object whole, as ciphertext, refusing
// one larger than a WAL file of the largest size coffer stores can be.
func (r *Repo) ReadWALObject(ctx context.Context, name string) ([]byte, error) {
	return readBounded(ctx, r.be, name, maxWALObject)
}

// maxWALObject bounds a stored WAL object: 1 GiB of plaintext (the
// largest WAL file coffer stores), its zstd frame and age's overhead.
const maxWALObject = MaxWALFile + 64<<20

// IsWALObject reports whether name is a WAL object's (wal/FILE.gG.ID).
func IsWALObject(name string) bool {
	_, ok := parseWALObject(name)
	return ok
}
