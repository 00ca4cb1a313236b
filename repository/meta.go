package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/coffer-backup/coffer/storage"
)

// saveMeta seals v as a metadata object of kind under dir and returns its
// id. With retain, the object gets the Object Lock retention of data. It
// never replaces a stored object (putMeta).
func (r *Repo) saveMeta(ctx context.Context, kind, dir string, v any, retain bool) (ID, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return ID{}, err
	}
	return r.putMeta(ctx, kind, dir, plain, retain)
}

// putMeta seals plain as a metadata object of kind under dir, never over
// another object (putSealed). The same plaintext always gets the same id.
func (r *Repo) putMeta(ctx context.Context, kind, dir string, plain []byte, retain bool) (ID, error) {
	id, ct, err := r.wk.sealMeta(kind, plain)
	if err != nil {
		return ID{}, err
	}
	opts := storage.PutOptions{}
	if retain {
		opts = r.putOptions()
	}
	if err := r.putSealed(ctx, kind, dir+"/"+id.String(), id, ct, opts); err != nil {
		return ID{}, fmt.Errorf("save %s: %w", kind, err)
	}
	return id, nil
}

// readMeta reads and authenticates a metadata object. A missing object
// is reported with storage.ErrNotFound.
func (r *Repo) readMeta(ctx context.Context, kind, dir string, id ID) ([]byte, error) {
	name := dir + "/" + id.String()
	ct, err := readBounded(ctx, r.be, name, metaMax(kind))
	if err != nil {
		return nil, err
	}
	return r.openMeta(ctx, kind, name, id, ct)
}

// metaMax returns the most a stored metadata object of kind may weigh. A
// chunk list is a small object: at most MaxListIDs ids.
func metaMax(kind string) int64 {
	if kind == "index" || kind == "snapshot" {
		return MaxLargeMeta
	}
	return MaxSmallMeta
}

// readBounded reads a whole object of at most max bytes. A larger one is
// refused after max+1 bytes, so a hostile object cannot fill memory.
func readBounded(ctx context.Context, be storage.Backend, name string, max int64) ([]byte, error) {
	var out []byte
	err := be.Get(ctx, name, 0, 0, func(rd io.Reader) error {
		var buf bytes.Buffer
		_, err := buf.ReadFrom(io.LimitReader(rd, max+1))
		out = buf.Bytes()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(out)) > max {
		return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("larger than the %d bytes coffer allows for it (not written by coffer)", max)}
	}
	return out, nil
}

// loadMeta reads and authenticates a metadata object into v.
func (r *Repo) loadMeta(ctx context.Context, kind, dir string, id ID, v any) error {
	plain, err := r.readMeta(ctx, kind, dir, id)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return &CorruptError{Object: dir + "/" + id.String(), Reason: "malformed JSON", Err: err}
	}
	return nil
}

// versioned is embedded by metadata objects to check their version.
type versioned struct {
	Version int `json:"version"`
}

func (v versioned) check(object string) error {
	if v.Version != FormatVersion {
		return &UnsupportedVersionError{Object: object, Version: v.Version}
	}
	return nil
}

// isNotFound reports a missing object.
func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// SaveRecord stores v (JSON) as an authenticated metadata object of kind
// under dir, such as a drill report under "drills". Records are retained
// under the repository's Object Lock policy like snapshots.
func (r *Repo) SaveRecord(ctx context.Context, kind, dir string, v any) (ID, error) {
	return r.saveMeta(ctx, kind, dir, v, true)
}

// Records calls fn with the id and JSON of every record of kind under dir.
// A record that fails authentication is an error naming it.
func (r *Repo) Records(ctx context.Context, kind, dir string, fn func(ID, []byte) error) error {
	ids, err := r.ListIDs(ctx, dir)
	if err != nil {
		return err
	}
	for _, id := range ids {
		plain, err := r.readMeta(ctx, kind, dir, id)
		if err != nil {
			return err
		}
		if err := fn(id, plain); err != nil {
			return err
		}
	}
	return nil
}
