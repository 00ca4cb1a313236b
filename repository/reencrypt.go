package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ReencryptOptions configure Reencrypt.
type ReencryptOptions struct {
	Jobs  int          // packs rewritten at once (default 4)
	Prune PruneOptions // for removing the packs rewritten
	// Progress, if set, is told of each pack rewritten.
	Progress func(done, total int)
}

// ReencryptReport says what Reencrypt did and what is left.
type ReencryptReport struct {
	Private      int          `json:"private_parts_reencrypted"`
	Packs        int          `json:"packs_rewritten"`
	WAL          int          `json:"wal_files_rewritten"`
	PackBytes    int64        `json:"packs_rewritten_bytes"`
	Prune        *PruneReport `json:"prune,omitempty"`
	OldPacks     int          `json:"old_packs_indexed"` // packs of earlier generations still indexed
	Retired      []int        `json:"generations_retired,omitempty"`
	KeysRetained []string     `json:"key_objects_retained,omitempty"` // old key objects under Object Lock
}

// Reencrypt rewrites everything still encrypted to an earlier generation
// of the repository key: the private parts of snapshots and drill records,
// then every referenced blob of every pack of an earlier generation (into
// new packs, with rewritePack), after which prune removes the old packs
// with its usual marker and sweep. Once nothing indexed is encrypted to
// an earlier generation, config stops naming those generations and their
// key objects are deleted: an operator's identity that could open them
// then opens nothing (see docs/format.md, "Key rotation"). It needs an
// operator's identity; run it again if backups kept the old packs alive.
func (r *Repo) Reencrypt(ctx context.Context, opts ReencryptOptions) (*ReencryptReport, error) {
	if r.data == nil {
		return nil, ErrNeedIdentity
	}
	rep := &ReencryptReport{}
	if c := r.cfg.Carried; c != nil && c.Pending {
		// A rotation or an earlier run was interrupted: finish sealing first.
		if _, err := r.finishSealing(ctx); err != nil {
			return rep, err
		}
	}
	if len(r.cfg.Previous) == 0 {
		return rep, nil
	}
	// Backups and prunes may run meanwhile: rewritten packs are indexed
	// like a backup's, and the old ones go through prune's protocol.
	var err error
	if rep.Private, err = r.reencryptPrivate(ctx); err != nil {
		return rep, err
	}
	if err := r.reencryptPacks(ctx, opts, rep); err != nil {
		return rep, err
	}
	if rep.WAL, err = r.reencryptWAL(ctx); err != nil {
		return rep, err
	}
	if rep.Prune, err = r.Prune(ctx, opts.Prune); err != nil {
		return rep, err
	}
	return rep, r.retire(ctx, rep)
}

