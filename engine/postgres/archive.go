package postgres

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/coffer-backup/coffer/engine"
)

// This file reads pg_dump's custom archive format (pg_dump -Fc) as a
// stream, the way pg_restore reads it from a pipe, to digest the rows of
// every table as the dump passes. The layout (src/bin/pg_dump in
// PostgreSQL, pg_backup_archiver.c and pg_backup_custom.c):
//
//	header  "PGDMP", version major, minor, revision (bytes), int size,
//	        offset size, format (1 = custom) (bytes), compression
//	        (an int before 1.15, an algorithm byte from 1.15),
//	        creation time (7 ints), database name, server version,
//	        pg_dump version (strings)
//	TOC     entry count (int), then per entry: dump id, had-dumper (ints),
//	        table oid, oid, tag, desc (strings), section (int), definition,
//	        drop statement, copy statement, schema, tablespace (strings),
//	        table access method (string, from 1.14), relkind (int, from
//	        1.16), owner, "with oids" (strings), dependencies (strings,
//	        ended by a null string), data offset (flag byte, offset bytes)
//	data    blocks in TOC order: type byte (1 data, 3 large objects), dump
//	        id (int), then for data: chunks of (length int, bytes) ended by
//	        a zero length; for large objects: (oid int, chunks) ended by a
//	        zero oid
//
// An int is a sign byte (1 negative) and int-size bytes, least
// significant first; a string is an int length (-1 for null) and bytes.
// With -Z0 a table's chunks are its COPY text: one row per line, ended by
// a line `\.`.

const (
	archiveMagic  = "PGDMP"
	formatCustom  = 1
	blockData     = 1
	blockBlobs    = 3
	offsetNotSet  = 1
	offsetSet     = 2
	offsetNoData  = 3
	maxArchiveStr = 1 << 30 // PostgreSQL's own limit on a field
)

func archiveVersion(major, minor, rev byte) int {
	return int(major)<<16 | int(minor)<<8 | int(rev)
}

var (
	version1_12 = archiveVersion(1, 12, 0)
	version1_14 = archiveVersion(1, 14, 0)
	version1_15 = archiveVersion(1, 15, 0)
	version1_16 = archiveVersion(1, 16, 0)
	version1_17 = archiveVersion(1, 17, 0)
)

// ArchiveError is a pg_dump archive that cannot be read: truncated,
// corrupt, or of a version or kind coffer does not read.
type ArchiveError struct {
	Database string // the database the archive is a dump of
	Offset   int64  // where in the archive
	Reason   string
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("pg_dump archive of database %q, byte %d: %s", e.Database, e.Offset, e.Reason)
}

// tocEntry is what the parser keeps of a TOC entry.
type tocEntry struct {
	desc, tag, namespace string
	defn, copyStmt       string
	owner                string
	hasData              bool // a data block follows in the archive
	seen                 bool // its data block was read

	// Where the entry is in the archive (offsets from its start), for a
	// masked load, which writes the entries it keeps again: the entry,
	// its copy statement, and its data offset flag.
	start, copyStart, copyEnd, flagAt, end int64
}

