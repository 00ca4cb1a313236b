// Package backup turns a stream into a snapshot: content-defined chunks,
// deduplicated against the repository's index, compressed, packed,
// encrypted to the repository key and uploaded, with memory bounded by a
// fixed number of buffers in flight.
package backup

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/restic/chunker"
	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/repository"
)

// Options describe the snapshot to write.
type Options struct {
	Source string   // the source's name; required
	Host   string   // the host the stream came from
	Tags   []string // free-form labels
	Engine string   // stdin, exec, postgres, …
	Format string   // the dump format
	// ServerVersion and Databases describe a database source.
	ServerVersion string
	Databases     []string
	Tool          string // e.g. "coffer 0.1.0"
	Time          time.Time
	// Private, when non-nil, is called once the stream has been read; what
	// it returns is encrypted to the repository key and kept in
	// the snapshot (per-table digests).
	Private func() any
	// Physical, when non-nil, is called once the stream has been read;
	// what it returns describes a physical base backup in the snapshot.
	Physical func() *repository.PhysicalInfo
	// Progress, when non-nil, is called about five times a second.
	Progress func(Progress)
	// Workers is the number of hashing and compressing goroutines
	// (default GOMAXPROCS); Uploads the number of concurrent uploads
	// (default 3).
	Workers, Uploads int
	// Now is the clock (default time.Now): the snapshot's time, and the
	// intervals that tell whether the lock is still fresh. No other host
	// compares it with its own.
	Now func() time.Time
	// Lock sets the lock's refresh interval and stale age (defaults
	// repository.LockRefresh and LockStale).
	Lock repository.LockTiming
	// Lists sets where chunk lists are cut (the zero ListCut is
	// repository.DefaultListCut).
	Lists repository.ListCut
	// BeforeSnapshot, when non-nil, is called after the stream has been
	// stored and before the lock is confirmed and the snapshot written.
	// It is a test hook: tests pause a backup there while a prune runs.
	BeforeSnapshot func()
}

// Progress is a running count.
type Progress struct {
	BytesRead, BytesNew, BytesStored int64
	Chunks, ChunksNew                int64
}

// Summary describes a finished backup.
type Summary struct {
	Snapshot    *repository.Snapshot
	BytesRead   int64 // stream bytes
	BytesNew    int64 // stream bytes in chunks not stored before
	BytesStored int64 // bytes uploaded (packs, index, snapshot)
	ChunksTotal int
	ChunksNew   int
	Packs       int
	Duration    time.Duration
}

