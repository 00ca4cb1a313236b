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
	Size       int64     // of the stored object
	Stored     time.Time // when the storage last wrote it
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
	// An object of the current generation under another MAC holds other
	// content. One of an earlier generation (archived before a key
	// rotation) cannot be compared with the writer key: store this one
	// beside it; readers prefer the current generation's.
	for _, w := range existing {
		if w.Generation == gen {
			return false, &WALConflictError{File: file, Existing: w.Name()}
		}
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
	// The current generation's copy first (see PushWAL).
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Generation > objs[j].Generation })
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
	// An earlier generation's MAC key may be held by someone since removed:
	// only the objects the rotation listed count (see inventoryWAL).
	if w.Generation != r.cfg.Gen() {
		carried, err := r.carriedList(ctx)
		if err != nil {
			return nil, err
		}
		if carried == nil || carried.objects[name] == nil {
			return nil, &CorruptError{Object: name, Reason: fmt.Sprintf("stored with keys of generation %d after the rotation that replaced them: forged by someone who kept the old keys", w.Generation)}
		}
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

// WALSummary describes the WAL archive.
type WALSummary struct {
	Files  int       `json:"files"`
	Bytes  int64     `json:"stored_bytes"`
	First  string    `json:"first_segment,omitempty"`
	Last   string    `json:"last_segment,omitempty"`
	Newest time.Time `json:"newest_time,omitzero"` // the storage's time of the newest object: the RPO of point-in-time recovery
}

// SummarizeWAL adds up the WAL archive.
func (r *Repo) SummarizeWAL(ctx context.Context) (*WALSummary, error) {
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return nil, err
	}
	s := &WALSummary{}
	for _, f := range files {
		s.Files++
		s.Bytes += f.Size
		if len(f.File) == 24 {
			if s.First == "" || f.File < s.First {
				s.First = f.File
			}
			if f.File > s.Last {
				s.Last = f.File
			}
		}
		if f.Stored.After(s.Newest) {
			s.Newest = f.Stored
		}
	}
	return s, nil
}

// inventoryWAL adds the WAL objects to a rotation's carried list. Their
// names are MACs under their own generation's key, which stays the key
// that checks them; listing them freezes the set, so that whoever kept an
// earlier generation's MAC key cannot add objects later. The value is an
// empty list of hashes: a WAL object is authenticated by its name.
func (r *Repo) inventoryWAL(ctx context.Context, objects map[string][]string) error {
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return err
	}
	for _, f := range files {
		objects[f.Name()] = []string{}
	}
	return nil
}

// walUnchanged fails if a WAL file was archived since inventoryWAL: it
// would be stored with keys the rotation is replacing, and not listed.
func (r *Repo) walUnchanged(ctx context.Context, objects map[string][]string) error {
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, ok := objects[f.Name()]; !ok {
			return fmt.Errorf("key rotate: WAL file %s was archived while the rotation read the repository: nothing was changed; rotate again (a busy server archives often: rotate between two segments, or pause archiving)", f.File)
		}
	}
	return nil
}

// reencryptWAL stores every WAL file of an earlier generation again under
// the current one (its content checked against its old MAC first), then
// deletes the old object. It returns how many it rewrote.
func (r *Repo) reencryptWAL(ctx context.Context) (int, error) {
	files, _, err := r.WALFiles(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if f.Generation == r.cfg.Gen() {
			continue
		}
		content, err := r.readWAL(ctx, f)
		var ce *CorruptError
		if errors.As(err, &ce) {
			if r.warn != nil {
				r.warn(fmt.Errorf("left %s under the old keys: %w", f.Name(), err))
			}
			continue // not authentic: never stored again under the new keys
		}
		if err != nil {
			return n, fmt.Errorf("key rotate --reencrypt: %w", err)
		}
		if _, err := r.PushWAL(ctx, f.File, content); err != nil {
			return n, fmt.Errorf("key rotate --reencrypt: %w", err)
		}
		// Under Object Lock the old object stays until its retention ends;
		// readers take the current generation's copy.
		if err := r.be.Delete(ctx, f.Name()); err != nil && !isNotFound(err) && !errors.Is(err, storage.ErrLocked) {
			return n, fmt.Errorf("key rotate --reencrypt: delete %s, stored again under the new keys: %w", f.Name(), err)
		}
		n++
	}
	return n, nil
}