// archive reads one custom-format archive from r and adds the rows of its
// tables to dg under "label.schema.table".
type archive struct {
	label string
	cr    countReader
	r     *bufio.Reader
	dg    *engine.Digester

	version          int
	intSize, offSize int
	entries          map[int64]*tocEntry
	order            []int64 // dump ids in TOC order

	line []byte // a row being assembled across chunks

	// proj, when set, also digests the columns a masked load keeps and
	// looks for original values of masked columns (maskverify.go).
	proj *maskCheck
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newArchive(r io.Reader, label string, dg *engine.Digester) *archive {
	a := &archive{label: label, dg: dg, entries: map[int64]*tocEntry{}}
	a.cr.r = r
	a.r = bufio.NewReaderSize(&a.cr, 64<<10)
	return a
}

// parseArchive reads a whole archive, digesting its tables into dg.
func parseArchive(r io.Reader, label string, dg *engine.Digester) error {
	a := newArchive(r, label, dg)
	if err := a.readHeader(); err != nil {
		return err
	}
	if err := a.readTOC(); err != nil {
		return err
	}
	return a.readData()
}

func (a *archive) offset() int64 { return a.cr.n - int64(a.r.Buffered()) }

func (a *archive) errorf(format string, args ...any) error {
	return &ArchiveError{Database: a.label, Offset: a.offset(), Reason: fmt.Sprintf(format, args...)}
}

// eof turns the end of the input inside a structure into an error that
// says the archive is truncated.
func (a *archive) eof(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return a.errorf("the archive ends inside %s: it is truncated", what)
	}
	var ae *ArchiveError
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("read the pg_dump archive of database %q: %w", a.label, err)
}

func (a *archive) readByte(what string) (byte, error) {
	b, err := a.r.ReadByte()
	if err != nil {
		return 0, a.eof(err, what)
	}
	return b, nil
}

// readInt reads a sign byte and intSize bytes, least significant first.
func (a *archive) readInt(what string) (int64, error) {
	sign, err := a.readByte(what)
	if err != nil {
		return 0, err
	}
	if sign > 1 {
		return 0, a.errorf("bad sign byte %d in %s: the archive is corrupt", sign, what)
	}
	var v uint64
	for i := range a.intSize {
		b, err := a.readByte(what)
		if err != nil {
			return 0, err
		}
		v |= uint64(b) << (8 * i)
	}
	if v > 1<<62 {
		return 0, a.errorf("integer out of range in %s: the archive is corrupt", what)
	}
	if sign == 1 {
		return -int64(v), nil
	}
	return int64(v), nil
}

// readStr reads a length and that many bytes; ok is false for a null
// string. It grows its buffer as bytes arrive, so a corrupt length does
// not allocate more than the input holds.
func (a *archive) readStr(what string) (s string, ok bool, err error) {
	n, err := a.readInt(what)
	if err != nil {
		return "", false, err
	}
	switch {
	case n == -1:
		return "", false, nil
	case n < 0 || n > maxArchiveStr:
		return "", false, a.errorf("bad string length %d in %s: the archive is corrupt", n, what)
	}
	var b bytes.Buffer
	if _, err := io.CopyN(&b, a.r, n); err != nil {
		return "", false, a.eof(err, what)
	}
	return b.String(), true, nil
}

func (a *archive) readHeader() error {
	var magic [5]byte
	if _, err := io.ReadFull(a.r, magic[:]); err != nil || string(magic[:]) != archiveMagic {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return a.eof(err, "the header")
		}
		return a.errorf("not a pg_dump custom-format archive (no %q at its start)", archiveMagic)
	}
	var v [6]byte // major, minor, revision, int size, offset size, format
	if _, err := io.ReadFull(a.r, v[:]); err != nil {
		return a.eof(err, "the header")
	}
	a.version = archiveVersion(v[0], v[1], v[2])
	if a.version < version1_12 || a.version >= version1_17 {
		return a.errorf("archive version %d.%d is not supported: coffer reads versions 1.12 to 1.16 (pg_dump of PostgreSQL 11 to 17)", v[0], v[1])
	}
	a.intSize, a.offSize = int(v[3]), int(v[4])
	if a.intSize < 1 || a.intSize > 8 || a.offSize < 1 || a.offSize > 8 {
		return a.errorf("integer size %d or offset size %d is not supported: the archive is corrupt", a.intSize, a.offSize)
	}
	if v[5] != formatCustom {
		return a.errorf("archive format %d is not the custom format (pg_dump -Fc)", v[5])
	}
	if a.version >= version1_15 {
		alg, err := a.readByte("the header")
		if err != nil {
			return err
		}
		if alg != 0 {
			return a.errorf("the archive's data is compressed (algorithm %d): coffer reads archives written with -Z0", alg)
		}
	} else {
		level, err := a.readInt("the header")
		if err != nil {
			return err
		}
		if level != 0 {
			return a.errorf("the archive's data is compressed (level %d): coffer reads archives written with -Z0", level)
		}
	}
	for range 7 { // creation time
		if _, err := a.readInt("the header"); err != nil {
			return err
		}
	}
	for range 3 { // database name, server version, pg_dump version
		if _, _, err := a.readStr("the header"); err != nil {
			return err
		}
	}
	return nil
}

