package repository

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/sync/errgroup"
)

// carriedDirs are the directories of metadata that a rotation carries to
// the new keys, with the kind each object is sealed as. Locks and prune
// markers are not carried: a rotation runs only when there are none.
var carriedDirs = []struct{ dir, kind string }{
	{"index", "index"}, {"snapshots", "snapshot"}, {chunkListDir, chunkListKind}, {"drills", "drill"}, {"audit", "audit"},
}

// RotateOptions configure Rotate.
type RotateOptions struct {
	// Operators are the recipients the new key objects are encrypted to:
	// the repository's operators.
	Operators []age.Recipient
	// LockStale is the storage-time age past which a lock is stale
	// (default LockStale).
	LockStale time.Duration
}

// RotateReport says what Rotate did.
type RotateReport struct {
	Generation  int       `json:"generation"`
	Fingerprint string    `json:"writer_key_fingerprint"` // of the new writer key
	Carried     int       `json:"carried_objects"`        // metadata objects sealed again
	Skipped     []Problem `json:"skipped,omitempty"`      // objects that failed authentication, not carried
	Resumed     bool      `json:"resumed"`                // an unfinished rotation was finished
	// AuditDetail is the detail of the key-change record to append: it
	// carries the new audit key endorsed by the previous one.
	AuditDetail map[string]string `json:"-"`
}

// Rotate makes a new generation of the repository's keys: a new
// repository key, metadata key and MAC key (the repository id, chunk-id
// key and chunker polynomial stay, so chunk ids and deduplication carry
// on). New data goes to the new key as soon as backup hosts have the new
// writer key; a backup with the old one is refused. Every metadata object
// is sealed again to the new metadata key under its old name and listed
// in a carried list that config names; packs stay encrypted to the earlier
// key, whose objects stay stored until Reencrypt has rewritten them.
//
// It needs an operator's identity and a quiet repository: it refuses while
// a backup holds a live lock or a prune marker is pending. A rotation
// killed after config changed is finished by calling Rotate again.
func (r *Repo) Rotate(ctx context.Context, opts RotateOptions) (*RotateReport, error) {
	if r.data == nil {
		return nil, ErrNeedIdentity
	}
	if len(opts.Operators) == 0 {
		return nil, errors.New("key rotate: no operator recipients to encrypt the new keys to")
	}
	if ref := r.cfg.Carried; ref != nil && ref.Pending {
		n, err := r.finishSealing(ctx)
		return &RotateReport{Generation: r.cfg.Gen(), Fingerprint: r.wk.Fingerprint(), Carried: n, Resumed: true}, err
	}
	if err := r.requireQuiet(ctx, opts.LockStale); err != nil {
		return nil, err
	}
	rep := &RotateReport{Generation: r.cfg.Gen() + 1}
	objects, err := r.inventory(ctx, rep)
	if err != nil {
		return nil, err
	}
	if err := r.inventoryWAL(ctx, objects); err != nil {
		return nil, err
	}
	next, err := r.nextGeneration(ctx, opts.Operators)
	if err != nil {
		return nil, err
	}
	// A backup or prune that began while the inventory was taken would
	// write objects it does not hold: look again, just before the switch.
	if err := r.requireQuiet(ctx, opts.LockStale); err != nil {
		return nil, err
	}
	if err := r.inventoryUnchanged(ctx, objects); err != nil {
		return nil, err
	}
	if err := r.walUnchanged(ctx, objects); err != nil {
		return nil, err
	}
	oldAudit := AuditKeyOf(r.data.(*age.X25519Identity))
	if err := r.switchTo(ctx, next, objects); err != nil {
		return nil, err
	}
	rep.Fingerprint = r.wk.Fingerprint()
	rep.AuditDetail = RotationDetail(oldAudit, AuditKeyOf(next.data).Public().(ed25519.PublicKey), r.cfg.Gen())
	rep.Carried, err = r.finishSealing(ctx)
	return rep, err
}

// requireQuiet refuses while a backup runs or a prune is unfinished:
// their writes would use keys a rotation is replacing. Stale locks (by
// storage time) and locks of dead processes on this host are removed.
func (r *Repo) requireQuiet(ctx context.Context, stale time.Duration) error {
	if stale <= 0 {
		stale = LockStale
	}
	now, err := r.StorageNow(ctx)
	if err != nil {
		return err
	}
	live, err := r.liveLocks(ctx, PruneOptions{LockStale: stale}, now, nil)
	if err != nil {
		return err
	}
	var busy []string
	for _, l := range live {
		busy = append(busy, l.Describe())
	}
	ids, err := r.ListIDs(ctx, "prune")
	if err != nil {
		return err
	}
	for _, id := range ids {
		busy = append(busy, "an unfinished prune (marker prune/"+id.Short()+")")
	}
	if len(busy) > 0 {
		return fmt.Errorf("key rotate: the repository is in use: %s; stop the backups (and the daemon), let them finish, run `coffer prune` to finish the prune, then rotate", strings.Join(busy, "; "))
	}
	return nil
}

