// Package restore turns a snapshot back into its stream: chunks fetched and
// decrypted in parallel, each checked against its id, written in order, and
// the whole stream checked against the snapshot's digest. It restores one
// part of a stream (one database of a server's dump) as well, and loads
// database snapshots into databases.
package restore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/repository"
)

// Options tune a restore.
type Options struct {
	Workers  int            // concurrent fetches (default 2×GOMAXPROCS, at least 4)
	Progress func(Progress) // called after each piece is written, when set
	// Range, when set, restores only these bytes of the stream (one part
	// of it, see Part); nil restores the whole stream.
	Range *Range
}

// Range is a stretch of a snapshot's stream: Length bytes from Offset.
type Range struct {
	Offset, Length int64
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
const maxRunRaw = 4 << 20

// run is a stretch of the stream stored in one pack; skip is how many of
// its bytes come before the range being restored.
type run struct {
	pack  repository.PackInfo
	blobs []repository.Blob
	raw   int
	skip  int64
}

// Run writes snapshot snap of repo to w. It returns an error, and w holds
// an incomplete or wrong stream, if any chunk is missing or damaged or the
// stream does not match the snapshot's digest.
//
// With opts.Range it writes only those bytes, and reads only the chunks
// that hold them: the chunks before the range are skipped whole (their
// sizes come from the index), and the first and last chunk read are cut
// to the range. Every chunk read is still checked against its keyed id.
// The digest of the whole stream cannot be checked on a part of it; the
// range is proven all the same, because the chunk list comes from the
// snapshot, which the writer key authenticates, and each chunk's size from
// an index the writer key authenticates and from its keyed id (a chunk
// read whose length differs from its index entry is refused): only a
// writer could make a range hold other bytes, and a writer can write any
// snapshot anyway.
//
// The chunk ids are read from the snapshot's chunk lists as the restore
// goes, so memory does not grow with the stream.
func Run(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, w io.Writer, opts Options) (*Summary, error) {
	start := time.Now()
	if !repo.CanRead() {
		return nil, repository.ErrNeedIdentity
	}
	if rg := opts.Range; rg != nil && (rg.Offset < 0 || rg.Length < 0 || rg.Offset > snap.Size-rg.Length) {
		return nil, fmt.Errorf("restore: bytes %d to %d are outside snapshot %s's %d-byte stream", rg.Offset, rg.Offset+rg.Length, snap.ID().Short(), snap.Size)
	}
	idx, err := repo.LoadIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore: load index: %w", err)
	}
	defer idx.Close()
	if opts.Workers <= 0 {
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.Range != nil {
		return runRange(ctx, repo, idx, snap, w, opts, start)
	}
	// The stream digest is one sequential HMAC over the whole stream: it
	// runs in its own goroutine, beside the writes and the fetches, so it
	// adds no time while it is not the slowest stage.
	digest := hmac.New(sha256.New, repo.WriterKey().ChunkIDKey[:])
	out := &countingWriter{w: w}
	if _, err := fetch(ctx, repo, idx, snap, out, digest, opts, snap.Size); err != nil {
		return nil, err
	}
	var got repository.ID
	digest.Sum(got[:0])
	if got != snap.Digest || out.n != snap.Size {
		return nil, &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
			Reason: fmt.Sprintf("the restored stream (%d bytes) does not match the snapshot's digest and size (%d bytes)", out.n, snap.Size)}
	}
	return &Summary{Bytes: out.n, Chunks: snap.ChunksTotal, Duration: time.Since(start)}, nil
}

// runRange writes opts.Range of the stream.
func runRange(ctx context.Context, repo *repository.Repo, idx *repository.Index, snap *repository.Snapshot, w io.Writer, opts Options, start time.Time) (*Summary, error) {
	out := &window{w: w, left: opts.Range.Length}
	chunks, err := fetch(ctx, repo, idx, snap, out, nil, opts, opts.Range.Length)
	if err != nil {
		return nil, err
	}
	if out.left != 0 {
		return nil, &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
			Reason: fmt.Sprintf("its chunks hold %d bytes fewer than bytes %d to %d of the stream", out.left, opts.Range.Offset, opts.Range.Offset+opts.Range.Length)}
	}
	return &Summary{Bytes: opts.Range.Length, Chunks: chunks, Duration: time.Since(start)}, nil
}