func (a *archive) readTOC() error {
	n, err := a.readInt("the table of contents")
	if err != nil {
		return err
	}
	if n < 0 {
		return a.errorf("negative TOC entry count %d: the archive is corrupt", n)
	}
	for i := int64(0); i < n; i++ {
		if err := a.readEntry(); err != nil {
			return err
		}
	}
	return nil
}

func (a *archive) readEntry() error {
	const what = "a TOC entry"
	start := a.offset()
	id, err := a.readInt(what)
	if err != nil {
		return err
	}
	if id <= 0 {
		return a.errorf("TOC entry id %d out of range: the archive is corrupt", id)
	}
	if a.entries[id] != nil {
		return a.errorf("TOC entry id %d appears twice: the archive is corrupt", id)
	}
	if _, err := a.readInt(what); err != nil { // had dumper
		return err
	}
	e := &tocEntry{start: start}
	// table oid, oid, tag, desc, section, defn, drop, copy, schema, tablespace
	str := func(dst *string) error {
		s, _, err := a.readStr(what)
		if dst != nil {
			*dst = s
		}
		return err
	}
	for _, dst := range []*string{nil, nil, &e.tag, &e.desc} {
		if err := str(dst); err != nil {
			return err
		}
	}
	if _, err := a.readInt(what); err != nil { // section
		return err
	}
	if err := str(&e.defn); err != nil {
		return err
	}
	if err := str(nil); err != nil { // drop statement
		return err
	}
	e.copyStart = a.offset()
	if err := str(&e.copyStmt); err != nil {
		return err
	}
	e.copyEnd = a.offset()
	fields := []*string{&e.namespace, nil}
	if a.version >= version1_14 {
		fields = append(fields, nil) // table access method
	}
	for _, dst := range fields {
		if err := str(dst); err != nil {
			return err
		}
	}
	if a.version >= version1_16 {
		if _, err := a.readInt(what); err != nil { // relkind
			return err
		}
	}
	if err := str(&e.owner); err != nil {
		return err
	}
	if err := str(nil); err != nil { // "with oids"
		return err
	}
	for { // dependencies, ended by a null string
		_, ok, err := a.readStr(what)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
	}
	e.flagAt = a.offset()
	flag, err := a.readByte(what)
	if err != nil {
		return err
	}
	switch flag {
	case offsetNotSet, offsetSet:
		e.hasData = true
	case offsetNoData:
	default:
		return a.errorf("bad data offset flag %d in TOC entry %d: the archive is corrupt", flag, id)
	}
	if _, err := a.r.Discard(a.offSize); err != nil {
		return a.eof(err, what)
	}
	e.end = a.offset()
	a.entries[id] = e
	a.order = append(a.order, id)
	return nil
}

// entry returns the first TOC entry with desc, or nil.
func (a *archive) entry(desc string) *tocEntry {
	for _, id := range a.order {
		if e := a.entries[id]; e.desc == desc {
			return e
		}
	}
	return nil
}

func (a *archive) readData() error {
	return a.eachBlock(func(typ byte, _ int64, e *tocEntry) error {
		switch {
		case typ == blockData && e.desc == "TABLE DATA":
			return a.readTable(e)
		case typ == blockData:
			return a.chunks(e.desc, nil)
		}
		return a.skipBlobs()
	})
}

