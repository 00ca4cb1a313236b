// Package pitr restores a physical base backup of PostgreSQL into a data
// directory and prepares it to recover, with WAL from coffer's archive, to
// a chosen moment.
//
// A base backup was written by a backup host, which may be hostile: its
// tar stream is data, never instructions. Extraction stays inside the data
// directory (os.Root refuses every path that leaves it, through ".." or a
// symbolic link), makes only directories and regular files with modes
// PostgreSQL wants (0700, 0600), and refuses links, devices and anything
// else. The server configuration in the backup (postgresql.conf,
// postgresql.auto.conf, pg_hba.conf, pg_ident.conf) is kept beside, renamed,
// and never used: it could name commands (archive_command, restore_command,
// ssl_passphrase_command) or libraries (shared_preload_libraries) that the
// restored server would run. coffer writes its own.
package pitr

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// configFiles are the server configuration files in a data directory that
// a restore never uses as the backup wrote them.
var configFiles = map[string]bool{
	"postgresql.conf": true, "postgresql.auto.conf": true, "pg_hba.conf": true, "pg_ident.conf": true,
}

// setAsideSuffix is appended to the backup's own configuration files.
const setAsideSuffix = ".from-backup"

// maxEntries bounds the number of tar entries (a cluster has some
// thousands of files per database; a hostile stream could have billions
// of empty ones).
const maxEntries = 10_000_000

// Prepare makes dir, which must be empty or not exist, ready for Extract
// (mode 0700). A directory that holds anything is refused untouched.
func Prepare(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("restore --pgdata %s: it is not empty: give a new or empty directory (coffer never writes over a data directory)", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore --pgdata: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore --pgdata: %w", err)
	}
	return os.Chmod(dir, 0o700)
}

// Extract writes the tar stream r into dir, which must be empty or not
// exist. It returns the number of files written.
func Extract(r io.Reader, dir string) (int, error) {
	if err := Prepare(dir); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	files := 0
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("the base backup's tar stream: %w", err)
		}
		if n >= maxEntries {
			return files, fmt.Errorf("the base backup holds more than %d entries: refused", maxEntries)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return files, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if name != "." {
				if err := root.MkdirAll(name, 0o700); err != nil {
					return files, fmt.Errorf("the base backup's directory %q: %w", name, err)
				}
			}
		case tar.TypeReg:
			if dir := path.Dir(name); dir != "." {
				if err := root.MkdirAll(dir, 0o700); err != nil {
					return files, fmt.Errorf("the base backup's directory %q: %w", dir, err)
				}
			}
			if path.Dir(name) == "." && configFiles[name] {
				name += setAsideSuffix
			}
			if name == "tablespace_map" {
				// Recovery makes each line a symbolic link in pg_tblspc to
				// the path it names: a way out of the data directory.
				if err := emptyMap(tr, h.Size); err != nil {
					return files, err
				}
				files++
				continue
			}
			if err := writeFile(root, name, tr, h.Size); err != nil {
				return files, err
			}
			files++
		default:
			return files, fmt.Errorf("the base backup holds %q of tar type %q (a link, device or other special file): refused; coffer restores directories and regular files only", name, string(h.Typeflag))
		}
	}
}

// entryName checks a tar entry's name: relative, clean, inside.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.TrimSuffix(name, "/"))
	if name == "" || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(name, 0) || strings.Contains(name, "\\") {
		return "", fmt.Errorf("the base backup holds an entry named %q, outside the data directory: refused", name)
	}
	return clean, nil
}

func writeFile(root *os.Root, name string, r io.Reader, size int64) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("the base backup's file %q: %w", name, err)
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return fmt.Errorf("the base backup's file %q: %w", name, err)
	}
	return f.Close()
}

// emptyMap refuses a tablespace_map that names any tablespace.
func emptyMap(r io.Reader, size int64) error {
	b, err := io.ReadAll(io.LimitReader(r, min(size, 1<<20)))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != "" || size > 1<<20 {
		return errors.New("the base backup's tablespace_map names tablespaces: recovery would link them to paths outside the data directory; base backups of several tablespaces are not supported")
	}
	return nil
}
