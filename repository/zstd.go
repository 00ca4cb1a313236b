package repository

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Bounds on what a stored object may decompress to (docs/format.md,
// "Bounds"). They are checked against the zstd frame header before
// anything is decompressed, and enforced again while decompressing, so a
// hostile object (a "zstd bomb" stored by a writer-key holder) costs at
// most the bound in memory, not what it claims or expands to.
const (
	// MaxChunkSize is the largest chunker maximum a config may set, and so
	// the most any blob may decompress to.
	MaxChunkSize = 8 << 20
	// MetaFloor and MetaRatio bound a metadata object's plaintext to
	// max(MetaFloor, MetaRatio × its compressed size): honest metadata
	// (JSON of hex ids) compresses about 2:1, a bomb thousands to one. A
	// writer stores what would compress better uncompressed (storedFrame),
	// so every object it writes is within the bound.
	MetaFloor = 4 << 20
	MetaRatio = 32
	// MaxSmallMeta bounds the stored size of the small metadata objects
	// (config, keys, locks, prune markers, audit and drill records).
	MaxSmallMeta = 64 << 20
	// MaxLargeMeta bounds the stored size of an index or snapshot object.
	MaxLargeMeta = 4 << 30
	// maxWindow is the largest zstd window accepted: coffer's frames use at
	// most 8 MiB (a single-segment chunk of MaxChunkSize).
	maxWindow = 16 << 20
)

// metaLimit returns the most a metadata object of compressed bytes may
// decompress to.
func metaLimit(compressed int) int64 {
	return max(MetaFloor, MetaRatio*int64(compressed))
}

// encWindow is the encoders' window: 1 MiB, four times the default largest
// chunk.
const encWindow = 1 << 20

var (
	// EncodeAll takes an encoder from a pool of this many: one per core, or
	// the backup's compressing workers would take turns on one encoder.
	// Blob frames are single-segment, so every one declares its size.
	// Matches reach back at most encWindow: each encoder keeps a history
	// of twice that, where the library's default window (8 MiB) made it
	// 16 MiB an encoder, a quarter of a backup's heap, for chunks of at
	// most 256 KiB by default.
	zenc, _     = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true), zstd.WithSingleSegment(true), zstd.WithWindowSize(encWindow))
	zencMeta, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true), zstd.WithWindowSize(encWindow))
	// Streaming decoders, one per goroutine at a time: reading from one
	// stops as soon as a bound is passed, without decoding the rest. They
	// skip the frames' xxhash checksums: every chunk is checked against
	// its keyed id and every metadata object against its MAC, which a
	// checksum adds nothing to (it cost a restore 3 % of its CPU).
	zdecs = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow), zstd.IgnoreChecksum(true))
		if err != nil {
			panic(err)
		}
		return d
	}}
)

// Compress appends the zstd frame of a chunk to dst; the frame declares
// the chunk's size. It is safe for concurrent use.
func Compress(dst, src []byte) []byte { return zenc.EncodeAll(src, dst) }

// compressMeta appends the zstd frame of a metadata object to dst: a
// compressed one, or a stored one when that would decompress beyond the
// bound readers enforce.
func compressMeta(dst, src []byte) []byte {
	n := len(dst)
	dst = zencMeta.EncodeAll(src, dst)
	if int64(len(src)) > metaLimit(len(dst)-n) {
		dst = storedFrame(dst[:n], src)
	}
	return dst
}

// storedFrame appends a zstd frame holding src in raw blocks to dst: it
// declares its size and decompresses to no more than it weighs. It is not
// a single-segment frame, whose window would be its whole size (readers
// refuse windows over maxWindow), but one with a 1 MiB window, which raw
// blocks of 128 KiB never need more of.
func storedFrame(dst, src []byte) []byte {
	dst = append(dst, 0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x50) // magic; 8-byte size, window 1 MiB
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(src)))
	for {
		n := min(len(src), 128<<10)
		h := uint32(n) << 3 // raw block
		if n == len(src) {
			h |= 1 // last
		}
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, src[:n]...)
		if src = src[n:]; len(src) == 0 {
			return dst
		}
	}
}