// Run backs up src into repo. A read error from src (a dump that failed)
// fails the backup and writes no snapshot.
func Run(ctx context.Context, repo *repository.Repo, src io.Reader, opts Options) (*Summary, error) {
	if opts.Source == "" {
		return nil, fmt.Errorf("backup: a source name is required (--source)")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	start := opts.Now()
	if opts.Time.IsZero() {
		opts.Time = start
	}
	lock, err := repo.AcquireLock(ctx, repository.LockOptions{Host: opts.Host, PID: os.Getpid(), Now: opts.Now, Timing: opts.Lock})
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	// A lost lock stops the backup at once, even while it waits for its
	// source: a prune may soon take it for dead. The writer, if stuck in a
	// read, is abandoned; it can no longer write a snapshot (Confirm fails).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	var confirmed atomic.Bool // the snapshot is being written: wait for it
	go func() {
		sum, err := write(ctx, repo, lock, src, opts, &confirmed)
		done <- result{sum, err}
	}()
	var res result
	select {
	case <-lock.Lost():
		if !confirmed.Load() {
			return nil, fmt.Errorf("backup: %w", lock.Err())
		}
		res = <-done
	case res = <-done:
	}
	if res.err != nil {
		if lerr := lock.Err(); lerr != nil {
			return nil, fmt.Errorf("backup: %w", lerr)
		}
		return nil, res.err
	}
	res.sum.Duration = opts.Now().Sub(start)
	return res.sum, nil
}

// write stores the stream and the snapshot under lock.
func write(ctx context.Context, repo *repository.Repo, lock *repository.Lock, src io.Reader, opts Options, confirmed *atomic.Bool) (*Summary, error) {
	// The markers first, then the index: a marker swept in between is
	// found gone, and then the index no longer lists its packs.
	known, err := repo.LoadHonoured(ctx, lock.Markers())
	if err != nil {
		return nil, fmt.Errorf("backup: read prune markers and chunk lists: %w", err)
	}
	idx, err := repo.LoadIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: load index: %w", err)
	}
	defer idx.Close()
	known.ExcludePacks(idx)
	p := newPipeline(repo, idx, known, opts)
	stopProgress := p.reportProgress(opts.Progress)
	err = p.run(ctx, src)
	stopProgress()
	if err != nil {
		return nil, err
	}
	lists, total := p.lists.Lists()
	snap := &repository.Snapshot{
		Time: opts.Time.UTC(), Host: opts.Host, Source: opts.Source, Tags: opts.Tags,
		Engine: opts.Engine, Format: opts.Format, Tool: opts.Tool,
		ServerVersion: opts.ServerVersion, Databases: opts.Databases,
		Size: p.read.Load(), ChunksNew: int(p.chunksNew.Load()), ChunksTotal: total,
		Digest: p.digest, Lists: lists,
	}
	if opts.Private != nil {
		if snap.Private, err = repo.SealPrivate(opts.Private()); err != nil {
			return nil, err
		}
	}
	if opts.Physical != nil {
		snap.Physical = opts.Physical()
	}
	snap.Stored = p.stored.Load()
	if opts.BeforeSnapshot != nil {
		opts.BeforeSnapshot()
	}
	// Under Object Lock, what the snapshot reuses must stay locked as long
	// as it: extend before the snapshot exists.
	if _, err := repo.ExtendRetentionOf(ctx, idx, p.lists.Reused(), p.reused); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// The snapshot witnesses the audit log's head, so that a record
	// removed later is missed (docs/format.md). A failure to list the log
	// leaves the snapshot without a witness rather than fail the backup.
	if head, err := repo.AuditHead(ctx); err == nil && !head.IsZero() {
		snap.AuditHead = head.String()
	}
	// The lock must still exist and be fresh, and the snapshot written
	// before a prune could take it for stale (docs/format.md, "Why no
	// snapshot references a deleted pack").
	confirmed.Store(true)
	budget, err := lock.Confirm(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if _, err := repo.SaveSnapshot(sctx, snap); err != nil {
		return nil, err
	}
	return &Summary{
		Snapshot: snap, BytesRead: snap.Size, BytesNew: p.bytesNew.Load(), BytesStored: p.stored.Load(),
		ChunksTotal: snap.ChunksTotal, ChunksNew: snap.ChunksNew, Packs: int(p.packs.Load()),
	}, nil
}

type chunkJob struct {
	seq  int
	data *[]byte
}

type chunkResult struct {
	seq        int
	id         repository.ID
	compressed *[]byte // nil when the chunk is already stored
	raw        int
}

type pipeline struct {
	repo *repository.Repo
	idx  *repository.Index
	opts Options

	bufs     *freeList[*[]byte]       // chunks, of the chunker's max size
	zbufs    *freeList[*[]byte]       // compressed chunks
	packBufs *freeList[*bytes.Buffer] // packs

	// seen holds the chunks this backup claimed and has not yet stored:
	// once a pack is stored its chunks move to idx (uploader.upload), so
	// seen is bounded by the chunks in flight, not by the stream.
	seenMu sync.Mutex
	seen   map[repository.ID]struct{}

	// Owned by the packer: the chunk list being filled, and (under Object
	// Lock) the packs of the chunks the stream reuses.
	lists  *repository.ChunkListWriter
	reused map[repository.ID]bool
	// order holds a token per chunk read and not yet put into its list,
	// so the ids waiting for a slower one before them stay bounded.
	order  chan struct{}
	digest repository.ID

	read, bytesNew, stored, chunks, chunksNew, packs atomic.Int64
}

func newPipeline(repo *repository.Repo, idx *repository.Index, known *repository.Honoured, opts Options) *pipeline {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Uploads <= 0 {
		opts.Uploads = 3
	}
	max := repo.Config().Chunker.Max
	p := &pipeline{repo: repo, idx: idx, opts: opts, seen: map[repository.ID]struct{}{},
		lists: repo.NewChunkListWriter(known, opts.Lists)}
	if repo.Config().Lock != nil {
		p.reused = map[repository.ID]bool{}
	}
	inFlight := 64 * opts.Workers // the channels' capacity, and then some
	p.order = make(chan struct{}, 2*inFlight)
	p.bufs = newFreeList(inFlight, func() *[]byte { b := make([]byte, 0, max); return &b })
	p.zbufs = newFreeList(inFlight, func() *[]byte { b := make([]byte, 0, max/2); return &b })
	p.packBufs = newFreeList(opts.Uploads+2, func() *bytes.Buffer { return new(bytes.Buffer) })
	return p
}

// isNew reports whether id must be stored, and claims it for this backup.
func (p *pipeline) isNew(id repository.ID) (bool, error) {
	if ok, err := p.idx.Has(id); ok || err != nil {
		return false, err
	}
	p.seenMu.Lock()
	defer p.seenMu.Unlock()
	if _, ok := p.seen[id]; ok {
		return false, nil
	}
	// The uploader adds a stored pack's chunks to idx before it removes
	// them from seen, under seenMu: look again, or a chunk stored between
	// the first look and now would be stored twice.
	if ok, err := p.idx.Has(id); ok || err != nil {
		return false, err
	}
	p.seen[id] = struct{}{}
	return true, nil
}

// packStored moves the chunks of a stored pack from seen to the index, so
// that later chunks of the stream find them there. Only a pack whose
// upload succeeded is added: the index then says "stored" of nothing that
// is not, and the pack's index object is written before the snapshot.
func (p *pipeline) packStored(e repository.PackEntry) error {
	if err := p.idx.Add([]repository.PackEntry{e}); err != nil {
		return err
	}
	p.seenMu.Lock()
	defer p.seenMu.Unlock()
	for _, b := range e.Blobs {
		delete(p.seen, b.ID)
	}
	return nil
}

func (p *pipeline) run(ctx context.Context, src io.Reader) error {
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan chunkJob, 16*p.opts.Workers)
	results := make(chan chunkResult, 16*p.opts.Workers)
	packs := make(chan finishedPack)
	lists := make(chan *repository.PendingList, 2)
	g.Go(func() error { defer close(jobs); return p.chunk(gctx, src, jobs) })
	var workers sync.WaitGroup
	for range p.opts.Workers {
		workers.Add(1)
		g.Go(func() error { defer workers.Done(); return p.work(gctx, jobs, results) })
	}
	go func() { workers.Wait(); close(results) }()
	g.Go(func() error {
		defer close(packs)
		defer close(lists)
		return p.pack(gctx, results, packs, lists)
	})
	g.Go(func() error { return p.saveLists(gctx, lists) })
	up := newUploader(p.repo, &p.stored, &p.packs, p.packBufs, p.packStored)
	for range p.opts.Uploads {
		g.Go(func() error { return up.upload(gctx, packs) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return up.flushIndex(ctx)
}

// chunk reads src, cuts it into chunks and computes the stream digest.
func (p *pipeline) chunk(ctx context.Context, src io.Reader, jobs chan<- chunkJob) error {
	wk := p.repo.WriterKey()
	cp := p.repo.Config().Chunker
	digest := newAsyncHash(hmac.New(sha256.New, wk.ChunkIDKey[:]))
	defer digest.Stop()
	ch := chunker.New(io.TeeReader(src, digest), wk.Polynomial,
		chunker.WithBoundaries(cp.Min, cp.Max), chunker.WithAverageBits(cp.AvgBits))
	for seq := 0; ; seq++ {
		buf := p.bufs.get()
		c, err := ch.Next(*buf)
		if err == io.EOF {
			p.bufs.put(buf)
			digest.Sum(p.digest[:0])
			return nil
		}
		if err != nil {
			return fmt.Errorf("read source %q: %w", p.opts.Source, err)
		}
		*buf = c.Data
		p.read.Add(int64(len(c.Data)))
		select {
		case p.order <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case jobs <- chunkJob{seq: seq, data: buf}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// work hashes chunks and compresses the new ones.
func (p *pipeline) work(ctx context.Context, jobs <-chan chunkJob, results chan<- chunkResult) error {
	h := p.repo.WriterKey().ChunkHasher()
	for j := range jobs {
		data := *j.data
		r := chunkResult{seq: j.seq, id: h.Sum(data), raw: len(data)}
		isNew, err := p.isNew(r.id)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if isNew {
			z := p.zbufs.get()
			*z = repository.Compress((*z)[:0], data)
			r.compressed = z
		}
		p.bufs.put(j.data)
		select {
		case results <- r:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
