package engine

import (
	"context"
	"fmt"
	"io"
)

// Part is one named piece of a snapshot's stream, e.g. the globals of a
// PostgreSQL server and then each database's dump. The stream is the parts
// concatenated; the snapshot records where each starts.
type Part struct {
	Name   string `json:"name"`   // e.g. "globals.sql", "shop.pgdump"
	Offset int64  `json:"offset"` // where it starts in the stream
	Size   int64  `json:"size"`
}

// PartSource opens one part's stream when its turn comes.
type PartSource struct {
	Name string
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Concat reads parts one after the other, opening each only when the one
// before has ended, so one dump runs at a time. A part that fails to open
// or whose stream fails makes the read fail.
type Concat struct {
	ctx     context.Context
	sources []PartSource
	cur     io.ReadCloser
	parts   []Part
	off     int64
}

// NewConcat returns a stream of the given parts.
func NewConcat(ctx context.Context, sources ...PartSource) *Concat {
	return &Concat{ctx: ctx, sources: sources}
}

// Read implements io.Reader.
func (c *Concat) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.parts) == len(c.sources) {
				return 0, io.EOF
			}
			src := c.sources[len(c.parts)]
			r, err := src.Open(c.ctx)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", src.Name, err)
			}
			c.cur = r
			c.parts = append(c.parts, Part{Name: src.Name, Offset: c.off})
		}
		n, err := c.cur.Read(p)
		c.off += int64(n)
		c.parts[len(c.parts)-1].Size += int64(n)
		if err == io.EOF {
			cerr := c.cur.Close()
			c.cur = nil
			if cerr != nil {
				return n, fmt.Errorf("%s: %w", c.parts[len(c.parts)-1].Name, cerr)
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", c.parts[len(c.parts)-1].Name, err)
		}
		return n, nil
	}
}

// Close closes the part being read, if any.
func (c *Concat) Close() error {
	if c.cur != nil {
		err := c.cur.Close()
		c.cur = nil
		return err
	}
	return nil
}

// Parts returns the parts read so far with their places in the stream.
func (c *Concat) Parts() []Part { return append([]Part(nil), c.parts...) }

// Split cuts a restored stream back into its parts: fn is called for each
// part in order with a reader of exactly its bytes, which fn must consume.
func Split(r io.Reader, parts []Part, fn func(Part, io.Reader) error) error {
	var off int64
	for _, p := range parts {
		if p.Offset != off {
			return fmt.Errorf("part %s starts at %d, want %d: the snapshot's part list is inconsistent", p.Name, p.Offset, off)
		}
		lr := &io.LimitedReader{R: r, N: p.Size}
		if err := fn(p, lr); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, lr); err != nil {
			return err
		}
		if lr.N > 0 {
			return fmt.Errorf("part %s: stream ended %d bytes early", p.Name, lr.N)
		}
		off += p.Size
	}
	return nil
}

// Drain reads a part to its end and discards it: the engines compute a
// live database's digests by dumping it through their parsers this way.
func (p PartSource) Drain(ctx context.Context) error {
	r, err := p.Open(ctx)
	if err != nil {
		return err
	}
	// Read in large pieces: io.Copy to io.Discard would read 8 KiB at a
	// time, a system call each.
	buf := make([]byte, 256<<10)
	for err == nil {
		_, err = r.Read(buf)
	}
	if err == io.EOF {
		err = nil
	}
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return err
}
