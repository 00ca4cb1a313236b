package replicate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// plan is what one copy carries, found by listing both sides.
type plan struct {
	srcIdx, dstIdx *repository.Index
	dstKnown       *repository.Honoured
	snaps          []*repository.Snapshot // to copy, oldest first
	needed         map[repository.ID]repository.PackInfo
	toCopy         []repository.PackInfo // needed and not indexed at the destination
	listOrder      []repository.ID       // lists the new snapshots name
	dstData        map[string]int64      // the destination's data/, by name
	physical       bool                  // a selected snapshot is a base backup
	copied         []repository.ID       // the snapshots this run carried
}

func (p *plan) close() {
	for _, ix := range []*repository.Index{p.srcIdx, p.dstIdx} {
		if ix != nil {
			ix.Close()
		}
	}
}

func (p *plan) packSet() map[repository.ID]bool {
	out := make(map[repository.ID]bool, len(p.needed))
	for id := range p.needed {
		out[id] = true
	}
	return out
}

// plan reads the destination's honoured markers before its index (as a
// backup does), the source's index and snapshots, and works out what the
// selected snapshots that the destination lacks need.
func (c *copier) plan(ctx context.Context) (*plan, error) {
	p := &plan{needed: map[repository.ID]repository.PackInfo{}}
	var err error
	if p.dstKnown, err = c.dst.LoadHonoured(ctx, c.dstLock.Markers()); err != nil {
		return nil, fmt.Errorf("copy: read the destination's prune markers: %w", err)
	}
	if p.dstIdx, err = c.dst.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("copy: load the destination's index: %w", err)
	}
	if p.srcIdx, err = c.src.LoadIndex(ctx); err != nil {
		p.close()
		return nil, fmt.Errorf("copy: load the source's index: %w", err)
	}
	if err := c.selectSnapshots(ctx, p); err != nil {
		p.close()
		return nil, err
	}
	if err := c.needs(ctx, p); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// selectSnapshots chooses the source's snapshots to copy. A snapshot that
// does not authenticate is refused by name; one the destination holds is
// skipped once its stored size agrees with the source's.
func (c *copier) selectSnapshots(ctx context.Context, p *plan) error {
	all, err := c.src.Snapshots(ctx)
	var damaged *repository.DamagedError
	if errors.As(err, &damaged) {
		for _, e := range damaged.Errs {
			c.refuse(fmt.Errorf("not copied: %w", e))
		}
	} else if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	chosen, err := c.choose(all)
	if err != nil {
		return err
	}
	srcListed, err := c.src.ListSealed(ctx, "snapshot")
	if err != nil {
		return err
	}
	dstListed, err := c.dst.ListSealed(ctx, "snapshot")
	if err != nil {
		return err
	}
	dropped, err := c.forgottenAtDestination(ctx)
	if err != nil {
		return err
	}
	for _, s := range chosen {
		name := repository.SealedName("snapshot", s.ID()).Name
		if _, ok := srcListed[name]; !ok {
			c.opts.Warn(fmt.Errorf("snapshot %s was forgotten at the source during the copy: not copied", s.ID()))
			continue
		}
		if d, ok := dstListed[name]; ok {
			if d.Size != srcListed[name].Size {
				return fmt.Errorf("copy: %s at %s is %d bytes, the source's %d: it is not the copy of this snapshot (tampered?); keep it for inspection and run `coffer check` on the destination",
					name, c.dst.Backend().Location(), d.Size, srcListed[name].Size)
			}
			c.sum.SnapshotsPresent++
			continue
		}
		if dropped[s.ID()] && !slices.ContainsFunc(c.opts.Snapshots, func(ref string) bool { return strings.HasPrefix(s.ID().String(), strings.ToLower(ref)) }) {
			c.sum.SnapshotsDropped++
			continue
		}
		p.snaps = append(p.snaps, s)
	}
	return nil
}

