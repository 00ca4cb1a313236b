package repository

import (
	"context"
	"fmt"
	"io"

	"github.com/coffer-backup/coffer/storage"
)

// rangeReader is an io.ReaderAt over a stored object that serves reads from
// ranges fetched ahead, and fetches what is missing. It lets age decrypt
// only the segments a restore needs.
type rangeReader struct {
	ctx    context.Context
	be     storage.Backend
	name   string
	size   int64
	ranges []fetched
	err    error // the first storage error, so callers can tell it from corruption
}

type fetched struct {
	off  int64
	data []byte
}

func newRangeReader(ctx context.Context, be storage.Backend, name string, size int64) *rangeReader {
	return &rangeReader{ctx: ctx, be: be, name: name, size: size}
}

// prefetch fetches what decrypting plaintext [lo, hi) of pack p needs: the
// header, the segments holding the range, and the final segment. When that
// is most of the object, it fetches the whole object in one request.
func (rr *rangeReader) prefetch(p PackInfo, lo, hi int64) error {
	po := payloadOffset(p)
	first := po + (lo/segSize)*encSegSize
	last := min(po+((hi-1)/segSize+1)*encSegSize, p.Size)
	final := po + ((p.Size-po-1)/encSegSize)*encSegSize
	head := min(max(po, 4096), p.Size)
	if (last-first)+head+(p.Size-final) > p.Size/2 || p.Size < 1<<20 {
		return rr.fetch(0, p.Size)
	}
	for _, r := range [][2]int64{{0, head}, {first, last}, {final, p.Size}} {
		if rr.covered(r[0], r[1]) {
			continue
		}
		if err := rr.fetch(r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

func (rr *rangeReader) covered(lo, hi int64) bool {
	for _, f := range rr.ranges {
		if lo >= f.off && hi <= f.off+int64(len(f.data)) {
			return true
		}
	}
	return false
}

func (rr *rangeReader) fetch(lo, hi int64) error {
	data, err := storage.ReadRange(rr.ctx, rr.be, rr.name, lo, hi-lo)
	if err != nil {
		rr.err = fmt.Errorf("read %s: %w", rr.name, err)
		return rr.err
	}
	rr.ranges = append(rr.ranges, fetched{off: lo, data: data})
	return nil
}

func (rr *rangeReader) storageErr() error { return rr.err }

// ReadAt implements io.ReaderAt.
func (rr *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= rr.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), rr.size)
	if !rr.covered(off, end) {
		if err := rr.fetch(off, end); err != nil {
			return 0, err
		}
	}
	for _, f := range rr.ranges {
		if off >= f.off && end <= f.off+int64(len(f.data)) {
			n := copy(p, f.data[off-f.off:end-f.off])
			if n < len(p) {
				return n, io.EOF
			}
			return n, nil
		}
	}
	return 0, io.ErrUnexpectedEOF
}
