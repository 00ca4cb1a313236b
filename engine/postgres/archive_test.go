package postgres

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/coffer-backup/coffer/engine"
)

// testdata/v1.14-pg15.pgdump is `pg_dump -Fc -Z0` (PostgreSQL 15, archive
// 1.14, written to a pipe) of a database with a table t (a int, b text)
// holding (1, 'x') and (2, NULL), a table e without columns or rows, and
// one large object.
const fixtureFile = "testdata/v1.14-pg15.pgdump"

func fixtureDigests() []engine.TableDigest {
	dg := engine.NewDigester()
	dg.Add("probe.public.t", []byte("1\tx"))
	dg.Add("probe.public.t", []byte("2\t\\N"))
	dg.Table("probe.public.e")
	return dg.Result()
}

func TestArchiveFixture(t *testing.T) {
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	dg := engine.NewDigester()
	if err := parseArchive(bytes.NewReader(b), "probe", dg); err != nil {
		t.Fatal(err)
	}
	if r := engine.Compare(fixtureDigests(), dg.Result()); !engine.AllMatch(r) {
		t.Fatalf("digests differ: %+v", r)
	}
}

// Every proper prefix of an archive is truncated: an error naming the
// database, never a panic or a digest.
func TestArchiveTruncated(t *testing.T) {
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		err := parseArchive(bytes.NewReader(b[:n]), "probe", engine.NewDigester())
		var ae *ArchiveError
		if !errors.As(err, &ae) || ae.Database != "probe" {
			t.Fatalf("prefix of %d bytes: got %v, want an ArchiveError for database probe", n, err)
		}
	}
}

// The reader passes the bytes through unchanged, however they are cut.
func TestDigestReader(t *testing.T) {
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	dg := engine.NewDigester()
	var size int64
	d := newDigestReader(iotest.OneByteReader(bytes.NewReader(b)), "probe", dg, func(n int64) { size = n })
	got, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if !bytes.Equal(got, b) || size != int64(len(b)) {
		t.Fatalf("passed %d bytes (size %d), want the %d of the archive", len(got), size, len(b))
	}
	if r := engine.Compare(fixtureDigests(), dg.Result()); !engine.AllMatch(r) {
		t.Fatalf("digests differ: %+v", r)
	}

	// A truncated archive fails the read, naming the database.
	d = newDigestReader(bytes.NewReader(b[:len(b)-20]), "probe", engine.NewDigester(), nil)
	_, err = io.ReadAll(d)
	d.Close()
	if err == nil || !strings.Contains(err.Error(), `database "probe"`) {
		t.Fatalf("truncated archive: got %v", err)
	}

	// Closed before the end: the parser goroutine ends.
	d = newDigestReader(bytes.NewReader(b), "probe", engine.NewDigester(), nil)
	d.Read(make([]byte, 100))
	d.Close()
}

// archWriter writes synthetic custom-format archives of other versions
// than the pg_dump installed here, following pg_backup_archiver.c.
type archWriter struct {
	bytes.Buffer
	minor byte
}

func (w *archWriter) int(v int64) {
	if v < 0 {
		w.WriteByte(1)
		v = -v
	} else {
		w.WriteByte(0)
	}
	for range 4 {
		w.WriteByte(byte(v))
		v >>= 8
	}
}

func (w *archWriter) str(s string) { w.int(int64(len(s))); w.WriteString(s) }

type synthEntry struct {
	id               int64
	desc, tag, copy_ string
	data             bool
}

func (w *archWriter) entry(e synthEntry) {
	w.int(e.id)
	w.int(map[bool]int64{true: 1}[e.data])
	w.str("0")
	w.str("0")
	w.str(e.tag)
	w.str(e.desc)
	w.int(2) // section
	w.str("")
	w.str("")
	w.str(e.copy_)
	w.str("public")
	w.str("")
	if w.minor >= 14 {
		w.str("heap")
	}
	if w.minor >= 16 {
		w.int('r')
	}
	w.str("postgres")
	w.str("false")
	w.str("1") // a dependency
	w.int(-1)
	if e.data {
		w.WriteByte(offsetNotSet)
	} else {
		w.WriteByte(offsetNoData)
	}
	w.Write(make([]byte, 8))
}

func synthArchive(minor byte, compressed bool) []byte {
	w := &archWriter{minor: minor}
	w.WriteString("PGDMP")
	w.Write([]byte{1, minor, 0, 4, 8, formatCustom})
	c := int64(0)
	if compressed {
		c = 1
	}
	if minor >= 15 {
		w.WriteByte(byte(c))
	} else {
		w.int(c)
	}
	for range 7 {
		w.int(1)
	}
	w.str("probe")
	w.str("17.0")
	w.str("17.0")
	w.int(4)
	w.entry(synthEntry{id: 1, desc: "ENCODING", tag: "ENCODING"})
	w.entry(synthEntry{id: 2, desc: "TABLE DATA", tag: "t", copy_: "COPY public.t (a, b) FROM stdin;\n", data: true})
	w.entry(synthEntry{id: 3, desc: "TABLE DATA", tag: "e", copy_: "COPY public.e  FROM stdin;\n", data: true})
	w.entry(synthEntry{id: 4, desc: "BLOBS", tag: "BLOBS", data: true})
	// t: rows cut across chunks
	w.WriteByte(blockData)
	w.int(2)
	for _, c := range []string{"1\t", "x\n2\t\\N", "\n", "\\.\n\n\n"} {
		w.str(c)
	}
	w.int(0)
	w.WriteByte(blockData)
	w.int(3)
	w.str("\\.\n\n\n")
	w.int(0)
	w.WriteByte(blockBlobs)
	w.int(4)
	w.int(-5) // an oid above 2^31, as pg_dump writes it
	w.str("hello")
	w.int(0)
	w.int(0)
	return w.Bytes()
}

func TestArchiveVersions(t *testing.T) {
	for minor := byte(12); minor <= 16; minor++ {
		dg := engine.NewDigester()
		if err := parseArchive(bytes.NewReader(synthArchive(minor, false)), "probe", dg); err != nil {
			t.Fatalf("1.%d: %v", minor, err)
		}
		if r := engine.Compare(fixtureDigests(), dg.Result()); !engine.AllMatch(r) {
			t.Fatalf("1.%d: digests differ: %+v", minor, r)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"1.11", synthArchive(11, false), "version 1.11 is not supported"},
		{"1.17", synthArchive(17, false), "version 1.17 is not supported"},
		{"gzip 1.14", synthArchive(14, true), "compressed"},
		{"zstd 1.16", synthArchive(16, true), "compressed"},
		{"plain SQL", []byte("--\n-- PostgreSQL database dump\n--\n"), "not a pg_dump custom-format archive"},
		{"trailing byte", append(synthArchive(16, false), 1), "truncated"},
		{"unknown block", append(synthArchive(16, false), 9, 0, 4, 0, 0, 0), "unknown data block type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parseArchive(bytes.NewReader(tc.b), "probe", engine.NewDigester())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"probe"`) {
				t.Fatalf("got %v, want an error about %q naming the database", err, tc.want)
			}
		})
	}
}

func FuzzArchive(f *testing.F) {
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for minor := byte(12); minor <= 16; minor++ {
		f.Add(synthArchive(minor, false))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := parseArchive(bytes.NewReader(b), "fuzz", engine.NewDigester())
		var ae *ArchiveError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("error of type %T: %v", err, err)
		}
	})
}
