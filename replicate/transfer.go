package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// packsPerIndex is how many packs one index object of the copy lists, as
// a backup's (docs/format.md, "Index").
const packsPerIndex = 64

// copyPacks carries the packs the destination lacks, each read whole,
// checked against its name and indexed size, stored with a conditional put
// and checked by size on arrival. A pack an interrupted copy stored (it is
// listed with its size but not yet indexed) is taken as stored: its name
// is the SHA-256 of its bytes.
func (c *copier) copyPacks(ctx context.Context, p *plan) error {
	var mu sync.Mutex
	sent := map[string]int64{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallel)
	for _, pk := range p.toCopy {
		name := repository.PackName(pk.ID)
		if size, ok := p.dstData[name]; ok {
			if size != pk.Size {
				return fmt.Errorf("copy: %s at %s is %d bytes, not the %d its name proves: not this pack (tampered?); keep it for inspection and run `coffer check --read-data` on the destination",
					name, c.dst.Backend().Location(), size, pk.Size)
			}
			c.sum.PacksPresent++
			continue
		}
		g.Go(func() error {
			if err := c.copyPack(gctx, pk); err != nil {
				return err
			}
			mu.Lock()
			c.sum.Packs++
			c.sum.Bytes += pk.Size
			sent[repository.PackName(pk.ID)] = pk.Size
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return c.arrived(ctx, "data/", sent)
}

func (c *copier) copyPack(ctx context.Context, pk repository.PackInfo) error {
	ct, err := c.src.ReadPack(ctx, pk)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if err := c.dst.CopyPack(ctx, pk.ID, ct); err != nil {
		return fmt.Errorf("copy: store %s: %w", repository.PackName(pk.ID), err)
	}
	return nil
}

// arrived checks, with one listing of prefix at the destination (a writer
// may list packs but not read or Stat them), that every object sent is
// there with the size sent.
func (c *copier) arrived(ctx context.Context, prefix string, sent map[string]int64) error {
	if len(sent) == 0 {
		return nil
	}
	listed := map[string]int64{}
	if err := c.dst.Backend().List(ctx, prefix, func(fi storage.Info) error {
		if _, ok := sent[fi.Name]; ok {
			listed[fi.Name] = fi.Size
		}
		return nil
	}); err != nil {
		return fmt.Errorf("copy: list %s at the destination: %w", prefix, err)
	}
	for name, size := range sent {
		got, ok := listed[name]
		if !ok {
			return fmt.Errorf("copy: %s was stored at %s, then not listed: run the copy again; if it keeps happening, the store is inconsistent", name, c.dst.Backend().Location())
		}
		if got != size {
			return fmt.Errorf("copy: %s arrived at %s with %d bytes, %d were sent: keep it for inspection and run `coffer check --read-data` on the destination", name, c.dst.Backend().Location(), got, size)
		}
	}
	return nil
}

// writeIndex stores index objects listing the packs this copy carried
// (or found carried but unindexed), with their entries from the source's
// authenticated index objects. The destination's index is its own: it
// lists exactly the packs it holds.
func (c *copier) writeIndex(ctx context.Context, p *plan) error {
	want := map[repository.ID]bool{}
	for _, pk := range p.toCopy {
		want[pk.ID] = true
	}
	var batch []repository.PackEntry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := c.dst.SaveIndex(ctx, &repository.IndexFile{Packs: batch}); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		batch = nil
		return nil
	}
	// A prune's sweep may supersede the index objects loaded meanwhile
	// (the copy's lock honours its marker): then the objects listed now
	// hold the packs that stayed.
	read := map[repository.ID]bool{}
	for round, files := 0, p.srcIdx.Files(); round < 2 && len(want) > 0; round++ {
		for _, f := range files {
			if len(want) == 0 || read[f] {
				continue
			}
			read[f] = true
			file, err := c.src.LoadIndexFile(ctx, f)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("copy: %w", err)
			}
			for _, e := range file.Packs {
				if !want[e.ID] {
					continue
				}
				delete(want, e.ID)
				if batch = append(batch, e); len(batch) == packsPerIndex {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		var err error
		if files, err = c.src.ListIDs(ctx, "index"); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("copy: %d packs of the source's index were in none of its index objects when read again (a prune ran?): run the copy again", len(want))
	}
	return flush()
}

// copyLists carries the chunk lists the new snapshots name, each
// authenticated at the source; a list the destination holds is skipped
// when its size agrees.
func (c *copier) copyLists(ctx context.Context, p *plan) error {
	srcListed, err := c.src.ListSealed(ctx, "chunklist")
	if err != nil {
		return err
	}
	dstListed, err := c.dst.ListSealed(ctx, "chunklist")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	sent := map[string]int64{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallel)
	for _, l := range p.listOrder {
		o := repository.SealedName("chunklist", l)
		if d, ok := dstListed[o.Name]; ok {
			if s, ok := srcListed[o.Name]; ok && s.Size != d.Size {
				return fmt.Errorf("copy: %s at %s is %d bytes, the source's %d: not the copy of this list (tampered?); keep it for inspection and run `coffer check` on the destination", o.Name, c.dst.Backend().Location(), d.Size, s.Size)
			}
			continue
		}
		g.Go(func() error {
			n, err := c.carry(gctx, o)
			if err != nil {
				return err
			}
			mu.Lock()
			c.sum.Lists++
			sent[o.Name] = n
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return c.arrived(ctx, "chunklists/", sent)
}

// carry reads a metadata object at the source, authenticates it, and
// stores its ciphertext at the destination; it returns the size sent.
func (c *copier) carry(ctx context.Context, o repository.Sealed) (int64, error) {
	ct, err := c.src.ReadSealed(ctx, o)
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	if err := c.dst.PutSealed(ctx, o, ct); err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	return int64(len(ct)), nil
}

// copySnapshots carries the snapshots, last, each after the destination's
// lock is confirmed and within the time a backup's snapshot has
// (docs/format.md, "Writing a snapshot", step 5).
func (c *copier) copySnapshots(ctx context.Context, p *plan) error {
	for _, s := range p.snaps {
		o := repository.SealedName("snapshot", s.ID())
		ct, err := c.src.ReadSealed(ctx, o)
		if errors.Is(err, storage.ErrNotFound) {
			c.opts.Warn(fmt.Errorf("snapshot %s was forgotten at the source during the copy: not copied", s.ID()))
			continue
		}
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if err := c.lost(); err != nil {
			return err
		}
		budget, err := c.dstLock.Confirm(ctx)
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		sctx, cancel := context.WithTimeout(ctx, budget)
		err = c.dst.PutSealed(sctx, o, ct)
		cancel()
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		c.sum.Snapshots++
		p.copied = append(p.copied, s.ID())
	}
	return nil
}

// copyRecords carries the audit log's records or the drill records the
// destination lacks. A record that does not authenticate at the source is
// refused by name and left behind.
func (c *copier) copyRecords(ctx context.Context, p *plan, kind string) error {
	srcListed, err := c.src.ListSealed(ctx, kind)
	if err != nil {
		return err
	}
	dstListed, err := c.dst.ListSealed(ctx, kind)
	if err != nil {
		return err
	}
	for name, o := range srcListed {
		if d, ok := dstListed[name]; ok {
			if d.Size != o.Size {
				c.refuse(fmt.Errorf("%s at %s is %d bytes, the source's %d: not its copy (tampered?); run `coffer check` on the destination", name, c.dst.Backend().Location(), d.Size, o.Size))
			}
			continue
		}
		ct, err := c.src.ReadSealed(ctx, o)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			c.refuse(fmt.Errorf("not copied: %w", err))
			continue
		}
		if err := c.dst.PutSealed(ctx, o, ct); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		c.sum.Records++
	}
	return nil
}

// copyWAL carries the WAL archive when a physical base backup is copied
// (or the whole repository is). A writer cannot authenticate WAL objects
// (their MAC covers the plaintext); wal-fetch and restore check them at
// the destination as at the source.
func (c *copier) copyWAL(ctx context.Context, p *plan) error {
	whole := len(c.opts.Sources) == 0 && len(c.opts.Snapshots) == 0
	if !p.physical && !whole {
		return nil
	}
	have := map[string]int64{}
	if err := c.dst.Backend().List(ctx, "wal/", func(fi storage.Info) error {
		have[fi.Name] = fi.Size
		return nil
	}); err != nil {
		return fmt.Errorf("copy: list the destination's WAL: %w", err)
	}
	var names []string
	if err := c.src.Backend().List(ctx, "wal/", func(fi storage.Info) error {
		if _, ok := have[fi.Name]; !ok && repository.IsWALObject(fi.Name) {
			names = append(names, fi.Name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("copy: list the source's WAL: %w", err)
	}
	for _, name := range names {
		ct, err := c.src.ReadWALObject(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			continue // pruned meanwhile
		}
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if err := c.dst.CopyWAL(ctx, name, ct); err != nil {
			return fmt.Errorf("copy: store %s: %w", name, err)
		}
		c.sum.Records++
	}
	return nil
}

// CopyRecord is the content of a `copies/ID` object: one copy's run,
// written last, so that a repository can say it is a copy and of what.
type CopyRecord struct {
	Version   int       `json:"version"`
	Time      time.Time `json:"time"`
	Host      string    `json:"host"`
	Source    string    `json:"source"` // the source's location
	Snapshots int       `json:"snapshots"`
	// Copied lists the snapshots this run carried, so that a later copy
	// does not bring back one the destination's own retention forgot.
	Copied []repository.ID `json:"copied,omitempty"`
}

// recordCopy writes the copy record, when the copy carried a snapshot or
// initialised the destination.
func (c *copier) recordCopy(ctx context.Context, p *plan) error {
	if len(p.copied) == 0 && !c.sum.Initialised {
		return nil
	}
	rec := CopyRecord{Version: 1, Time: c.opts.Now().UTC(), Host: c.opts.Host, Source: c.sum.Source, Snapshots: c.sum.Snapshots, Copied: p.copied}
	if _, err := c.dst.SaveRecord(ctx, "copy", "copies", rec); err != nil {
		return fmt.Errorf("copy: record the copy: %w", err)
	}
	return nil
}

// LastCopy returns the newest copy record of repo, or nil when it is not a
// copy.
func LastCopy(ctx context.Context, repo *repository.Repo) (*CopyRecord, error) {
	recs, err := copyRecords(ctx, repo)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	last := recs[0]
	for _, r := range recs[1:] {
		if r.Time.After(last.Time) {
			last = r
		}
	}
	return last, nil
}

// copyRecords reads every copy record of repo; one that fails
// authentication is an error naming it.
func copyRecords(ctx context.Context, repo *repository.Repo) ([]*CopyRecord, error) {
	var out []*CopyRecord
	err := repo.Records(ctx, "copy", "copies", func(id repository.ID, b []byte) error {
		var r CopyRecord
		if err := json.Unmarshal(b, &r); err != nil || r.Version != 1 {
			return fmt.Errorf("copies/%s: not a copy record of version 1 (%v): remove it or upgrade coffer", id, err)
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}
