package repository

import (
	"bufio"
	"encoding/hex"
	"errors"
)

// errNotCanonical reports an index object that is not in the exact form
// coffer writes (json.Marshal of IndexFile): the stream decoder leaves it
// to encoding/json, which reads the whole object.
var errNotCanonical = errors.New("index object not in coffer's canonical form")

// parseIndexCanonical decodes an index object as json.Marshal writes an
// IndexFile, a pack at a time, about ten times faster than encoding/json.
// Anything else, even valid JSON, is errNotCanonical.
func parseIndexCanonical(br *bufio.Reader, fn func(PackEntry) error) (int, []ID, error) {
	p := canonParser{br: br}
	p.lit(`{"version":`)
	version := int(p.uint())
	var sup []ID
	if b, err := br.Peek(3); err == nil && string(b) == `,"s` {
		p.lit(`,"supersedes":[`)
		for p.err == nil {
			sup = append(sup, p.id())
			if p.peek() != ',' {
				break
			}
			p.lit(",")
		}
		p.lit("]")
	}
	p.lit(`,"packs":`)
	if p.peek() == 'n' {
		p.lit("null")
	} else {
		p.lit("[")
		for p.err == nil && p.peek() != ']' {
			e := p.pack()
			if p.err != nil {
				break
			}
			if err := fn(e); err != nil {
				return 0, nil, err
			}
			if p.peek() == ',' {
				p.lit(",")
			} else if p.peek() != ']' {
				p.err = errNotCanonical
			}
		}
		p.lit("]")
	}
	p.lit("}")
	if p.err == nil {
		if _, err := br.ReadByte(); err == nil {
			p.err = errNotCanonical
		}
	}
	return version, sup, p.err
}

type canonParser struct {
	br  *bufio.Reader
	err error
}

func (p *canonParser) peek() byte {
	if p.err != nil {
		return 0
	}
	b, err := p.br.Peek(1)
	if err != nil {
		p.err = errNotCanonical
		return 0
	}
	return b[0]
}

func (p *canonParser) lit(s string) {
	for i := 0; i < len(s) && p.err == nil; i++ {
		if c, err := p.br.ReadByte(); err != nil || c != s[i] {
			p.err = errNotCanonical
		}
	}
}

// uint reads a decimal without sign, leading zero or exponent.
func (p *canonParser) uint() uint64 {
	var n uint64
	digits := 0
	for p.err == nil {
		c := p.peek()
		if c < '0' || c > '9' {
			break
		}
		p.br.ReadByte()
		if (digits == 1 && n == 0) || n > (1<<63)/10 {
			p.err = errNotCanonical
		}
		n = n*10 + uint64(c-'0')
		digits++
	}
	if digits == 0 {
		p.err = errNotCanonical
	}
	return n
}

func (p *canonParser) u32() uint32 {
	n := p.uint()
	if n > 1<<32-1 {
		p.err = errNotCanonical
	}
	return uint32(n)
}

func (p *canonParser) i64() int64 {
	n := p.uint()
	if n > 1<<63-1 {
		p.err = errNotCanonical
	}
	return int64(n)
}

// id reads a quoted id of 64 lowercase hex digits.
func (p *canonParser) id() ID {
	var x ID
	p.lit(`"`)
	if p.err != nil {
		return x
	}
	b, err := p.br.Peek(65)
	if err != nil || b[64] != '"' {
		p.err = errNotCanonical
		return x
	}
	for _, c := range b[:64] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			p.err = errNotCanonical
			return x
		}
	}
	hex.Decode(x[:], b[:64])
	p.br.Discard(65)
	return x
}

func (p *canonParser) pack() PackEntry {
	var e PackEntry
	p.lit(`{"id":`)
	e.ID = p.id()
	p.lit(`,"size":`)
	e.Size = p.i64()
	p.lit(`,"plain":`)
	e.Plain = p.i64()
	p.lit(`,"blobs":`)
	if p.peek() == 'n' {
		p.lit("null")
	} else {
		p.lit("[")
		e.Blobs = []Blob{}
		for p.err == nil && p.peek() != ']' {
			var b Blob
			p.lit(`{"id":`)
			b.ID = p.id()
			p.lit(`,"off":`)
			b.Off = p.u32()
			p.lit(`,"len":`)
			b.Len = p.u32()
			p.lit(`,"raw":`)
			b.Raw = p.u32()
			p.lit("}")
			e.Blobs = append(e.Blobs, b)
			if p.peek() == ',' {
				p.lit(",")
			} else if p.peek() != ']' {
				p.err = errNotCanonical
			}
		}
		p.lit("]")
	}
	if p.peek() == ',' {
		p.lit(`,"gen":`)
		n := p.uint()
		if n == 0 || n > 1<<31-1 {
			p.err = errNotCanonical
		}
		e.Gen = int(n)
	}
	p.lit("}")
	return e
}