// fetch reads the runs that plan makes in parallel and writes them to out
// in order, and to digest (when not nil) in its own goroutine; total is
// what progress counts towards. It returns the number of chunks read. Each
// run is decompressed straight into a buffer from a pool, which goes back
// to it once written and digested: at most 2×Workers+3 buffers of
// maxRunRaw are alive (being fetched, waiting in order, being written,
// waiting for and in the digest).
func fetch(ctx context.Context, repo *repository.Repo, idx *repository.Index, snap *repository.Snapshot, out progressWriter, digest io.Writer, opts Options, total int64) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	futures := make(chan chan *piece, opts.Workers)
	sem := make(chan struct{}, opts.Workers)
	var chunks int
	g.Go(func() error {
		defer close(futures)
		var err error
		chunks, err = plan(gctx, repo, idx, snap, opts.Range, func(r run) error {
			f := make(chan *piece, 1)
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
				p := getPiece()
				var err error
				p.data, err = repo.AppendBlobs(gctx, r.pack, r.blobs, p.data[:0])
				if err != nil {
					p.release()
					return fmt.Errorf("snapshot %s: %w", snap.ID().Short(), err)
				}
				if r.skip > int64(len(p.data)) {
					p.release()
					return &repository.CorruptError{Object: "snapshots/" + snap.ID().String(), Reason: "its chunks hold fewer bytes than the index says"}
				}
				p.skip = int(r.skip)
				f <- p
				return nil
			})
			return nil
		})
		return err
	})
	var hashed chan *piece
	if digest != nil {
		hashed = make(chan *piece, 1)
		g.Go(func() error {
			for p := range hashed {
				digest.Write(p.data[p.skip:])
				p.release()
			}
			return nil
		})
	}
	g.Go(func() error {
		if hashed != nil {
			defer close(hashed)
		}
		for f := range futures {
			var p *piece
			select {
			case p = <-f:
			case <-gctx.Done():
				return gctx.Err()
			}
			if hashed != nil {
				p.refs.Add(1)
				select {
				case hashed <- p:
				case <-gctx.Done():
					p.release()
					p.release()
					return gctx.Err()
				}
			}
			_, err := out.Write(p.data[p.skip:])
			p.release()
			if err != nil {
				return fmt.Errorf("restore: write: %w", err)
			}
			if opts.Progress != nil {
				opts.Progress(Progress{BytesWritten: out.written(), BytesTotal: total})
			}
		}
		return nil
	})
	err := g.Wait()
	return chunks, err
}

// piece is one run's plaintext on its way to the writer and the digest;
// it goes back to the pool when the last of them releases it. Its first
// skip bytes come before the range being restored.
type piece struct {
	data []byte
	skip int
	refs atomic.Int32
}

var pieces = sync.Pool{New: func() any { return &piece{data: make([]byte, 0, maxRunRaw)} }}

func getPiece() *piece {
	p := pieces.Get().(*piece)
	p.refs.Store(1)
	p.skip = 0
	return p
}

func (p *piece) release() {
	if p.refs.Add(-1) == 0 {
		p.data = p.data[:0]
		pieces.Put(p)
	}
}

// progressWriter is a writer that counts what it passed on.
type progressWriter interface {
	io.Writer
	written() int64
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) written() int64 { return c.n }

// window passes on the first left bytes written to it and drops the rest.
type window struct {
	w    io.Writer
	left int64
	n    int64
}

func (v *window) Write(p []byte) (int, error) {
	all := len(p)
	p = p[:min(v.left, int64(len(p)))]
	n, err := v.w.Write(p)
	v.left -= int64(n)
	v.n += int64(n)
	if err != nil {
		return n, err
	}
	return all, nil
}

func (v *window) written() int64 { return v.n }

// plan calls emit with the snapshot's chunks (those that hold rg, when
// given) grouped into runs of consecutive chunks stored in the same pack,
// in order, as it reads them from the snapshot's chunk lists; the first
// run of a range says how many of its bytes come before rg. It returns the
// number of chunks in the runs.
func plan(ctx context.Context, repo *repository.Repo, idx *repository.Index, snap *repository.Snapshot, rg *Range, emit func(run) error) (int, error) {
	var cur run
	var pos int64
	i, chunks := -1, 0
	err := repo.SnapshotChunks(ctx, snap, func(id repository.ID) error {
		i++
		if rg != nil && pos >= rg.Offset+rg.Length {
			return repository.ErrStop // past the range: these chunks are not needed
		}
		p, b, ok, err := idx.Lookup(id)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if !ok {
			return &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
				Reason: fmt.Sprintf("chunk %d (%s) is not in any index: its pack was deleted or never finished", i, id.Short())}
		}
		start := pos
		pos += int64(b.Raw)
		if rg != nil && pos <= rg.Offset {
			return nil // before the range: skipped unread
		}
		chunks++
		if chunks > 1 && cur.pack.ID == p.ID && cur.raw+int(b.Raw) <= maxRunRaw {
			cur.blobs = append(cur.blobs, b)
			cur.raw += int(b.Raw)
			return nil
		}
		if chunks > 1 {
			if err := emit(cur); err != nil {
				return err
			}
		}
		cur = run{pack: p, blobs: []repository.Blob{b}, raw: int(b.Raw)}
		if rg != nil && chunks == 1 {
			cur.skip = rg.Offset - start
		}
		return nil
	})
	if err == nil && chunks > 0 {
		err = emit(cur)
	}
	return chunks, err
}

