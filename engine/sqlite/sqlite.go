// Package sqlite backs up SQLite databases: a consistent online copy made
// with VACUUM INTO (the database may be in use), per-table digests of a
// database file, and restore into a new file. It uses a pure-Go driver, so
// it needs no sqlite3 binary and no cgo.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// Format names the stream this package writes: a SQLite database file.
const Format = "sqlite3"

// open opens the database at path. A restored database is the snapshot's:
// trusted_schema off keeps its views and triggers from calling functions
// SQLite marks unsafe for them.
func open(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "trusted_schema(0)")
	if readOnly {
		q.Add("mode", "ro")
	}
	return sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
}

// Dump is a consistent copy of a database, ready to be backed up.
type Dump struct {
	io.Reader
	Database string               // the source file's base name
	Version  string               // SQLite library version
	Digests  []engine.TableDigest // of the copy, hence of the stream
	Size     int64
	file     *os.File
	dir      string
}

// Close removes the copy.
func (d *Dump) Close() error {
	d.file.Close()
	return os.RemoveAll(d.dir)
}

// Start copies the database at path into a private temporary directory
// under tmp (the system's when empty), computes its digests, and returns
// the copy as a stream. The copy holds customer data: it is 0600 in a 0700
// directory named after this process, Close removes it, and, should the
// process be killed first, the next Start (Sweep) does.
func Start(ctx context.Context, path, tmp string) (*Dump, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite database %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite database %s is not a file", path)
	}
	Sweep(tmp) // best effort: a copy it cannot remove is no reason not to back up
	dir, err := makeCopyDir(tmp)
	if err != nil {
		return nil, err
	}
	d := &Dump{Database: filepath.Base(path), dir: dir}
	fail := func(err error) (*Dump, error) { os.RemoveAll(dir); return nil, err }
	cp := filepath.Join(dir, "copy.db")
	if err := createPrivate(cp); err != nil {
		return fail(err)
	}
	if d.Version, err = vacuumInto(ctx, path, cp); err != nil {
		return fail(err)
	}
	if d.Digests, err = Digests(ctx, cp); err != nil {
		return fail(err)
	}
	if d.file, err = os.Open(cp); err != nil {
		return fail(err)
	}
	st, _ = d.file.Stat()
	d.Size, d.Reader = st.Size(), d.file
	return d, nil
}

func vacuumInto(ctx context.Context, src, dst string) (string, error) {
	db, err := open(src, true)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return "", fmt.Errorf("sqlite database %s: %w (is it a SQLite 3 database?)", src, err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return "", fmt.Errorf("copy sqlite database %s: %w", src, err)
	}
	return version, nil
}

// Digests computes the per-table digests of the database file at path.
// The canonical row encoding is, for each column in order, a type tag and
// the value: NULL; an integer as 8 bytes; a float as its IEEE bits; text
// and blobs length-prefixed.
func Digests(ctx context.Context, path string) ([]engine.TableDigest, error) {
	db, tables, err := openTables(ctx, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	d := engine.NewDigester()
	for _, t := range tables {
		if err := digestTable(ctx, db, t, d); err != nil {
			return nil, fmt.Errorf("sqlite database %s, table %s: %w", path, t, err)
		}
	}
	return d.Result(), nil
}

// openTables opens the database at path read-only and lists its tables.
func openTables(ctx context.Context, path string) (*sql.DB, []string, error) {
	db, err := open(path, true)
	if err != nil {
		return nil, nil, err
	}
	tables, err := Tables(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("sqlite database %s: %w", path, err)
	}
	return db, tables, nil
}

// Tables lists the user tables.
func Tables(ctx context.Context, db *sql.DB) ([]string, error) {
	return engine.QueryStrings(ctx, db, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func digestTable(ctx context.Context, db *sql.DB, table string, d *engine.Digester) error {
	d.Table(table)
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+quoteIdent(table))
	if err != nil {
		return err
	}
	var buf []byte
	return eachRow(rows, func(vals []any) error {
		buf = buf[:0]
		for _, v := range vals {
			buf = appendValue(buf, v)
		}
		d.Add(table, buf)
		return nil
	})
}

// eachRow calls fn with the values of each row of rows, which it closes.
// fn may not keep vals.
func eachRow(rows *sql.Rows, fn func(vals []any) error) error {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, 'N')
	case int64:
		return binary.BigEndian.AppendUint64(append(b, 'I'), uint64(v))
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 'F'), math.Float64bits(v))
	case string:
		return append(binary.BigEndian.AppendUint32(append(b, 'T'), uint32(len(v))), v...)
	case []byte:
		return append(binary.BigEndian.AppendUint32(append(b, 'B'), uint32(len(v))), v...)
	default: // time.Time and other driver conversions: their text form
		s := fmt.Sprint(v)
		return append(binary.BigEndian.AppendUint32(append(b, 'S'), uint32(len(s))), s...)
	}
}

// Load writes a restored database stream to target, a new file (mode
// 0600): one that exists and is not empty is refused (Stage and Replace
// replace one). The file appears under its name only once complete and
// readable as a SQLite database.
func Load(ctx context.Context, r io.Reader, target string) error {
	if st, err := os.Stat(target); err == nil && st.Size() > 0 {
		return fmt.Errorf("restore target %s exists and is not empty: choose another path, or pass --clean to replace it", target)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	err := atomicfile.Write(target, atomicfile.Options{Check: func(tmp string) error {
		if err := integrity(ctx, tmp); err != nil {
			return fmt.Errorf("the restored file is not a sound SQLite database: %w", err)
		}
		removeSidecars(tmp)
		removeSidecars(target) // stale files of a removed database would corrupt it
		return nil
	}}, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("restore into %s: %w; nothing was written there", target, err)
	}
	return nil
}

func integrity(ctx context.Context, path string) error {
	db, err := open(path, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return errors.New(res)
	}
	return nil
}
