package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/coffer-backup/coffer/storage"
)

// Object names of the repository's fixed objects.
const (
	ConfigObject        = "config"
	RepositoryKeyObject = "keys/repository.age"
	WriterKeyObject     = "keys/writer.age"
)

// Repo is an open repository. A Repo opened with a writer key can add and
// list; one opened with an operator identity can also read data.
type Repo struct {
	be   storage.Backend
	cfg  *Config
	wk   *WriterKey
	data age.Identity // the repository identity; nil for writers
	old  []generation // earlier generations' keys, for operators
	// carried is the list of metadata objects that key rotations carried
	// over from earlier generations; nil when there was none. It is read
	// on first need (carriedList), once carriedRead.
	carried     *carriedList
	carriedRead bool
	now         func() time.Time
	warn        func(error) // told of damaged objects skipped
	// cacheRoot is where LoadIndex keeps its cache; "" for none.
	cacheRoot string
}

// SetWarn sets who is told of the damaged objects that the repository
// skips where that is safe, such as a snapshot that cannot be read while
// resolving "latest" (check reports them as problems).
func (r *Repo) SetWarn(fn func(error)) { r.warn = fn }

// Backend returns the storage the repository lives in.
func (r *Repo) Backend() storage.Backend { return r.be }

// Config returns the repository's config.
func (r *Repo) Config() *Config { return r.cfg }

// WriterKey returns the writer key.
func (r *Repo) WriterKey() *WriterKey { return r.wk }

// CanRead reports whether the repository was opened with the repository key.
func (r *Repo) CanRead() bool { return r.data != nil }

// InitOptions configure a new repository.
type InitOptions struct {
	Operators []age.Recipient // who can decrypt the repository key; at least one
	// OperatorNames are the operators' recipients as text, kept in config.
	OperatorNames []string
	Chunker       ChunkerParams // zero: DefaultChunker
	PackSize      int           // zero: DefaultPackSize
	Now           time.Time     // zero: time.Now()
	Lock          *ObjectLock   // S3 Object Lock policy, or nil
}

// Init creates a repository in be. It refuses to overwrite an existing one.
func Init(ctx context.Context, be storage.Backend, opts InitOptions) (*Repo, error) {
	if len(opts.Operators) == 0 {
		return nil, errors.New("init: at least one operator recipient is needed")
	}
	if _, err := be.Stat(ctx, ConfigObject); err == nil {
		return nil, fmt.Errorf("a coffer repository already exists at %s: use it, or choose an empty location", be.Location())
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	if opts.Chunker == (ChunkerParams{}) {
		opts.Chunker = DefaultChunker
	}
	if opts.PackSize == 0 {
		opts.PackSize = DefaultPackSize
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	dataID, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	var rid [16]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	wk, err := NewWriterKey(hex.EncodeToString(rid[:]), dataID.Recipient())
	if err != nil {
		return nil, err
	}
	cfg := &Config{
		Version: FormatVersion, ID: wk.RepositoryID, Created: opts.Now.UTC(),
		Recipient: dataID.Recipient().String(), Operators: opts.OperatorNames,
		Chunker: opts.Chunker, PackSize: opts.PackSize, Compression: "zstd",
	}
	if opts.Lock != nil {
		if err := opts.Lock.Validate(); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		if err := setupLock(ctx, be, opts.Lock); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		cfg.Lock = opts.Lock
	}
	cfg.MAC = cfg.computeMAC(wk)
	r := &Repo{be: be, cfg: cfg, wk: wk, data: dataID, now: func() time.Time { return opts.Now }}
	if err := cfg.Validate(wk); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	for _, obj := range []struct {
		name  string
		plain []byte
	}{{RepositoryKeyObject, []byte(dataID.String() + "\n")}, {WriterKeyObject, wk.Marshal()}} {
		ct, err := encrypt(obj.plain, opts.Operators...)
		if err != nil {
			return nil, fmt.Errorf("init: encrypt %s to the operators: %w", obj.name, err)
		}
		if err := be.Put(ctx, obj.name, ct, r.putOptions()); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	// config last: its presence marks a complete repository.
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := be.Put(ctx, ConfigObject, append(b, '\n'), r.putOptions()); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	r.now = nil
	return r, nil
}

// LoadConfig reads and parses the config without authenticating it.
func LoadConfig(ctx context.Context, be storage.Backend) (*Config, error) {
	b, err := readBounded(ctx, be, ConfigObject, MaxSmallMeta)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("no coffer repository at %s (its config object is missing): check COFFER_REPO, or create one with `coffer init`", be.Location())
	}
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", be.Location(), err)
	}
	return ParseConfig(b)
}

// OpenWriter opens a repository with a writer key: enough to back up, list
// snapshots, and check structure.
func OpenWriter(ctx context.Context, be storage.Backend, wk *WriterKey) (*Repo, error) {
	cfg, err := LoadConfig(ctx, be)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(wk); err != nil {
		return nil, err
	}
	if err := setupLock(ctx, be, cfg.Lock); err != nil {
		return nil, err
	}
	return &Repo{be: be, cfg: cfg, wk: wk}, nil
}

// WrongIdentityError reports that none of the given identities can decrypt
// the repository's keys.
type WrongIdentityError struct {
	Object    string
	Operators []string // the recipients the keys are encrypted to, per config
	Err       error
}

func (e *WrongIdentityError) Error() string {
	ops := "the operators' recipients"
	if len(e.Operators) > 0 {
		ops = strings.Join(e.Operators, ", ")
	}
	return fmt.Sprintf("%s is encrypted to %s; none matches the given identity: use an operator's identity file (COFFER_IDENTITY_FILE)", e.Object, ops)
}

func (e *WrongIdentityError) Unwrap() error { return e.Err }

// ErrorObject names the object that no identity decrypts.
func (e *WrongIdentityError) ErrorObject() string { return e.Object }

// ErrorRemedy says what to do about it.
func (e *WrongIdentityError) ErrorRemedy() string {
	return "use an operator's identity file (COFFER_IDENTITY_FILE)"
}

// OpenOptions adjust OpenRestorer.
type OpenOptions struct {
	// WriterKey, if set, is used instead of decrypting keys/writer.age.
	WriterKey *WriterKey
	// Fingerprint, if set, must match the writer key's fingerprint.
	Fingerprint string
}

// OpenRestorer opens a repository with operator identities: everything can
// be read.
func OpenRestorer(ctx context.Context, be storage.Backend, ids []age.Identity, opts OpenOptions) (*Repo, error) {
	cfg, err := LoadConfig(ctx, be)
	if err != nil {
		return nil, err
	}
	r := &Repo{be: be, cfg: cfg}
	o := keyOpener{ctx: ctx, r: r, ids: ids, operators: cfg.Operators}
	cur, err := o.generation(cfg.Gen(), opts.WriterKey)
	if err != nil {
		return nil, err
	}
	if opts.Fingerprint != "" && !cur.wk.MatchesFingerprint(opts.Fingerprint) {
		return nil, fmt.Errorf("the writer key has fingerprint %s, not the pinned %s: the repository's keys were replaced (or rotated: then pin the new fingerprint); do not trust this repository until you know why", cur.wk.Fingerprint(), opts.Fingerprint)
	}
	if err := cfg.Validate(cur.wk); err != nil {
		return nil, err
	}
	r.wk, r.data = cur.wk, cur.data
	if r.old, err = o.previous(); err != nil {
		return nil, err
	}
	if err := setupLock(ctx, be, cfg.Lock); err != nil {
		return nil, err
	}
	return r, nil
}