// WholeStream is the --part value that restores a snapshot's whole
// stream: every part, one after the other.
const WholeStream = "all"

// Parts returns the named parts of snapshot snap's stream (the globals
// and each database of a server's dump), or none for a snapshot that is
// one stream (stdin, exec, sqlite). The list is checked to cover the
// stream exactly, in order.
func Parts(repo *repository.Repo, snap *repository.Snapshot) ([]engine.Part, error) {
	if len(snap.Private) == 0 {
		return nil, nil
	}
	var rep engine.Report
	if err := repo.OpenPrivate(snap, &rep); err != nil {
		return nil, err
	}
	var off int64
	for _, p := range rep.Parts {
		if p.Offset != off || p.Size < 0 || p.Size > snap.Size-off {
			return nil, &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
				Reason: fmt.Sprintf("its part list is inconsistent: part %q (%d bytes from byte %d) does not follow the one before it (at byte %d) inside the %d-byte stream", p.Name, p.Size, p.Offset, off, snap.Size)}
		}
		off += p.Size
	}
	if len(rep.Parts) > 0 && off != snap.Size {
		return nil, &repository.CorruptError{Object: "snapshots/" + snap.ID().String(),
			Reason: fmt.Sprintf("its parts hold %d bytes, its stream %d", off, snap.Size)}
	}
	return rep.Parts, nil
}

// OutputPart chooses what a restore to a file or standard output writes
// of snapshot snap, so that the database's own tools read it: name ""
// chooses the default, the one database's dump of a single-database
// snapshot (shop.pgdump, which pg_restore reads; shop.sql, which the
// mariadb client reads) and the whole stream of a snapshot without parts;
// WholeStream the whole stream; anything else the part of that name
// (globals.sql, shop.pgdump, or shop for it). It returns nil for the
// whole stream.
func OutputPart(repo *repository.Repo, snap *repository.Snapshot, name string) (*engine.Part, error) {
	parts, err := Parts(repo, snap)
	if err != nil {
		return nil, err
	}
	if name == WholeStream {
		return nil, nil
	}
	if len(parts) == 0 {
		if name == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("snapshot %s is a %s backup: its stream is one piece, with no parts; restore it without --part", snap.ID().Short(), snap.Engine)
	}
	if name != "" {
		var found []engine.Part
		for _, p := range parts {
			if p.Name == name {
				return &p, nil
			}
			if strings.TrimSuffix(p.Name, path.Ext(p.Name)) == name {
				found = append(found, p)
			}
		}
		if len(found) == 1 {
			return &found[0], nil
		}
		return nil, fmt.Errorf("snapshot %s has no part %q: give --part with one of %s, or --part %s for the whole stream", snap.ID().Short(), name, listParts(parts), WholeStream)
	}
	if snap.Physical != nil {
		return nil, fmt.Errorf("snapshot %s is a physical base backup: restore it with --pgdata DIR, or choose one of its archives with --part NAME (parts: %s), or --part %s for the whole stream",
			snap.ID().Short(), listParts(parts), WholeStream)
	}
	var dbs []engine.Part
	for _, p := range parts {
		if !(snap.Engine == "postgres" && p.Name == postgres.GlobalsPart) {
			dbs = append(dbs, p)
		}
	}
	if len(dbs) == 1 {
		return &dbs[0], nil
	}
	return nil, fmt.Errorf("snapshot %s holds %d databases: choose one with --part NAME (parts: %s), or --part %s for the whole stream (the parts one after the other, which no database tool reads as one file)",
		snap.ID().Short(), len(dbs), listParts(parts), WholeStream)
}

func listParts(parts []engine.Part) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprintf("%s (%d bytes)", p.Name, p.Size)
	}
	return strings.Join(s, ", ")
}

// PartRange is the range of the stream that part p covers.
func PartRange(p *engine.Part) *Range {
	if p == nil {
		return nil
	}
	return &Range{Offset: p.Offset, Length: p.Size}
}
