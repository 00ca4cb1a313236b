// Package pitr restores a physical base backup of PostgreSQL into a data
// directory and prepares it to recover, with WAL from coffer's archive, to
// a chosen moment.
//
// A base backup was written by a backup host, which may be hostile: its
// tar streams are data, never instructions. Extraction stays inside the
// data directory, and each tablespace's inside the directory the Layout
// gives it (os.Root refuses every path that leaves one, through ".." or a
// symbolic link), makes only directories and regular files with modes
// PostgreSQL wants (0700, 0600), and refuses links, devices and anything
// else; coffer makes the pg_tblspc links itself, to the Layout's
// directories, never to paths the backup names. The server configuration in the backup (postgresql.conf,
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
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
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

// ExtractBackup writes a base backup's stream r into the layout's
// directories, which must be empty or not exist: parts cut the stream
// into base.tar (into the data directory), OID.tar (into tablespace OID's
// directory) and backup_manifest; no parts (a snapshot of format
// pg_basebackup-tar) make the whole stream base.tar. The parts must be
// exactly those of info's tablespaces, checked before anything is made.
// Then each pg_tblspc/OID link is made to its tablespace's directory. It
// returns the number of files written.
func ExtractBackup(r io.Reader, parts []engine.Part, info *repository.PhysicalInfo, l *Layout) (int, error) {
	if err := checkParts(parts, info, l); err != nil {
		return 0, err
	}
	if err := l.Prepare(); err != nil {
		return 0, err
	}
	data, err := os.OpenRoot(l.DataDir)
	if err != nil {
		return 0, err
	}
	defer data.Close()
	files := 0
	one := func(p engine.Part, r io.Reader) error {
		n, err := extractPart(r, p, data, info, l)
		files += n
		if err != nil && parts != nil {
			err = fmt.Errorf("part %s of the base backup: %w", p.Name, err)
		}
		return err
	}
	if parts == nil {
		err = one(engine.Part{Name: repository.BasePart}, r)
	} else {
		err = engine.Split(r, parts, one)
	}
	if err != nil {
		return files, err
	}
	return files, link(data, l)
}

// checkParts refuses a part list that is not exactly base.tar, at most one
// backup_manifest, and one OID.tar for each tablespace info lists.
func checkParts(parts []engine.Part, info *repository.PhysicalInfo, l *Layout) error {
	seen := map[string]bool{}
	for _, p := range parts {
		ok := p.Name == repository.BasePart || p.Name == repository.ManifestPart
		for _, ts := range info.Tablespaces {
			ok = ok || p.Name == repository.TablespacePart(ts.OID)
		}
		switch {
		case !ok:
			return fmt.Errorf("the base backup's stream holds a part %s that is no tablespace it lists (%s): refused, nothing was written", termsafe.String(p.Name), describeTablespaces(info))
		case seen[p.Name]:
			return fmt.Errorf("the base backup's stream holds part %s twice: refused, nothing was written", termsafe.String(p.Name))
		}
		seen[p.Name] = true
	}
	if parts != nil && !seen[repository.BasePart] {
		return errors.New("the base backup's stream holds no part base.tar (the data directory): refused, nothing was written")
	}
	for _, ts := range info.Tablespaces {
		if !seen[repository.TablespacePart(ts.OID)] {
			return fmt.Errorf("the base backup lists tablespace %d (%s), but its stream holds no part %s with its files: refused, nothing was written",
				ts.OID, termsafe.String(ts.Name), repository.TablespacePart(ts.OID))
		}
		if l.Tablespaces[ts.OID] == "" {
			return fmt.Errorf("tablespace %d has no directory to be restored into", ts.OID)
		}
	}
	return nil
}

// extractPart writes one part where it goes.
func extractPart(r io.Reader, p engine.Part, data *os.Root, info *repository.PhysicalInfo, l *Layout) (int, error) {
	switch p.Name {
	case repository.BasePart:
		return extractTar(r, data, info)
	case repository.ManifestPart:
		return 1, writeFile(data, repository.ManifestPart, r, p.Size)
	}
	for oid, dir := range l.Tablespaces {
		if p.Name == repository.TablespacePart(oid) {
			root, err := os.OpenRoot(dir)
			if err != nil {
				return 0, err
			}
			defer root.Close()
			return extractTar(r, root, nil)
		}
	}
	return 0, fmt.Errorf("no directory for part %s", termsafe.String(p.Name))
}

// link makes pg_tblspc/OID in the data directory a symbolic link to each
// tablespace's directory, as PostgreSQL finds its tablespaces. The base
// backup's tablespace_map, which would name the backup host's paths, is
// not written.
func link(data *os.Root, l *Layout) error {
	if len(l.Tablespaces) == 0 {
		return nil
	}
	if err := data.MkdirAll("pg_tblspc", 0o700); err != nil {
		return err
	}
	for _, oid := range l.sorted() {
		name := "pg_tblspc/" + strconv.FormatUint(uint64(oid), 10)
		if err := data.Symlink(l.Tablespaces[oid], name); err != nil {
			return fmt.Errorf("link %s to tablespace %d's directory %s (the base backup must not hold %s itself): %w", name, oid, termsafe.String(l.Tablespaces[oid]), name, err)
		}
	}
	return nil
}

// extractTar writes the tar stream r into root. With info, r is the data
// directory's archive: its server configuration is set aside, and its
// tablespace_map must name exactly info's tablespaces.
func extractTar(r io.Reader, root *os.Root, info *repository.PhysicalInfo) (int, error) {
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
			if info != nil && name == "tablespace_map" {
				// Recovery makes each line a symbolic link in pg_tblspc to
				// the path it names: coffer makes the links itself.
				if err := checkMap(tr, h.Size, info); err != nil {
					return files, err
				}
				continue
			}
			if info != nil && path.Dir(name) == "." && configFiles[name] {
				name += setAsideSuffix
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
		return "", fmt.Errorf("the base backup holds an entry named %q, outside the directory it is restored into: refused", name)
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

// checkMap refuses a tablespace_map whose lines ("OID PATH") do not name
// exactly the tablespaces the snapshot lists: the base backup would not be
// the one the snapshot describes. The paths are not used.
func checkMap(r io.Reader, size int64, info *repository.PhysicalInfo) error {
	if size > 1<<20 {
		return errors.New("the base backup's tablespace_map is larger than 1 MiB: refused")
	}
	b, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return err
	}
	listed := map[uint32]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		f, _, _ := strings.Cut(line, " ")
		oid, err := strconv.ParseUint(f, 10, 32)
		if err != nil || info.Tablespace(uint32(oid)) == nil || listed[uint32(oid)] {
			return fmt.Errorf("the base backup's tablespace_map names a tablespace %s that the snapshot does not list (%s), or twice: refused", termsafe.String(f), describeTablespaces(info))
		}
		listed[uint32(oid)] = true
	}
	if len(listed) != len(info.Tablespaces) {
		return fmt.Errorf("the base backup's tablespace_map names %d tablespaces, the snapshot %d: refused", len(listed), len(info.Tablespaces))
	}
	return nil
}
