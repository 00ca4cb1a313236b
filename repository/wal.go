package repository

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// The WAL archive: PostgreSQL's archive_command stores each WAL file (a
// segment, a timeline history file, a backup history file) as one object
//
//	wal/FILE.gG.ID
//
// where FILE is the name PostgreSQL gives the file, G the generation of
// the keys that wrote it, and ID the lowercase hex HMAC-SHA256, under that
// generation's MAC key, of "wal\n" || FILE || "\n" || the file's content.
// The object is an age file to the repository key whose plaintext is one
// zstd frame declaring the file's size. So a writer can store WAL but not
// read it back; a reader checks that what it decrypts is what the writer
// stored under that name, and nobody without the MAC key can make an
// object coffer would hand to PostgreSQL for replay (see docs/format.md,
// "WAL archive").

// MaxWALFile is the largest WAL file coffer stores: PostgreSQL's largest
// segment size (1 GiB).
const MaxWALFile = 1 << 30

var walFileName = regexp.MustCompile(`^(?:[0-9A-F]{24}(?:\.partial)?|[0-9A-F]{8}\.history|[0-9A-F]{24}\.[0-9A-F]{8}\.backup)$`)

// ValidWALName reports whether name is a WAL file name PostgreSQL archives.
func ValidWALName(name string) bool { return walFileName.MatchString(name) }

// WALObject is one stored WAL file.
type WALObject struct {
	File       string // the WAL file's name
	Generation int    // of the keys that stored it
	ID         ID
	Size       int64 // of the stored object
	// Stored is when the storage last modified the object (its clock,
	// not ours): from WALFiles, for the archive's age.
	Stored time.Time
}

// Name returns the object's name.
func (w WALObject) Name() string { return walObjectName(w.File, w.Generation, w.ID) }

func walObjectName(file string, gen int, id ID) string {
	return "wal/" + file + ".g" + strconv.Itoa(gen) + "." + id.String()
}

// parseWALObject parses wal/FILE.gG.ID; ok is false for any other name.
func parseWALObject(name string) (WALObject, bool) {
	rest, ok := strings.CutPrefix(name, "wal/")
	if !ok {
		return WALObject{}, false
	}
	i := strings.LastIndex(rest, ".g")
	if i < 0 {
		return WALObject{}, false
	}
	gen, hexID, ok := strings.Cut(rest[i+2:], ".")
	g, err := strconv.Atoi(gen)
	if !ok || err != nil || g < 1 || strconv.Itoa(g) != gen {
		return WALObject{}, false
	}
	id, err := ParseID(hexID)
	if err != nil || !ValidWALName(rest[:i]) {
		return WALObject{}, false
	}
	return WALObject{File: rest[:i], Generation: g, ID: id}, true
}

func walMAC(key []byte, file string, content []byte) ID {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("wal\n" + file + "\n"))
	m.Write(content)
	var id ID
	m.Sum(id[:0])
	return id
}

// WALConflictError reports a WAL file archived before with other content.
type WALConflictError struct {
	File     string
	Existing string // the stored object
}

func (e *WALConflictError) Error() string {
	return fmt.Sprintf("WAL file %s was archived before with other content (%s): refusing to store a second version. "+
		"Two servers may be archiving into one repository (give each its own), or a restored server is archiving on the old timeline; "+
		"find out which before changing anything: the stored file may be the only copy of committed transactions", e.File, e.Existing)
}

// PushWAL stores the WAL file named file. It returns once the object is
// stored (the storage's put has completed), and is idempotent: a file
// stored before with the same content succeeds without a second copy; one
// stored with other content is refused with a *WALConflictError. It needs
// only the writer key.
func (r *Repo) PushWAL(ctx context.Context, file string, content []byte) (stored bool, err error) {
	if !ValidWALName(file) {
		return false, fmt.Errorf("wal-push: %q is not the name of a WAL file PostgreSQL archives", file)
	}
	if len(content) > MaxWALFile {
		return false, fmt.Errorf("wal-push: %s is %d bytes, more than the largest WAL segment (%d)", file, len(content), MaxWALFile)
	}
	id := walMAC(r.wk.MACKey[:], file, content)
	gen := r.cfg.Gen()
	existing, err := r.walObjects(ctx, file)
	if err != nil {
		return false, err
	}
	for _, w := range existing {
		if w.Generation == gen && w.ID == id {
			return false, nil // archived already: PostgreSQL retried after a crash
		}
	}
	if len(existing) > 0 {
		return false, &WALConflictError{File: file, Existing: existing[0].Name()}
	}
	ct, err := encrypt(Compress(nil, content), r.wk.Recipient)
	if err != nil {
		return false, err
	}
	opts := r.putOptions()
	opts.NoOverwrite = true
	name := walObjectName(file, gen, id)
	// A taken name holds the same content: the name is its MAC.
	if err := r.be.Put(ctx, name, ct, opts); err != nil && !errors.Is(err, storage.ErrExists) {
		return false, fmt.Errorf("wal-push: store %s: %w", name, err)
	}
	return true, nil
}