// errBound is the reason of a frame refused by a bound.
var errBound = errors.New("exceeds coffer's bound")

// frameSize reads a zstd frame header and returns the content size it
// declares, or -1 when it declares none.
func frameSize(src []byte) (int64, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return 0, fmt.Errorf("bad zstd frame header: %w", err)
	}
	if h.Skippable || h.DictionaryID != 0 {
		return 0, errors.New("not a plain zstd frame")
	}
	if !h.SingleSegment && h.WindowSize > maxWindow {
		return 0, fmt.Errorf("zstd window of %d bytes %w of %d", h.WindowSize, errBound, maxWindow)
	}
	if !h.HasFCS {
		return -1, nil
	}
	if h.FrameContentSize > 1<<62 {
		return 0, fmt.Errorf("declares %d bytes: %w", h.FrameContentSize, errBound)
	}
	return int64(h.FrameContentSize), nil
}

// DecompressChunk appends the content of a blob's zstd frame to dst. The
// frame must declare raw bytes (frames of format-1 chunks under 256 bytes
// declare nothing and are read up to raw), and raw must not exceed maxRaw,
// the chunker's maximum: nothing is decompressed otherwise. It is safe for
// concurrent use.
func DecompressChunk(dst, src []byte, raw, maxRaw int) ([]byte, error) {
	if raw < 0 || raw > maxRaw || maxRaw > MaxChunkSize {
		return dst, fmt.Errorf("the index says the chunk is %d bytes, more than the chunker's maximum of %d: %w", raw, maxRaw, errBound)
	}
	n, err := frameSize(src)
	if err != nil {
		return dst, err
	}
	if n >= 0 && n != int64(raw) {
		return dst, fmt.Errorf("zstd frame declares %d bytes, the index %d", n, raw)
	}
	return decompressExact(dst, src, int64(raw), int64(raw))
}

// decompressMeta returns the content of a metadata object's zstd frame,
// refusing one that declares or expands to more than metaLimit.
func decompressMeta(src []byte) ([]byte, error) {
	limit := metaLimit(len(src))
	n, err := frameSize(src)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("zstd frame declares %d bytes, which %w for a metadata object of %d compressed bytes (%d)", n, errBound, len(src), limit)
	}
	// Read as the frame yields, never allocating what it only declares: a
	// small object may declare up to 32 times its size.
	out, err := decompressExact(nil, src, -1, max(n, limit))
	if err == nil && n >= 0 && int64(len(out)) != n {
		return nil, fmt.Errorf("zstd frame declares %d bytes and holds %d", n, len(out))
	}
	return out, err
}

// decompressExact streams src into dst: exactly want bytes when want >= 0,
// otherwise whatever the frame holds; never more than limit.
func decompressExact(dst, src []byte, want, limit int64) ([]byte, error) {
	d := zdecs.Get().(*zstd.Decoder)
	defer func() {
		d.Reset(nil)
		zdecs.Put(d)
	}()
	if err := d.Reset(bytes.NewReader(src)); err != nil {
		return dst, err
	}
	start := len(dst)
	if want >= 0 {
		dst = growTo(dst, start+int(want))
		if _, err := io.ReadFull(d, dst[start:]); err != nil {
			return dst[:start], fmt.Errorf("frame holds less than its %d bytes: %w", want, err)
		}
	} else {
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(io.LimitReader(d, limit)); err != nil {
			return dst, err
		}
		dst = append(dst, buf.Bytes()...)
	}
	var one [1]byte
	switch n, err := d.Read(one[:]); {
	case n > 0:
		return dst[:start], fmt.Errorf("frame holds more than %d bytes: %w", len(dst)-start, errBound)
	case err != io.EOF:
		return dst[:start], fmt.Errorf("frame holds more than %d bytes or is malformed: %w", len(dst)-start, err)
	}
	return dst, nil
}

// growTo returns b with length n, reusing its capacity when it suffices.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n)
	copy(nb, b)
	return nb
}