// reencryptPacks rewrites the referenced blobs of the packs of earlier
// generations that hold a referenced chunk found in no current pack.
func (r *Repo) reencryptPacks(ctx context.Context, opts ReencryptOptions, rep *ReencryptReport) error {
	all, err := r.referenced(ctx)
	if err != nil {
		return err
	}
	refs := all.chunks
	_, entries, err := r.indexEntries(ctx)
	if err != nil {
		return err
	}
	current := currentChunks(entries, r.cfg.Gen())
	var todo []PackEntry
	for _, e := range entries {
		if e.Generation() < r.cfg.Gen() && needs(e, refs, current) {
			todo = append(todo, e)
		}
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	var mu sync.Mutex
	var batch []PackEntry
	flush := func(force bool) error { // callers hold mu
		if len(batch) == 0 || (!force && len(batch) < 64) {
			return nil
		}
		if _, err := r.SaveIndex(ctx, &IndexFile{Packs: batch}); err != nil {
			return err
		}
		batch = nil
		return nil
	}
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, e := range todo {
		g.Go(func() error {
			buf := bufs.Get().(*bytes.Buffer)
			defer bufs.Put(buf)
			ne, ok, err := r.rewritePack(gctx, e, func(b Blob) bool { return refs[b.ID] && !current[b.ID] }, buf)
			if err != nil || !ok {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			batch = append(batch, ne)
			rep.Packs++
			rep.PackBytes += ne.Size
			if opts.Progress != nil {
				opts.Progress(rep.Packs, len(todo))
			}
			return flush(false)
		})
	}
	err = g.Wait()
	mu.Lock()
	defer mu.Unlock()
	// What was rewritten is indexed even when another pack failed, so a
	// second run continues where this one stopped.
	if ferr := flush(true); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("key rotate --reencrypt: %w (run it again to continue)", err)
	}
	return nil
}

// currentChunks returns the chunks stored in packs of generation gen.
func currentChunks(entries []PackEntry, gen int) map[ID]bool {
	out := map[ID]bool{}
	for _, e := range entries {
		if e.Generation() == gen {
			for _, b := range e.Blobs {
				out[b.ID] = true
			}
		}
	}
	return out
}

// supersededByCurrent reports whether e is a pack of an earlier generation
// every referenced chunk of which a pack of the current generation holds:
// re-encryption made it redundant, and prune may remove it.
func supersededByCurrent(e PackEntry, gen int, refs, current map[ID]bool) bool {
	return e.Generation() < gen && !needs(e, refs, current)
}

// privateBatch bounds the plaintext a round of re-encrypting private
// parts holds in memory.
const privateBatch = 64 << 20

// reencryptPrivate re-encrypts, to the current repository key, the private
// parts of carried snapshots and drill records still encrypted to an
// earlier one. Such an object's plaintext changes, so each batch is a
// round: the carried list first accepts both plaintexts (config pending),
// the objects are sealed again, then the list accepts only the new one.
func (r *Repo) reencryptPrivate(ctx context.Context) (int, error) {
	carried, err := r.carriedList(ctx)
	if err != nil || carried == nil {
		return 0, err
	}
	var names []string
	for n := range carried.objects {
		if d := kindOf(n); d == "snapshot" || d == "drill" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	total := 0
	for len(names) > 0 {
		changed := map[string][]byte{}
		size := 0
		for len(names) > 0 && size < privateBatch {
			n := names[0]
			names = names[1:]
			plain, err := r.readCarriable(ctx, carriable{kindOf(n), n})
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return total, err
			}
			np, ok, err := r.privateToCurrent(n, plain)
			if err != nil {
				return total, err
			}
			if ok {
				changed[n] = np
				size += len(np)
			}
		}
		if err := r.replaceCarried(ctx, changed); err != nil {
			return total, err
		}
		total += len(changed)
	}
	return total, nil
}

// privateToCurrent returns plain with its "private" part encrypted to the
// current repository key, and whether that changed anything.
func (r *Repo) privateToCurrent(object string, plain []byte) ([]byte, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, false, &CorruptError{Object: object, Reason: "malformed JSON", Err: err}
	}
	var sealed []byte
	if raw, ok := m["private"]; !ok || json.Unmarshal(raw, &sealed) != nil || len(sealed) == 0 {
		return nil, false, nil
	}
	if _, err := decrypt(object, sealed, r.data); err == nil {
		return nil, false, nil
	}
	inner, err := decrypt(object+" (private part)", sealed, r.dataIdentities()...)
	if err != nil {
		return nil, false, err
	}
	if sealed, err = encrypt(inner, r.wk.Recipient); err != nil {
		return nil, false, err
	}
	m["private"], _ = json.Marshal(sealed)
	np, err := json.Marshal(m)
	return np, err == nil, err
}

// replaceCarried stores new plaintexts for carried objects, in a round
// that a crash at any point leaves readable: see reencryptPrivate.
func (r *Repo) replaceCarried(ctx context.Context, changed map[string][]byte) error {
	if len(changed) == 0 {
		return nil
	}
	objects := maps.Clone(r.carried.objects)
	for n, np := range changed {
		objects[n] = append(slices.Clone(objects[n][:1]), sum256(np))
	}
	if err := r.setCarried(ctx, objects, true); err != nil {
		return err
	}
	for n, np := range changed {
		ct, err := encrypt(compressMeta(nil, np), r.wk.Metadata.Recipient())
		if err != nil {
			return err
		}
		if err := r.be.Put(ctx, n, ct, r.putOptions()); err != nil {
			return fmt.Errorf("key rotate --reencrypt: seal %s again: %w", n, err)
		}
		objects[n] = []string{sum256(np)}
	}
	return r.setCarried(ctx, objects, false)
}

// setCarried stores a carried list and makes config name it, then deletes
// the list config named before.
func (r *Repo) setCarried(ctx context.Context, objects map[string][]string, pending bool) error {
	ref, err := r.saveCarried(ctx, objects)
	if err != nil {
		return err
	}
	ref.Pending = pending
	cfg := *r.cfg
	old := cfg.Carried
	cfg.Carried = ref
	if err := r.putConfig(ctx, &cfg); err != nil {
		return err
	}
	r.setCarriedList(objects)
	if old != nil && old.Object != ref.Object {
		r.be.Delete(ctx, old.Object) // unreferenced now; a failure leaves garbage only
	}
	return nil
}

// retire removes the earlier generations once nothing indexed and no
// private part is encrypted to them: config first, then their key objects.
func (r *Repo) retire(ctx context.Context, rep *ReencryptReport) error {
	_, entries, err := r.indexEntries(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Generation() < r.cfg.Gen() {
			rep.OldPacks++
		}
	}
	if rep.OldPacks > 0 {
		return nil
	}
	cfg := *r.cfg
	rep.Retired, cfg.Previous = cfg.Previous, nil
	if err := r.putConfig(ctx, &cfg); err != nil {
		return err
	}
	r.old = nil
	for _, gen := range rep.Retired {
		repoObj, writerObj := KeyObjects(gen)
		for _, name := range []string{repoObj, writerObj} {
			if err := r.be.Delete(ctx, name); err != nil && !isNotFound(err) {
				rep.KeysRetained = append(rep.KeysRetained, name)
			}
		}
	}
	return nil
}
