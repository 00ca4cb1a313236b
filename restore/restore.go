// Package restore turns a snapshot back into its stream: chunks fetched and
// decrypted in parallel, each checked against its id, written in order, and
// the whole stream checked against the snapshot's digest.
package restore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/repository"
)

// Options tune a restore.
type Options struct {
	Workers  int            // concurrent fetches (default 2×GOMAXPROCS, at least 4)
	Progress func(Progress) // called after each piece is written, when set
}

// Progress is a running count.
type Progress struct {
	BytesWritten, BytesTotal int64
}

// Summary describes a finished restore.
type Summary struct {
	Bytes    int64
	Chunks   int
	Duration time.Duration
}

// maxRunRaw bounds the plaintext one fetch returns, and so memory.
const maxRunRaw = 8 << 20

// run is a stretch of the stream stored in one pack.
type run struct {
	pack  repository.PackInfo
	blobs []repository.Blob
	raw   int
}

// Run writes snapshot snap of repo to w. It returns an error, and w holds
// an incomplete or wrong stream, if any chunk is missing or damaged or the
// stream does not match the snapshot's digest.
func Run(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, w io.Writer, opts Options) (*Summary, error) {
	start := time.Now()
	if !repo.CanRead() {
		return nil, repository.ErrNeedIdentity
	}
	idx, err := repo.LoadIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore: load index: %w", err)
	}
	runs, err := plan(idx, snap)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	digest := hmac.New(sha256.New, repo.WriterKey().ChunkIDKey[:])
	var written atomic.Int64
	out := io.MultiWriter(w, digest)

	g, gctx := errgroup.WithContext(ctx)
	futures := make(chan chan []byte, opts.Workers)
	sem := make(chan struct{}, opts.Workers)
	g.Go(func() error {
		defer close(futures)
		for _, r := range runs {
			f := make(chan []byte, 1)
			select {
			case futures <- f:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer func() { <-sem }()
				buf := make([]byte, 0, r.raw)
				err := repo.ReadBlobs(gctx, r.pack, r.blobs, func(_ repository.Blob, data []byte) error {
					buf = append(buf, data...)
					return nil
				})
				if err != nil {
					return fmt.Errorf("snapshot %s: %w", snap.ID().Short(), err)
				}
				f <- buf
				return nil
			})
		}
		return nil
	})
	g.Go(func() error {
		for f := range futures {
			select {
			case buf := <-f:
				if _, err := out.Write(buf); err != nil {
					return fmt.Errorf("restore: write: %w", err)
				}
				written.Add(int64(len(buf)))
				if opts.Progress != nil {
					opts.Progress(Progress{BytesWritten: written.Load(), BytesTotal: snap.Size})
				}
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var got repository.ID
	digest.Sum(got[:0])
	if got != snap.Digest || written.Load() != snap.Size {
		return nil, &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
			Reason: fmt.Sprintf("the restored stream (%d bytes) does not match the snapshot's digest and size (%d bytes)", written.Load(), snap.Size)}
	}
	return &Summary{Bytes: written.Load(), Chunks: len(snap.Chunks), Duration: time.Since(start)}, nil
}

// plan groups the snapshot's chunks into runs of consecutive chunks stored
// in the same pack.
func plan(idx *repository.Index, snap *repository.Snapshot) ([]run, error) {
	var runs []run
	for i, id := range snap.Chunks {
		p, b, ok := idx.Lookup(id)
		if !ok {
			return nil, &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
				Reason: fmt.Sprintf("chunk %d (%s) is not in any index: its pack was deleted or never finished", i, id.Short())}
		}
		if n := len(runs); n > 0 && runs[n-1].pack.ID == p.ID && runs[n-1].raw+int(b.Raw) <= maxRunRaw {
			runs[n-1].blobs = append(runs[n-1].blobs, b)
			runs[n-1].raw += int(b.Raw)
			continue
		}
		runs = append(runs, run{pack: p, blobs: []repository.Blob{b}, raw: int(b.Raw)})
	}
	return runs, nil
}
