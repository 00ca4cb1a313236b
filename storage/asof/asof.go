// Package asof shows a versioned store as it was at a past moment: for
// every object, the newest version the store wrote at or before that
// moment, ignoring later versions and delete markers. It is how a
// repository is read back after objects were deleted or overwritten in a
// bucket that keeps versions (S3 versioning or Object Lock).
//
// The moment is compared with the times the store recorded for its
// versions, by the store's own clock. The view is read-only.
package asof

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// Source is a store that keeps versions (storage/s3).
type Source interface {
	// ListVersions calls fn for every version and delete marker of every
	// object under prefix.
	ListVersions(ctx context.Context, prefix string, fn func(storage.Version) error) error
	// GetVersion is storage.Backend's Get of one version.
	GetVersion(ctx context.Context, name, version string, offset, length int64, fn func(io.Reader) error) error
	Location() string
}

// View is a read-only storage.Backend showing src as it was at one moment.
type View struct {
	src Source
	at  time.Time

	mu    sync.Mutex
	names map[string]entry     // every name of a directory listed so far
	dirs  map[string]*dirState // directories listed or being listed
}

// entry is what the view knows of one name.
type entry struct {
	v      storage.Version // the version current at the moment; Deleted or zero when absent
	oldest time.Time       // when the first version of the name was written
}

func (e entry) present() bool { return e.v.ID != "" && !e.v.Deleted }

type dirState struct {
	done chan struct{}
	err  error
}

// New returns src as it was at the moment at.
func New(src Source, at time.Time) *View {
	return &View{src: src, at: at, names: map[string]entry{}, dirs: map[string]*dirState{}}
}

// At is the moment the view shows.
func (v *View) At() time.Time { return v.at }

// Location is the store's own: the view is the same repository (its
// pins in a trust file apply), seen at another moment.
func (v *View) Location() string { return v.src.Location() }

// String names the store and the moment, for messages.
func (v *View) String() string {
	return fmt.Sprintf("%s as of %s", v.src.Location(), v.at.UTC().Format(time.RFC3339Nano))
}

// Pick reduces the versions of one name, in the order the store lists
// them (newest first), to the one current at the moment at: the newest
// written at or before it. The result is a delete marker, or the zero
// Version, when the object was absent then. Of versions with the same time
// the first listed is taken, as the store lists the newest first.
func Pick(versions []storage.Version, at time.Time) storage.Version {
	var best storage.Version
	for _, x := range versions {
		if x.ModTime.After(at) {
			continue
		}
		if best.ID == "" || x.ModTime.After(best.ModTime) {
			best = x
		}
	}
	return best
}

// group calls fn with the versions of each name under prefix, in the
// order listed.
func group(ctx context.Context, src Source, prefix string, fn func(name string, vs []storage.Version)) error {
	byName := map[string][]storage.Version{}
	var order []string
	err := src.ListVersions(ctx, prefix, func(x storage.Version) error {
		if _, ok := byName[x.Name]; !ok {
			order = append(order, x.Name)
		}
		byName[x.Name] = append(byName[x.Name], x)
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range order {
		fn(n, byName[n])
	}
	return nil
}

func oldest(vs []storage.Version) time.Time {
	var t time.Time
	for _, x := range vs {
		if t.IsZero() || x.ModTime.Before(t) {
			t = x.ModTime
		}
	}
	return t
}

// dir is the directory part of a name ("data/ab/" for "data/ab/ID").
func dir(name string) string {
	i := strings.LastIndex(name, "/")
	return name[:i+1]
}

// load lists the directory d (or, for a name at the top, only that
// name: d is then the name) once and remembers what it held at the
// moment. Concurrent callers wait for the one listing.
func (v *View) load(ctx context.Context, d string) error {
	v.mu.Lock()
	st, ok := v.dirs[d]
	if !ok {
		st = &dirState{done: make(chan struct{})}
		v.dirs[d] = st
	}
	v.mu.Unlock()
	if ok {
		select {
		case <-st.done:
			return st.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	found := map[string]entry{}
	st.err = group(ctx, v.src, d, func(name string, vs []storage.Version) {
		if dir(name) == d || name == d {
			found[name] = entry{v: Pick(vs, v.at), oldest: oldest(vs)}
		}
	})
	v.mu.Lock()
	if st.err != nil {
		delete(v.dirs, d) // a later call tries again
	} else {
		for n, e := range found {
			v.names[n] = e
		}
	}
	v.mu.Unlock()
	close(st.done)
	return st.err
}

// resolve returns the version of name current at the moment, or an error
// wrapping storage.ErrNotFound that says when the object did exist.
func (v *View) resolve(ctx context.Context, name string) (storage.Version, error) {
	d := dir(name)
	if d == "" {
		d = name // the top holds few names: list only this one
	}
	if err := v.load(ctx, d); err != nil {
		return storage.Version{}, err
	}
	v.mu.Lock()
	e, ok := v.names[name]
	v.mu.Unlock()
	switch {
	case e.present():
		return e.v, nil
	case !ok:
		return storage.Version{}, fmt.Errorf("%s: %w in %s (no version of it was ever stored)", name, storage.ErrNotFound, v.String())
	case e.v.Deleted:
		return storage.Version{}, fmt.Errorf("%s: %w in %s (deleted at %s)", name, storage.ErrNotFound, v.String(), stamp(e.v.ModTime))
	}
	return storage.Version{}, fmt.Errorf("%s: %w in %s (its first version was written at %s, later)", name, storage.ErrNotFound, v.String(), stamp(e.oldest))
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Get reads the version of name current at the moment.
func (v *View) Get(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	x, err := v.resolve(ctx, name)
	if err != nil {
		return err
	}
	return v.src.GetVersion(ctx, name, x.ID, offset, length, fn)
}

// Stat describes the version of name current at the moment.
func (v *View) Stat(ctx context.Context, name string) (storage.Info, error) {
	x, err := v.resolve(ctx, name)
	if err != nil {
		return storage.Info{}, err
	}
	return storage.Info{Name: name, Size: x.Size, ModTime: x.ModTime}, nil
}

// List calls fn for every object under prefix that existed at the moment.
func (v *View) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	var infos []storage.Info
	err := group(ctx, v.src, prefix, func(name string, vs []storage.Version) {
		if x := Pick(vs, v.at); x.ID != "" && !x.Deleted {
			infos = append(infos, storage.Info{Name: name, Size: x.Size, ModTime: x.ModTime})
		}
	})
	if err != nil {
		return err
	}
	for _, in := range infos {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// Put is refused: the past cannot be written.
func (v *View) Put(ctx context.Context, name string, _ []byte, _ storage.PutOptions) error {
	return v.readOnly("put", name)
}

// Delete is refused: the past cannot be written.
func (v *View) Delete(ctx context.Context, name string) error {
	return v.readOnly("delete", name)
}

func (v *View) readOnly(op, name string) error {
	return fmt.Errorf("%s %s: %s is a read-only view of the past (%w): to write, make that state current first (coffer undelete --as-of)", op, name, v.String(), storage.ErrUnsupported)
}

// lockChecker is what storage/s3 says about the bucket's Object Lock.
type lockChecker interface {
	ObjectLockEnabled(ctx context.Context) (bool, error)
}

// ObjectLockEnabled answers for the bucket (the repository of an Object
// Lock bucket opens only on one), or false when src cannot tell.
func (v *View) ObjectLockEnabled(ctx context.Context) (bool, error) {
	if lc, ok := v.src.(lockChecker); ok {
		return lc.ObjectLockEnabled(ctx)
	}
	return false, nil
}
