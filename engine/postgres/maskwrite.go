package postgres

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/engine"

	"github.com/coffer-backup/coffer/mask"
)

// maskedArchive writes the masked archive of a (whose header and table of
// contents have been read, their bytes in head) to f, an unlinked spool
// file: the header as it was, the entries the plan keeps (TABLE DATA with
// the copy statements the plan rebuilt), then the kept tables' data,
// masked row by row; the data offsets are filled in at the end, so that
// pg_restore -j can seek. Nothing of the original values of masked
// columns is written: only the masked rows reach the file.
type maskedArchive struct {
	a    *archive
	p    *maskPlan
	f    *os.File
	w    *bufio.Writer
	pos  int64            // bytes written
	flag map[int64]int64  // dump id → where its data offset flag is in f
	want *engine.Digester // digests of the masked rows, as the target must hold them
	kept *engine.Digester // digests of the original rows' kept columns
	seen *mask.Originals
	proj []byte

	blockAt map[int64]int64 // dump id → where its data block is in f
}

func writeMasked(a *archive, p *maskPlan, head []byte, hdrEnd int64, f *os.File, v *maskVerify) error {
	m := &maskedArchive{a: a, p: p, f: f, w: bufio.NewWriterSize(f, 256<<10), flag: map[int64]int64{}, want: v.want, kept: v.kept, seen: v.seen}
	if err := m.writeTOC(head, hdrEnd); err != nil {
		return err
	}
	if err := m.writeData(); err != nil {
		return err
	}
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("spool the masked archive: %w", err)
	}
	return m.patchOffsets()
}

func (m *maskedArchive) write(b []byte) {
	m.w.Write(b) // a write error is sticky and returned by Flush
	m.pos += int64(len(b))
}

// appendInt encodes v as the archive does: a sign byte, then intSize
// bytes, least significant first.
func (m *maskedArchive) appendInt(dst []byte, v int64) []byte {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	dst = append(dst, sign)
	for i := range m.a.intSize {
		dst = append(dst, byte(uint64(v)>>(8*i)))
	}
	return dst
}

func (m *maskedArchive) writeTOC(head []byte, hdrEnd int64) error {
	if int64(len(head)) < hdrEnd {
		return errors.New("masked load: the archive's header was not kept")
	}
	m.write(head[:hdrEnd])
	m.write(m.appendInt(nil, int64(len(m.a.order))))
	for _, id := range m.a.order {
		e := m.a.entries[id]
		if e.end > int64(len(head)) {
			return fmt.Errorf("masked load: TOC entry %d was not kept", id)
		}
		t := m.p.tables[id]
		if t == nil {
			m.write(head[e.start:e.end])
			continue
		}
		m.write(head[e.start:e.copyStart])
		s := m.appendInt(nil, int64(len(t.copyStmt)))
		m.write(append(s, t.copyStmt...))
		m.write(head[e.copyEnd:e.flagAt])
		m.flag[id] = m.pos
		m.write(append([]byte{offsetNotSet}, make([]byte, m.a.offSize)...))
	}
	return nil
}

// writeData reads the data blocks that follow the table of contents and
// writes the kept tables', masked; other blocks (large objects, anything
// the plan left out) are read and dropped.
func (m *maskedArchive) writeData() error {
	a := m.a
	m.blockAt = map[int64]int64{}
	return a.eachBlock(func(typ byte, id int64, e *tocEntry) error {
		t := m.p.tables[id]
		switch {
		case t != nil && typ == blockData:
			m.blockAt[id] = m.pos
			err := m.table(e, t)
			// A table's data comes once (eachBlock): its maskers' memos
			// and unique sets go now, not with the plan.
			clear(t.maskers)
			return err
		case t != nil:
			return a.errorf("the data of table %s is a large-object block: the archive is corrupt", display(t.name))
		case typ == blockData:
			return a.chunks("a data block", nil)
		}
		return a.skipBlobs()
	})
}

// table masks one table's rows into a data block of f, in three stages
// that run at once: this goroutine parses the rows (and digests their kept
// columns), one masks them (the only user of the table's maskers), one
// digests and writes the masked rows, a chunk per batch, in order.
func (m *maskedArchive) table(e *tocEntry, t *maskTable) error {
	m.write(append([]byte{blockData}, m.appendInt(nil, t.id)...))
	rows := m.want.Table(m.a.label + "." + t.name)
	kept := m.kept.Table(m.a.label + "." + t.name + keptSuffix)
	keep := make([]bool, len(t.maskers))
	for i, c := range t.maskers {
		keep[i] = c == nil
	}
	parsed, masked := make(chan []byte, 4), make(chan []byte, 4)
	var g errgroup.Group
	stop := make(chan struct{})
	g.Go(func() error {
		defer close(masked)
		for batch := range parsed {
			out, err := m.maskBatch(t, batch)
			if err != nil {
				close(stop)
				for range parsed {
				}
				return err
			}
			masked <- out
		}
		return nil
	})
	g.Go(func() error {
		for b := range masked {
			for row := range bytes.SplitSeq(b[:len(b)-1], []byte{'\n'}) {
				rows.Add(row)
			}
			m.write(m.appendInt(nil, int64(len(b))))
			m.write(b)
		}
		return nil
	})
	newBatch := func() []byte { return make([]byte, 0, maskBatchBytes+maskBatchBytes/4) }
	batch := newBatch()
	err := m.a.eachRow(e, func(row []byte) error {
		m.proj = keptRow(m.proj[:0], row, keep)
		kept.Add(m.proj)
		batch = append(append(batch, row...), '\n')
		if len(batch) >= maskBatchBytes {
			select {
			case parsed <- batch:
			case <-stop:
				return errMaskStopped
			}
			batch = newBatch()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		select {
		case parsed <- batch:
		case <-stop:
		}
	}
	close(parsed)
	if gerr := g.Wait(); gerr != nil {
		return gerr
	}
	if err != nil {
		return err
	}
	m.write(m.appendInt(nil, int64(len("\\.\n\n"))))
	m.write([]byte("\\.\n\n"))
	m.write(m.appendInt(nil, 0))
	return nil
}

var errMaskStopped = errors.New("masking stopped")

// maskBatchBytes is about how many bytes of rows are masked at a time.
const maskBatchBytes = 128 << 10

// patchOffsets writes each kept table's data offset into its TOC entry.
func (m *maskedArchive) patchOffsets() error {
	for id, flagAt := range m.flag {
		b := []byte{offsetSet}
		off := m.blockAt[id]
		for i := range m.a.offSize {
			b = append(b, byte(uint64(off)>>(8*i)))
		}
		if _, err := m.f.WriteAt(b, flagAt); err != nil {
			return fmt.Errorf("spool the masked archive: %w", err)
		}
	}
	if _, err := m.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool the masked archive: %w", err)
	}
	return nil
}