// eachBlock reads the data blocks that follow the table of contents,
// handing each to fn, which reads its body; it refuses a block of an entry
// without data, a second block of an entry, and a missing one.
func (a *archive) eachBlock(fn func(typ byte, id int64, e *tocEntry) error) error {
	for {
		typ, err := a.r.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.eof(err, "a data block")
		}
		if typ != blockData && typ != blockBlobs {
			return a.errorf("unknown data block type %d: the archive is corrupt", typ)
		}
		id, err := a.readInt("a data block header")
		if err != nil {
			return err
		}
		e := a.entries[id]
		if e == nil || !e.hasData {
			return a.errorf("data block for TOC entry %d, which has no data: the archive is corrupt", id)
		}
		if e.seen {
			return a.errorf("second data block for TOC entry %d: the archive is corrupt", id)
		}
		e.seen = true
		if err := fn(typ, id, e); err != nil {
			return err
		}
	}
	for _, e := range a.entries {
		if e.hasData && !e.seen {
			return a.errorf("the data of %s %s.%s is missing: the archive is truncated", e.desc, e.namespace, e.tag)
		}
	}
	return nil
}

// chunks reads length-prefixed chunks up to a zero length, handing their
// bytes to fn (nil skips them).
func (a *archive) chunks(what string, fn func([]byte) error) error {
	for {
		n, err := a.readInt(what)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			return a.errorf("negative chunk length %d in %s: the archive is corrupt", n, what)
		}
		for n > 0 {
			if a.r.Buffered() == 0 {
				if _, err := a.r.Peek(1); err != nil {
					return a.eof(err, what)
				}
			}
			k := min(int64(a.r.Buffered()), n)
			b, _ := a.r.Peek(int(k))
			if fn != nil {
				if err := fn(b); err != nil {
					return err
				}
			}
			a.r.Discard(int(k))
			n -= k
		}
	}
}

func (a *archive) skipBlobs() error {
	for {
		oid, err := a.readInt("large objects")
		if err != nil {
			return err
		}
		if oid == 0 {
			return nil
		}
		if err := a.chunks("large objects", nil); err != nil {
			return err
		}
	}
}

// readTable digests a table's COPY text: each line up to `\.` is a row,
// itself the row's canonical encoding.
func (a *archive) readTable(e *tocEntry) error {
	rows := a.dg.Table(a.label + "." + e.namespace + "." + e.tag)
	var proj func([]byte)
	if a.proj != nil {
		proj = a.proj.table(a.label, e)
	}
	return a.eachRow(e, func(row []byte) error {
		rows.Add(row)
		if proj != nil {
			proj(row)
		}
		return nil
	})
}

