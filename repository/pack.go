package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"filippo.io/age"
)

// PackName returns the object name of a pack.
func PackName(id ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// PackWriter builds one pack: blobs are encrypted as they are added.
type PackWriter struct {
	buf   *bytes.Buffer
	enc   io.WriteCloser
	plain int64
	blobs []Blob
	gen   int // of the repository key: recorded in the index entry
}

// NewPackWriter starts a pack encrypted to the repository key, written
// into buf (reset first). Reusing buffers across packs saves allocating and
// zeroing tens of MiB per pack.
func (r *Repo) NewPackWriter(buf *bytes.Buffer, sizeHint int) (*PackWriter, error) {
	buf.Reset()
	buf.Grow(sizeHint + sizeHint/64 + 4096)
	p := &PackWriter{buf: buf}
	if g := r.cfg.Gen(); g > 1 {
		p.gen = g
	}
	enc, err := age.Encrypt(p.buf, r.wk.Recipient)
	if err != nil {
		return nil, err
	}
	p.enc = enc
	return p, nil
}

// Add appends a compressed chunk.
func (p *PackWriter) Add(id ID, compressed []byte, raw int) error {
	if _, err := p.enc.Write(compressed); err != nil {
		return err
	}
	p.blobs = append(p.blobs, Blob{ID: id, Off: uint32(p.plain), Len: uint32(len(compressed)), Raw: uint32(raw)})
	p.plain += int64(len(compressed))
	return nil
}

// Plain returns the plaintext bytes added so far.
func (p *PackWriter) Plain() int64 { return p.plain }

// Count returns the number of blobs added.
func (p *PackWriter) Count() int { return len(p.blobs) }

// Finish closes the pack and returns its index entry and ciphertext, which
// lives in the buffer given to NewPackWriter.
func (p *PackWriter) Finish() (PackEntry, []byte, error) {
	if err := p.enc.Close(); err != nil {
		return PackEntry{}, nil, err
	}
	ct := p.buf.Bytes()
	e := PackEntry{ID: sha256ID(ct), Size: int64(len(ct)), Plain: p.plain, Blobs: p.blobs, Gen: p.gen}
	return e, ct, nil
}

// SavePack stores a finished pack. It never replaces a stored object; a
// retry of a pack already stored succeeds (putPack).
func (r *Repo) SavePack(ctx context.Context, e PackEntry, ct []byte) error {
	if err := r.putPack(ctx, PackName(e.ID), ct, r.putOptions()); err != nil {
		return fmt.Errorf("save pack: %w", err)
	}
	return nil
}

const (
	segSize    = 64 << 10
	encSegSize = segSize + 16
)

// payloadOffset returns where age's STREAM segments start in a pack object.
func payloadOffset(p PackInfo) int64 {
	segs := (p.Plain + segSize - 1) / segSize
	if segs == 0 {
		segs = 1
	}
	return p.Size - (p.Plain + 16*segs)
}

// ReadBlobs fetches blobs of one pack, decrypts, decompresses and verifies
// each against its id, and calls fn with each chunk in the order given.
// The chunk passed to fn is only valid during the call.
func (r *Repo) ReadBlobs(ctx context.Context, p PackInfo, blobs []Blob, fn func(Blob, []byte) error) error {
	src, err := r.packSource(ctx, p, blobs)
	if err != nil || src == nil {
		return err
	}
	return r.readBlobsFrom(ctx, src, p, blobs, fn)
}

// AppendBlobs is ReadBlobs that appends the chunks, verified, to dst and
// returns it: each chunk is decompressed straight into dst (which a
// caller reuses from a pool), so a restore copies no plaintext twice. On
// error dst holds the chunks verified before it.
func (r *Repo) AppendBlobs(ctx context.Context, p PackInfo, blobs []Blob, dst []byte) ([]byte, error) {
	src, err := r.packSource(ctx, p, blobs)
	if err != nil || src == nil {
		return dst, err
	}
	return r.decodeBlobs(ctx, src, p, blobs, dst, false, nil)
}

// packSource fetches what reading blobs of pack p needs; nil when blobs
// is empty.
func (r *Repo) packSource(ctx context.Context, p PackInfo, blobs []Blob) (*rangeReader, error) {
	if r.data == nil {
		return nil, ErrNeedIdentity
	}
	if len(blobs) == 0 {
		return nil, nil
	}
	name := PackName(p.ID)
	lo, hi := blobSpan(blobs)
	if hi > p.Plain || payloadOffset(p) <= 0 {
		return nil, &CorruptError{Object: name, Reason: "index entry out of the pack's bounds"}
	}
	src := newRangeReader(ctx, r.be, name, p.Size)
	if err := src.prefetch(p, lo, hi); err != nil {
		return nil, err
	}
	return src, nil
}

// blobSpan is the stretch of pack plaintext that holds blobs.
func blobSpan(blobs []Blob) (lo, hi int64) {
	lo = int64(blobs[0].Off)
	for _, b := range blobs {
		lo = min(lo, int64(b.Off))
		hi = max(hi, int64(b.Off)+int64(b.Len))
	}
	return lo, hi
}

// packSource is where a pack's bytes come from: storage, or memory.
type packSource interface {
	io.ReaderAt
	storageErr() error // the first storage error, to tell it from damage
}

type memPack struct {
	name string
	data []byte
}

func (m *memPack) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memPack) storageErr() error { return nil }

