package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/coffer-backup/coffer/repository"
)

// baseBackup is a BASE_BACKUP running on a replication connection
// (PostgreSQL 15 and later). After two result sets (the start position,
// the tablespaces), one COPY stream carries every archive: a CopyData
// message 'n' announces one (its name, its tablespace's path), 'd'
// messages carry its bytes, 'm' announces the manifest, 'p' reports
// progress; after CopyDone a result set gives the end position.
// pglogrepl reads the result sets; the COPY stream is read here, one
// message at a time, so memory does not grow with the backup.
type baseBackup struct {
	conn  *pgconn.PgConn
	start pglogrepl.BaseBackupResult
	data  []byte // the unread rest of the current 'd' message
	next  []byte // the announcement that ended the part read last
	done  bool   // CopyDone was received
}

func startBaseBackup(ctx context.Context, pc *pgconn.PgConn) (*baseBackup, error) {
	start, err := pglogrepl.StartBaseBackup(ctx, pc, pglogrepl.BaseBackupOptions{
		Label: "coffer", Fast: true, Manifest: true, TablespaceMap: true,
	})
	if err != nil {
		return nil, fmt.Errorf("BASE_BACKUP: %w", err)
	}
	return &baseBackup{conn: pc, start: start}, nil
}

// open returns a reader of the part named name, which must be the archive
// the server announces next.
func (b *baseBackup) open(ctx context.Context, name, location string) (io.Reader, error) {
	if b.next == nil && !b.done {
		if err := b.receive(ctx); err != nil {
			return nil, err
		}
	}
	ann := b.next
	b.next = nil
	var got, path string
	switch {
	case len(ann) > 0 && ann[0] == 'n':
		f := bytes.Split(ann[1:], []byte{0})
		if len(f) < 2 {
			return nil, errors.New("BASE_BACKUP: the server announced an archive without a name and path")
		}
		got, path = string(f[0]), string(f[1])
	case len(ann) > 0 && ann[0] == 'm':
		got = repository.ManifestPart
	default:
		return nil, fmt.Errorf("BASE_BACKUP: the server's stream ended before %s", name)
	}
	if got != name || path != location {
		return nil, fmt.Errorf("BASE_BACKUP: the server sent archive %q of %q where coffer expected %s of %q", got, path, name, location)
	}
	return &partReader{ctx: ctx, b: b}, nil
}

// receive reads messages until a 'd' message, an announcement (kept in
// b.next) or the end of the COPY stream.
func (b *baseBackup) receive(ctx context.Context) error {
	for {
		msg, err := b.conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("BASE_BACKUP: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyOutResponse, *pgproto3.NoticeResponse:
		case *pgproto3.CopyData:
			switch {
			case len(m.Data) == 0 || m.Data[0] == 'p':
			case m.Data[0] == 'd':
				b.data = m.Data[1:]
				return nil
			case m.Data[0] == 'n' || m.Data[0] == 'm':
				b.next = bytes.Clone(m.Data)
				return nil
			default:
				return fmt.Errorf("BASE_BACKUP: a COPY message of type %q coffer does not know", m.Data[0])
			}
		case *pgproto3.CopyDone:
			b.done = true
			return nil
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("BASE_BACKUP: %w", pgconn.ErrorResponseToPgError(m))
		default:
			return fmt.Errorf("BASE_BACKUP: unexpected message %T in the COPY stream", m)
		}
	}
}

// finish reads the end of the backup once every part was read: it
// returns the end position.
func (b *baseBackup) finish(ctx context.Context) (pglogrepl.BaseBackupResult, error) {
	if b.next != nil || !b.done {
		if b.next == nil {
			if err := b.receive(ctx); err != nil {
				return pglogrepl.BaseBackupResult{}, err
			}
		}
		if !b.done {
			return pglogrepl.BaseBackupResult{}, errors.New("BASE_BACKUP: the server sent more archives than it announced tablespaces")
		}
	}
	end, err := pglogrepl.FinishBaseBackup(ctx, b.conn)
	if err != nil {
		return end, fmt.Errorf("BASE_BACKUP: read its end: %w", err)
	}
	return end, nil
}

// partReader reads one archive's bytes, up to the next announcement.
type partReader struct {
	ctx context.Context
	b   *baseBackup
}

func (r *partReader) Read(p []byte) (int, error) {
	b := r.b
	for len(b.data) == 0 {
		if b.next != nil || b.done {
			return 0, io.EOF
		}
		if err := b.receive(r.ctx); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}