// eachRow hands fn each row of a table's COPY text, without its newline;
// the slice is only valid during the call.
func (a *archive) eachRow(e *tocEntry, fn func([]byte) error) error {
	what := fmt.Sprintf("the data of table %s.%s", e.namespace, e.tag)
	if !strings.HasPrefix(e.copyStmt, "COPY ") {
		return a.errorf("%s is not COPY text (was the dump made with --inserts?)", what)
	}
	a.line = a.line[:0]
	done := false
	err := a.chunks(what, func(b []byte) error {
		for len(b) > 0 {
			if done {
				// pg_dump ends the data with blank lines after `\.`
				if len(bytes.Trim(b, "\n")) != 0 {
					return a.errorf("bytes after the end of %s: the archive is corrupt", what)
				}
				return nil
			}
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				a.line = append(a.line, b...)
				return nil
			}
			row := b[:i]
			if len(a.line) > 0 {
				a.line = append(a.line, row...)
				row = a.line
			}
			if string(row) == `\.` {
				done = true
			} else if err := fn(row); err != nil {
				return err
			}
			a.line = a.line[:0]
			b = b[i+1:]
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !done {
		return a.errorf("%s does not end with `\\.`: the archive is corrupt", what)
	}
	return nil
}

// digestReader passes a database's archive through unchanged while a
// parser, in its own goroutine, digests its tables. A read fails if the
// archive is malformed or truncated, or if the dump itself failed; the
// parser runs behind the reads (up to feedDepth batches of feedBatch
// bytes), so the digests cost the reader no time while a core is free,
// and its verdict on the whole archive comes with the end of the input.
type digestReader struct {
	src   io.Reader
	label string
	feed  chan []byte   // copies of what passed, in order, for the parser
	free  chan []byte   // batches the parser is done with, for reuse
	done  chan struct{} // closed when the parser has returned
	quit  chan struct{} // closed by Close: the parser stops reading
	perr  error         // the parser's result, set before done is closed
	inErr error         // how the parser's input ends, set before feed is closed
	batch []byte        // what passed since the last batch was sent
	shut  sync.Once     // closes feed (Read, at the end of the input)
	quits sync.Once     // closes quit (Close)
	err   error         // sticky result of Read
	n     int64
	ended func(size int64) // called once the archive ended complete
}

const (
	feedBatch = 256 << 10
	feedDepth = 8
)

var errStopped = errors.New("the archive was not read to its end")

func newDigestReader(src io.Reader, label string, dg *engine.Digester, ended func(int64)) *digestReader {
	d := &digestReader{src: src, label: label, feed: make(chan []byte, feedDepth), free: make(chan []byte, feedDepth+1),
		done: make(chan struct{}), quit: make(chan struct{}), ended: ended}
	go func() {
		defer close(d.done)
		d.perr = parseArchive(&feedReader{d: d}, label, dg)
	}()
	return d
}

func (d *digestReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.src.Read(p)
	d.n += int64(n)
	if n > 0 {
		if d.batch == nil {
			select {
			case d.batch = <-d.free:
			default:
				d.batch = make([]byte, 0, feedBatch+64<<10)
			}
		}
		d.batch = append(d.batch, p[:n]...)
		if len(d.batch) >= feedBatch && !d.send() {
			return n, d.err
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		if len(d.batch) > 0 && !d.send() {
			return n, d.err
		}
		d.stop(io.EOF)
		if d.perr != nil {
			d.err = d.perr
			return n, d.err
		}
		d.err = io.EOF
		if d.ended != nil {
			d.ended(d.n)
			d.ended = nil
		}
	case err != nil:
		d.stop(err)
		d.err = d.fail(err)
		return n, d.err
	}
	return n, err
}

// send hands the batch to the parser; false (with d.err set) when the
// parser has stopped: the archive is malformed, or it ended before its
// input did.
func (d *digestReader) send() bool {
	select {
	case d.feed <- d.batch:
		d.batch = nil
		return true
	case <-d.done:
		d.err = d.perr
		if d.err == nil {
			d.err = d.fail(errors.New("bytes after the end of the archive"))
		}
		return false
	}
}

// stop ends the parser's input with err (io.EOF: the archive ended) and
// waits for the parser. Only Read calls it.
func (d *digestReader) stop(err error) {
	d.shut.Do(func() {
		d.inErr = err
		close(d.feed)
	})
	<-d.done
}

func (d *digestReader) fail(err error) error {
	return fmt.Errorf("dump of database %q: %w", d.label, err)
}

// Close stops the parser if the archive was not read to its end. It may
// be called while a Read runs: only Read sends to or closes feed.
func (d *digestReader) Close() error {
	d.quits.Do(func() { close(d.quit) })
	<-d.done
	return nil
}

// feedReader is the parser's input: the batches a digestReader sends.
type feedReader struct {
	d   *digestReader
	buf []byte // the batch being read
	cur []byte // what is left of it
}

func (f *feedReader) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.buf != nil {
			select {
			case f.d.free <- f.buf[:0]:
			default:
			}
			f.buf = nil
		}
		select {
		case b, ok := <-f.d.feed:
			if !ok {
				return 0, f.d.inErr
			}
			f.buf, f.cur = b, b
		case <-f.d.quit:
			return 0, errStopped
		}
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}
