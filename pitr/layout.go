package pitr

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// Layout is where a restored base backup goes: the data directory, and a
// directory for each user tablespace. The snapshot's own locations (the
// backup host's paths) never choose one: they are the operator's mapping
// or directories coffer chooses.
type Layout struct {
	DataDir     string
	Tablespaces map[uint32]string // oid → absolute directory
}

// TablespacesBeside is the directory beside a data directory DIR that
// holds, by default, its restored tablespaces: DIR.tablespaces/OID.
func TablespacesBeside(dataDir string) string { return filepath.Clean(dataDir) + ".tablespaces" }

// PlanLayout maps each tablespace of info to a directory: the one that
// mapping gives it (entries OID=DIR or NAME=DIR, from --tablespace-map),
// else base/OID. Directories are made absolute; none may be the data
// directory, be inside another or hold another.
func PlanLayout(info *repository.PhysicalInfo, dataDir, base string, mapping []string) (*Layout, error) {
	data, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	l := &Layout{DataDir: data, Tablespaces: map[uint32]string{}}
	for _, m := range mapping {
		key, dir, ok := strings.Cut(m, "=")
		if !ok || key == "" || dir == "" {
			return nil, fmt.Errorf("--tablespace-map %q: give OID=DIR or NAME=DIR", m)
		}
		ts, err := findTablespace(info, key)
		if err != nil {
			return nil, err
		}
		if _, dup := l.Tablespaces[ts.OID]; dup {
			return nil, fmt.Errorf("--tablespace-map: tablespace %d is mapped twice", ts.OID)
		}
		if l.Tablespaces[ts.OID], err = filepath.Abs(dir); err != nil {
			return nil, err
		}
	}
	for _, ts := range info.Tablespaces {
		if _, ok := l.Tablespaces[ts.OID]; !ok {
			d, err := filepath.Abs(filepath.Join(base, strconv.FormatUint(uint64(ts.OID), 10)))
			if err != nil {
				return nil, err
			}
			l.Tablespaces[ts.OID] = d
		}
	}
	return l, l.checkApart()
}

// findTablespace is the tablespace a --tablespace-map key names: digits
// are an oid, anything else a name.
func findTablespace(info *repository.PhysicalInfo, key string) (*repository.Tablespace, error) {
	if oid, err := strconv.ParseUint(key, 10, 32); err == nil {
		if ts := info.Tablespace(uint32(oid)); ts != nil {
			return ts, nil
		}
	} else {
		for i := range info.Tablespaces {
			if info.Tablespaces[i].Name == key {
				return &info.Tablespaces[i], nil
			}
		}
	}
	if len(info.Tablespaces) == 0 {
		return nil, fmt.Errorf("--tablespace-map %s: the base backup has no tablespace besides pg_default and pg_global", termsafe.String(key))
	}
	return nil, fmt.Errorf("--tablespace-map %s: the base backup has no such tablespace; it has %s", termsafe.String(key), describeTablespaces(info))
}

// describeTablespaces lists the tablespaces for a message, escaped.
func describeTablespaces(info *repository.PhysicalInfo) string {
	s := make([]string, len(info.Tablespaces))
	for i, ts := range info.Tablespaces {
		s[i] = fmt.Sprintf("%d (%s)", ts.OID, termsafe.String(ts.Name))
	}
	return strings.Join(s, ", ")
}

// checkApart refuses directories that are the same, or one inside another.
func (l *Layout) checkApart() error {
	type dir struct{ what, path string }
	dirs := []dir{{"the data directory", l.DataDir}}
	for _, oid := range l.sorted() {
		dirs = append(dirs, dir{fmt.Sprintf("tablespace %d's directory", oid), l.Tablespaces[oid]})
	}
	for i, a := range dirs {
		for _, b := range dirs[i+1:] {
			if within(a.path, b.path) || within(b.path, a.path) {
				return fmt.Errorf("restore: %s %s and %s %s overlap: give each tablespace a directory of its own, outside the data directory (--tablespace-map OID=DIR)",
					a.what, termsafe.String(a.path), b.what, termsafe.String(b.path))
			}
		}
	}
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Prepare makes the layout's directories, each of which must be empty or
// not exist (mode 0700). One that holds anything is refused untouched.
func (l *Layout) Prepare() error {
	if err := Prepare(l.DataDir); err != nil {
		return err
	}
	for oid, dir := range l.Tablespaces {
		if err := Prepare(dir); err != nil {
			return fmt.Errorf("tablespace %d: %w", oid, err)
		}
	}
	return nil
}

// Dirs lists the layout's directories: the data directory first.
func (l *Layout) Dirs() []string {
	dirs := []string{l.DataDir}
	for _, ts := range l.sorted() {
		dirs = append(dirs, l.Tablespaces[ts])
	}
	return dirs
}

func (l *Layout) sorted() []uint32 {
	oids := make([]uint32, 0, len(l.Tablespaces))
	for oid := range l.Tablespaces {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	return oids
}

// Plan chooses where snapshot snap's base backup goes (PlanLayout) and
// reads its part list, checking that its format is one coffer restores;
// nothing is written.
func Plan(repo *repository.Repo, snap *repository.Snapshot, dataDir, base string, mapping []string) (*Layout, []engine.Part, error) {
	layout, err := PlanLayout(snap.Physical, dataDir, base, mapping)
	if err != nil {
		return nil, nil, fmt.Errorf("restore snapshot %s: %w", snap.ID().Short(), err)
	}
	parts, err := restore.Parts(repo, snap)
	if err != nil {
		return nil, nil, err
	}
	object := "snapshots/" + snap.ID().String()
	switch {
	case snap.Format == postgres.PhysicalFormat && parts == nil:
		return nil, nil, &repository.CorruptError{Object: object, Reason: "a base backup of format " + postgres.PhysicalFormat + " without its part list"}
	case snap.Format == postgres.PhysicalFormatTar && parts != nil:
		return nil, nil, &repository.CorruptError{Object: object, Reason: "a base backup of format " + postgres.PhysicalFormatTar + " with a part list"}
	case snap.Format != postgres.PhysicalFormat && snap.Format != postgres.PhysicalFormatTar:
		return nil, nil, fmt.Errorf("snapshot %s is a base backup of format %s, which this coffer does not know: use a newer coffer", snap.ID().Short(), termsafe.String(snap.Format))
	}
	return layout, parts, nil
}