// walObjects returns the stored objects of one WAL file.
func (r *Repo) walObjects(ctx context.Context, file string) ([]WALObject, error) {
	var out []WALObject
	err := r.be.List(ctx, "wal/"+file+".g", func(fi storage.Info) error {
		if w, ok := parseWALObject(fi.Name); ok && w.File == file {
			w.Size = fi.Size
			out = append(out, w)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the WAL archive in %s: %w", r.be.Location(), err)
	}
	return out, nil
}

// WALFiles lists the WAL archive in name order, and the names under wal/
// that are not coffer's.
func (r *Repo) WALFiles(ctx context.Context) ([]WALObject, []string, error) {
	var out []WALObject
	var foreign []string
	err := r.be.List(ctx, "wal/", func(fi storage.Info) error {
		w, ok := parseWALObject(fi.Name)
		if !ok {
			foreign = append(foreign, fi.Name)
			return nil
		}
		w.Size, w.Stored = fi.Size, fi.ModTime
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list the WAL archive in %s: %w", r.be.Location(), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, foreign, nil
}

// FetchWAL returns the content of the WAL file named file, decrypted and
// checked against its MAC. A file not archived is reported with
// storage.ErrNotFound; one whose only objects fail the checks with a
// *CorruptError naming them. It needs an operator's identity.
func (r *Repo) FetchWAL(ctx context.Context, file string) ([]byte, error) {
	if r.data == nil {
		return nil, ErrNeedIdentity
	}
	if !ValidWALName(file) {
		return nil, fmt.Errorf("wal-fetch: %q is not the name of a WAL file", file)
	}
	objs, err := r.walObjects(ctx, file)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("WAL file %s is not in the archive in %s: %w", file, r.be.Location(), storage.ErrNotFound)
	}
	var problems []string
	for _, w := range objs {
		content, err := r.readWAL(ctx, w)
		if err == nil {
			return content, nil
		}
		problems = append(problems, err.Error())
	}
	return nil, &CorruptError{Object: objs[0].Name(), Reason: "no stored copy of WAL file " + file + " passes its checks: " + strings.Join(problems, "; ") + "; never replay it: recover to a point before it"}
}

// walKey returns the MAC key of generation gen, which this process holds
// for the current generation and, with an operator's identity, for the
// earlier ones still stored.
func (r *Repo) walKey(gen int) ([]byte, bool) {
	if gen == r.cfg.Gen() {
		return r.wk.MACKey[:], true
	}
	for _, g := range r.old {
		if g.gen == gen {
			return g.wk.MACKey[:], true
		}
	}
	return nil, false
}

// readWAL reads, decrypts, decompresses and authenticates one WAL object.
func (r *Repo) readWAL(ctx context.Context, w WALObject) ([]byte, error) {
	name := w.Name()
	key, ok := r.walKey(w.Generation)
	if !ok {
		return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("stored with keys of generation %d, which this repository does not hold", w.Generation)}
	}
	ct, err := readBounded(ctx, r.be, name, MaxWALFile+MaxWALFile/64+1<<20)
	if err != nil {
		return nil, err
	}
	z, err := decrypt(name, ct, r.dataIdentities()...)
	if err != nil {
		return nil, err
	}
	n, err := frameSize(z)
	if err != nil || n < 0 || n > MaxWALFile {
		return nil, &CorruptError{Object: name, Reason: "its zstd frame does not declare a WAL file's size", Err: err}
	}
	content, err := decompressExact(nil, z, n, n)
	if err != nil {
		return nil, &CorruptError{Object: name, Reason: "decompression refused", Err: err}
	}
	if got := walMAC(key, w.File, content); !hmac.Equal(got[:], w.ID[:]) {
		return nil, &CorruptError{Object: name, Reason: "its content is not what was archived under this name (altered or forged)"}
	}
	return content, nil
}