// choose applies Options.Sources and Options.Snapshots.
func (c *copier) choose(all []*repository.Snapshot) ([]*repository.Snapshot, error) {
	if len(c.opts.Sources) == 0 && len(c.opts.Snapshots) == 0 {
		return all, nil
	}
	pick := map[repository.ID]bool{}
	for _, ref := range c.opts.Snapshots {
		var match []repository.ID
		for _, s := range all {
			if strings.HasPrefix(s.ID().String(), strings.ToLower(ref)) {
				match = append(match, s.ID())
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("copy: no snapshot %q in %s that authenticates: list them with `coffer snapshots`", ref, c.src.Backend().Location())
		case 1:
			pick[match[0]] = true
		default:
			return nil, fmt.Errorf("copy: snapshot prefix %q is ambiguous (%d matches): give more digits", ref, len(match))
		}
	}
	var out []*repository.Snapshot
	found := map[string]bool{}
	for _, s := range all {
		if pick[s.ID()] || slices.Contains(c.opts.Sources, s.Source) {
			out = append(out, s)
			found[s.Source] = true
		}
	}
	for _, src := range c.opts.Sources {
		if !found[src] {
			return nil, fmt.Errorf("copy: no snapshot of source %q in %s: list sources with `coffer snapshots`", src, c.src.Backend().Location())
		}
	}
	return out, nil
}

// needs walks the chunk lists of the snapshots to copy (each list
// authenticated as it is read) and finds the packs their chunks are in.
// A snapshot whose lists or chunks cannot be found is refused by name.
func (c *copier) needs(ctx context.Context, p *plan) error {
	seen := map[repository.ID]bool{}
	var keep []*repository.Snapshot
	for _, s := range p.snaps {
		packs := map[repository.ID]repository.PackInfo{}
		err := c.src.SnapshotChunks(ctx, s, func(id repository.ID) error {
			pk, _, ok, err := p.srcIdx.Lookup(id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("chunk %s of snapshot %s is in no index object of the source: run `coffer check` on it", id.Short(), s.ID().Short())
			}
			packs[pk.ID] = pk
			return nil
		})
		if errors.Is(err, storage.ErrNotFound) && c.gone(ctx, s) {
			continue // forgotten since it was listed
		}
		if err != nil {
			c.refuse(fmt.Errorf("snapshot %s not copied: %w", s.ID(), err))
			continue
		}
		for id, pk := range packs {
			p.needed[id] = pk
		}
		for _, l := range s.Lists {
			if !seen[l] {
				seen[l] = true
				p.listOrder = append(p.listOrder, l)
			}
		}
		p.physical = p.physical || s.Physical != nil
		keep = append(keep, s)
	}
	p.snaps = keep
	return c.missing(ctx, p)
}

// gone reports whether snapshot s was forgotten at the source.
func (c *copier) gone(ctx context.Context, s *repository.Snapshot) bool {
	_, err := c.src.Backend().Stat(ctx, repository.SealedName("snapshot", s.ID()).Name)
	if errors.Is(err, storage.ErrNotFound) {
		c.opts.Warn(fmt.Errorf("snapshot %s was forgotten at the source during the copy: not copied", s.ID()))
		return true
	}
	return false
}

// missing finds which needed packs the destination lacks, and refuses
// what a prune on the destination is about to delete.
func (c *copier) missing(ctx context.Context, p *plan) error {
	indexed := map[repository.ID]bool{}
	for _, pk := range p.dstIdx.Packs() {
		indexed[pk.ID] = true
	}
	for id, pk := range p.needed {
		if p.dstKnown.CandidatePack(id) {
			return fmt.Errorf("copy: a prune on %s marked pack %s, which a snapshot to copy needs: run the copy again once that prune has finished (`coffer prune` on the destination sweeps it)", c.dst.Backend().Location(), id.Short())
		}
		if !indexed[id] {
			p.toCopy = append(p.toCopy, pk)
		}
	}
	for _, l := range p.listOrder {
		if p.dstKnown.CandidateList(l) {
			return fmt.Errorf("copy: a prune on %s marked chunk list %s, which a snapshot to copy names: run the copy again once that prune has finished", c.dst.Backend().Location(), l.Short())
		}
	}
	slices.SortFunc(p.toCopy, func(a, b repository.PackInfo) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	p.dstData = map[string]int64{}
	return c.dst.Backend().List(ctx, "data/", func(fi storage.Info) error {
		p.dstData[fi.Name] = fi.Size
		return nil
	})
}

// forgottenAtDestination returns the snapshots that earlier copies carried
// (their copy records say so): one of them that the destination no longer
// holds was forgotten there, by its own retention, and is not brought back
// unless --snapshot names it.
func (c *copier) forgottenAtDestination(ctx context.Context) (map[repository.ID]bool, error) {
	recs, err := copyRecords(ctx, c.dst)
	if err != nil {
		return nil, fmt.Errorf("copy: read the destination's copy records: %w", err)
	}
	out := map[repository.ID]bool{}
	for _, r := range recs {
		for _, id := range r.Copied {
			out[id] = true
		}
	}
	return out, nil
}
