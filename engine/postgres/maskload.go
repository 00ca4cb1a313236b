package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"

	"github.com/coffer-backup/coffer/mask"
)

// maskVerify is what a masked load remembers to prove afterwards: the
// digests the masked tables must have, the digests of the backup's kept
// columns, and the original values of masked columns.
type maskVerify struct {
	want, kept *engine.Digester
	seen       *mask.Originals
}

// stopWriter passes writes on until stopped: a masked load keeps the bytes
// of the header and table of contents, not the whole dump.
type stopWriter struct {
	w       io.Writer
	stopped bool
}

func (s *stopWriter) Write(p []byte) (int, error) {
	if s.stopped {
		return len(p), nil
	}
	return s.w.Write(p)
}

// maskArchive rewrites the rest of the archive a, whose header and table
// of contents were read (their bytes in head), into an unlinked spool file
// of the masked archive, and proves, before anything is written to the
// target, that the rules cover the schema and that no original value of a
// masked column is in what the masked archive carries.
func (t *Target) maskArchive(a *archive, head []byte, hdrEnd int64) (*os.File, error) {
	p, err := planMask(a, t.opts.Mask)
	if err != nil {
		return nil, err
	}
	if t.mv == nil {
		t.mv = &maskVerify{want: engine.NewDigester(), kept: engine.NewDigester(), seen: &mask.Originals{}}
	}
	f, err := t.spoolFile()
	if err != nil {
		return nil, fmt.Errorf("masked load of database %q: %w", a.label, err)
	}
	if err := writeMasked(a, p, head, hdrEnd, f, t.mv); err != nil {
		f.Close()
		return nil, err
	}
	t.mv.seen.Seal()
	if err := checkSchema(a, t.mv.seen); err != nil {
		f.Close()
		return nil, err
	}
	t.notes = append(t.notes, p.notes(a.label)...)
	return f, nil
}

// MaskExpected is what a masked load's tables must digest to: the masked
// rows it wrote, and the backup's kept columns (under "TABLE (kept
// columns)"). Nil for a load that was not masked.
func (t *Target) MaskExpected() []engine.TableDigest {
	if t.mv == nil {
		return nil
	}
	return append(t.mv.want.Result(), t.mv.kept.Result()...)
}

// maskedDigests digests a masked database as Digests does, and also its
// kept columns, and fails if any field of any table equals an original
// value of a masked column.
func (t *Target) maskedDigests(ctx context.Context, m []*loadDB) ([]engine.TableDigest, error) {
	if t.mv == nil {
		return nil, errors.New("a masked verification needs the masked load it verifies")
	}
	dg := engine.NewDigester()
	check := newMaskCheck(t.opts.Mask.Rules, t.mv.seen)
	for _, x := range m {
		env, err := t.readerEnv(ctx, x.into)
		if err != nil {
			return nil, err
		}
		if err := t.digestMasked(ctx, x, env, dg, check); err != nil {
			return nil, fmt.Errorf("digest database %q at %s: %w", x.into, t.c.addr(), err)
		}
	}
	if l := check.leaks(); len(l) > 0 {
		return nil, fmt.Errorf("the masked copy holds original values of masked columns in %s: it is removed; check the rules (a kept column holding what a masked one held?)", strings.Join(l, ", "))
	}
	return append(dg.Result(), check.kept.Result()...), nil
}

func (t *Target) digestMasked(ctx context.Context, x *loadDB, env []string, dg *engine.Digester, check *maskCheck) error {
	st, err := command.StartArgs(ctx, "pg_dump "+x.into, env, append(append([]string{t.t.path["pg_dump"]}, dumpArgs...), "--no-blobs")...)
	if err != nil {
		return err
	}
	a := newArchive(st, x.from, dg)
	a.proj = check
	err = a.readHeader()
	if err == nil {
		err = a.readTOC()
	}
	if err == nil {
		err = a.readData()
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}