func (r *Repo) readBlobsFrom(ctx context.Context, src packSource, p PackInfo, blobs []Blob, fn func(Blob, []byte) error) error {
	return r.readBlobsRaw(ctx, src, p, blobs, func(b Blob, _, raw []byte) error { return fn(b, raw) })
}

// readBlobsRaw is readBlobsFrom that also passes each blob's compressed
// bytes (valid during the call, like the chunk).
func (r *Repo) readBlobsRaw(ctx context.Context, src packSource, p PackInfo, blobs []Blob, fn func(b Blob, compressed, raw []byte) error) error {
	_, err := r.decodeBlobs(ctx, src, p, blobs, nil, true, fn)
	return err
}

// decodeBlobs decrypts the stretch of pack p that holds blobs, then
// decompresses each blob, verifies it against its id and appends it to
// dst, calling fn (when not nil) with it; with reuse, each chunk replaces
// the one before it in dst.
func (r *Repo) decodeBlobs(ctx context.Context, src packSource, p PackInfo, blobs []Blob, dst []byte, reuse bool, fn func(b Blob, compressed, raw []byte) error) ([]byte, error) {
	name := PackName(p.ID)
	lo, hi := blobSpan(blobs)
	plain, _, err := age.DecryptReaderAt(src, p.Size, r.dataIdentities()...)
	if err != nil {
		if serr := src.storageErr(); serr != nil {
			return dst, serr
		}
		return dst, &CorruptError{Object: name, Reason: "cannot decrypt pack", Err: err}
	}
	span := make([]byte, hi-lo)
	n, err := plain.ReadAt(span, lo)
	if err == io.EOF && n == len(span) {
		err = nil // io.ReaderAt may report EOF with a read that ends the data
	}
	if err != nil {
		if serr := src.storageErr(); serr != nil {
			return dst, serr
		}
		return dst, &CorruptError{Object: name, Reason: "pack fails authentication (altered or truncated)", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	h := r.wk.ChunkHasher()
	base := len(dst)
	for _, b := range blobs {
		compressed := span[int64(b.Off)-lo : int64(b.Off)-lo+int64(b.Len)]
		start := len(dst)
		if reuse {
			start = base
		}
		out, err := DecompressChunk(dst[:start], compressed, int(b.Raw), int(r.cfg.Chunker.Max))
		if err != nil {
			return dst[:start], &CorruptError{Object: name, Reason: fmt.Sprintf("chunk %s refused before or while decompressing", b.ID.Short()), Err: err}
		}
		raw := out[start:]
		if len(raw) != int(b.Raw) || h.Sum(raw) != b.ID {
			return dst[:start], &CorruptError{Object: name, Reason: fmt.Sprintf("chunk %s does not match its id", b.ID.Short())}
		}
		dst = out
		if fn != nil {
			if err := fn(b, compressed, raw); err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// VerifyPackChecksum reports whether ciphertext matches the pack's name.
func VerifyPackChecksum(id ID, ciphertext []byte) bool {
	return sha256.Sum256(ciphertext) == id
}
