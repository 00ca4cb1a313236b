package repository

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// streamIndexFile reads index object id (of size stored bytes) as it
// arrives, calling fn with each pack, and returns what it supersedes. The
// object is authenticated only once it has been read to the end: fn's
// packs must not be used before streamIndexFile returns without an error.
// A storage layer that retries the read calls begin again before the
// packs are sent anew. Objects that the stream cannot take (any damage,
// a bound) are read again whole by LoadIndexFile for its exact error.
func (r *Repo) streamIndexFile(ctx context.Context, id ID, size int64, begin func(), fn func(PackEntry) error) ([]ID, error) {
	name := "index/" + id.String()
	var sup []ID
	var fnErr error
	err := r.be.Get(ctx, name, 0, 0, func(rd io.Reader) error {
		begin()
		var err error
		sup, err = r.decodeIndexStream(ctx, name, id, size, rd, func(e PackEntry) error {
			if err := fn(e); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		return err
	})
	switch {
	case err == nil:
		return sup, nil
	case fnErr != nil, ctx.Err() != nil, isNotFound(err):
		return nil, err
	}
	begin()
	f, lerr := r.LoadIndexFile(ctx, id)
	if lerr != nil {
		return nil, lerr
	}
	for _, e := range f.Packs {
		if err := fn(e); err != nil {
			return nil, err
		}
	}
	return f.Supersedes, nil
}

// decodeIndexStream decrypts, decompresses, authenticates and decodes an
// index object from rd, within the bounds of docs/format.md.
func (r *Repo) decodeIndexStream(ctx context.Context, name string, id ID, size int64, rd io.Reader, fn func(PackEntry) error) ([]ID, error) {
	if size > MaxLargeMeta {
		return nil, errBound
	}
	ar, err := age.Decrypt(io.LimitReader(rd, MaxLargeMeta+1), r.metaIdentities()...)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(ar, 64<<10)
	hdr, _ := br.Peek(18)
	n, err := frameSize(hdr)
	if err != nil {
		return nil, err
	}
	limit := metaLimit(int(min(size, MaxLargeMeta)))
	if n > limit {
		return nil, errBound
	}
	if n >= 0 {
		limit = n
	}
	d := zdecs.Get().(*zstd.Decoder)
	defer func() {
		d.Reset(nil)
		zdecs.Put(d)
	}()
	if err := d.Reset(br); err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, r.wk.MACKey[:])
	mac.Write([]byte("index\n"))
	var sum hash.Hash
	if r.cfg != nil && r.cfg.Carried != nil { // the list may accept it by its hash
		sum = sha256.New()
	}
	cnt := &counter{}
	ws := []io.Writer{mac, cnt}
	if sum != nil {
		ws = append(ws, sum)
	}
	tee := io.TeeReader(io.LimitReader(d, limit+1), io.MultiWriter(ws...))
	version, sup, err := parseIndexCanonical(bufio.NewReaderSize(tee, 64<<10), fn)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, err
	}
	if cnt.n > limit || (n >= 0 && cnt.n != n) {
		return nil, errBound
	}
	// The frame must end where its content does, like decompressExact.
	var one [1]byte
	if k, err := d.Read(one[:]); k > 0 || err != io.EOF {
		return nil, errBound
	}
	var got ID
	mac.Sum(got[:0])
	if !hmac.Equal(got[:], id[:]) {
		if sum == nil {
			return nil, errors.New("not authenticated")
		}
		carried, err := r.carriedList(ctx)
		if err != nil {
			return nil, err
		}
		if !carried.acceptsSum(name, hex.EncodeToString(sum.Sum(nil))) {
			return nil, errors.New("not authenticated")
		}
	}
	if version != FormatVersion {
		return nil, &UnsupportedVersionError{Object: name, Version: version}
	}
	return sup, nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