// inventory reads and authenticates every metadata object to carry and
// returns the SHA-256 of each plaintext by name. Objects that fail
// authentication are not carried: they are reported in rep.
func (r *Repo) inventory(ctx context.Context, rep *RotateReport) (map[string][]string, error) {
	names, err := r.carriableNames(ctx)
	if err != nil {
		return nil, err
	}
	sums := make([]string, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, n := range names {
		g.Go(func() error {
			plain, err := r.readCarriable(gctx, n)
			var ce *CorruptError
			if errors.As(err, &ce) {
				return nil // left out, reported below
			}
			if err != nil {
				return err
			}
			sums[i] = sum256(plain)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("key rotate: %w", err)
	}
	objects := map[string][]string{}
	for i, n := range names {
		if sums[i] == "" {
			if rep != nil {
				rep.Skipped = append(rep.Skipped, Problem{Object: n.name, Reason: "fails authentication: not carried to the new keys"})
			}
			continue
		}
		objects[n.name] = []string{sums[i]}
	}
	return objects, nil
}

// inventoryUnchanged fails if a metadata object appeared since the
// inventory was taken.
func (r *Repo) inventoryUnchanged(ctx context.Context, objects map[string][]string) error {
	names, err := r.carriableNames(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := objects[n.name]; !ok {
			return fmt.Errorf("key rotate: %s was written while the rotation read the repository: nothing was changed; stop what writes to the repository and rotate again", n.name)
		}
	}
	return nil
}

type carriable struct{ kind, name string }

// carriableNames lists the metadata objects a rotation carries.
func (r *Repo) carriableNames(ctx context.Context) ([]carriable, error) {
	var out []carriable
	for _, d := range carriedDirs {
		err := r.listIDs(ctx, d.dir, nil, func(id ID) { out = append(out, carriable{d.kind, d.dir + "/" + id.String()}) })
		if err != nil {
			return nil, err
		}
	}
	names, err := r.auditNames(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, _, err := parseAuditName(n); err == nil {
			out = append(out, carriable{"audit", n})
		}
	}
	return out, nil
}

// readCarriable reads and authenticates one carriable object.
func (r *Repo) readCarriable(ctx context.Context, c carriable) ([]byte, error) {
	id, err := ParseID(c.name[strings.LastIndexByte(c.name, '/')+1:])
	if c.kind == "audit" {
		_, id, err = parseAuditName(c.name)
	}
	if err != nil {
		return nil, &CorruptError{Object: c.name, Reason: "not a name coffer writes"}
	}
	ct, err := readBounded(ctx, r.be, c.name, metaMax(c.kind))
	if err != nil {
		return nil, err
	}
	return r.openMeta(ctx, c.kind, c.name, id, ct)
}

func sum256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// nextGeneration makes and stores the keys of the next generation.
func (r *Repo) nextGeneration(ctx context.Context, operators []age.Recipient) (*generation, error) {
	data, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	meta, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	wk := *r.wk
	wk.Recipient, wk.Metadata = data.Recipient(), meta
	if _, err := rand.Read(wk.MACKey[:]); err != nil {
		return nil, err
	}
	g := &generation{gen: r.cfg.Gen() + 1, data: data, wk: &wk}
	if err := r.putKeys(ctx, *g, operators); err != nil {
		return nil, fmt.Errorf("key rotate: %w", err)
	}
	// The masking key stays, so that pseudonyms stay: it is carried to
	// the new generation, authenticated by the new repository key.
	mk, err := r.carryMasking(ctx)
	if err == nil && mk != nil {
		err = r.putMasking(ctx, *g, *mk, operators)
	}
	if err != nil {
		return nil, fmt.Errorf("key rotate: %w", err)
	}
	return g, nil
}

// putKeys stores a generation's key objects encrypted to the operators.
// They replace what an interrupted attempt left: nothing names a
// generation's keys before config does.
func (r *Repo) putKeys(ctx context.Context, g generation, operators []age.Recipient) error {
	repoObj, writerObj := KeyObjects(g.gen)
	for _, obj := range []struct {
		name  string
		plain []byte
	}{{repoObj, []byte(g.data.String() + "\n")}, {writerObj, g.wk.Marshal()}} {
		ct, err := encrypt(obj.plain, operators...)
		if err != nil {
			return fmt.Errorf("encrypt %s to the operators: %w", obj.name, err)
		}
		if err := r.be.Put(ctx, obj.name, ct, r.putOptions()); err != nil {
			return err
		}
	}
	return nil
}

// switchTo makes next the repository's current generation: it stores the
// carried list, then config, which is the switch. From then on the
// objects listed are accepted by their hash whichever key seals them.
func (r *Repo) switchTo(ctx context.Context, next *generation, objects map[string][]string) error {
	cfg := *r.cfg
	cfg.Generation = next.gen
	cfg.Recipient = next.data.Recipient().String()
	cfg.Previous = append(append([]int(nil), r.cfg.Previous...), r.cfg.Gen())
	nr := &Repo{be: r.be, cfg: &cfg, wk: next.wk, data: next.data, now: r.now}
	ref, err := nr.saveCarried(ctx, objects)
	if err != nil {
		return fmt.Errorf("key rotate: %w", err)
	}
	ref.Pending = true
	cfg.Carried = ref
	if err := nr.putConfig(ctx, &cfg); err != nil {
		return fmt.Errorf("key rotate: %w", err)
	}
	r.old = append(r.old, generation{gen: r.cfg.Gen(), data: r.data.(*age.X25519Identity), wk: r.wk})
	r.cfg, r.wk, r.data = &cfg, next.wk, next.data
	r.setCarriedList(objects)
	return nil
}

// putConfig authenticates cfg with the current writer key and stores it.
func (r *Repo) putConfig(ctx context.Context, cfg *Config) error {
	cfg.MAC = cfg.computeMAC(r.wk)
	if err := cfg.Validate(r.wk); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := r.be.Put(ctx, ConfigObject, append(b, '\n'), r.putOptions()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	r.cfg = cfg
	return nil
}

// finishSealing seals every carried object that an earlier generation's
// key still seals again to the current metadata key (its plaintext
// unchanged), then marks the rotation finished in config. It returns the
// number of objects sealed.
func (r *Repo) finishSealing(ctx context.Context) (int, error) {
	carried, err := r.carriedList(ctx)
	if err != nil || carried == nil {
		return 0, err
	}
	var names []string
	for n := range carried.objects {
		if !strings.HasPrefix(n, "wal/") { // WAL is data, sealed to the repository key
			names = append(names, n)
		}
	}
	sort.Strings(names)
	counts := make([]bool, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, n := range names {
		g.Go(func() error {
			done, err := r.sealAgain(gctx, n)
			counts[i] = done
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("key rotate: seal the metadata again (run `coffer key rotate` again to finish): %w", err)
	}
	cfg := *r.cfg
	ref := *cfg.Carried
	ref.Pending = false
	cfg.Carried = &ref
	if err := r.putConfig(ctx, &cfg); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range counts {
		if c {
			n++
		}
	}
	return n, nil
}

// sealAgain seals one carried object to the current metadata key unless
// it is already, or gone (deleted since, by forget or prune).
func (r *Repo) sealAgain(ctx context.Context, name string) (bool, error) {
	ct, err := readBounded(ctx, r.be, name, MaxLargeMeta)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := decrypt(name, ct, r.wk.Metadata); err == nil {
		return false, nil // sealed to the current key already
	}
	kind := kindOf(name)
	plain, err := r.readCarriable(ctx, carriable{kind, name})
	if err != nil {
		return false, err
	}
	if !r.carried.accepts(name, plain) {
		return false, &CorruptError{Object: name, Reason: "its content is not the one the rotation listed"}
	}
	ct, err = encrypt(compressMeta(nil, plain), r.wk.Metadata.Recipient())
	if err != nil {
		return false, err
	}
	if err := r.be.Put(ctx, name, ct, r.putOptions()); err != nil {
		return false, err
	}
	return true, nil
}

// kindOf returns the kind a carried object is sealed as.
func kindOf(name string) string {
	dir, _, _ := strings.Cut(name, "/")
	for _, d := range carriedDirs {
		if d.dir == dir {
			return d.kind
		}
	}
	return dir
}

// confirmKeys reads config again and fails if a key rotation replaced the
// keys this process opened the repository with. A backup calls it before
// it writes its snapshot, and a prune before it deletes: what either wrote
// with the old keys would not be authentic after the rotation.
func (r *Repo) confirmKeys(ctx context.Context) error {
	cfg, err := LoadConfig(ctx, r.be)
	if err != nil {
		return err
	}
	if err := cfg.Validate(r.wk); err != nil {
		return err
	}
	if cfg.Gen() != r.cfg.Gen() {
		return &RotatedError{Repository: cfg.ID, Generation: cfg.Gen(), Fingerprint: r.wk.Fingerprint()}
	}
	return nil
}
