package repository

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Part names of a physical base backup's stream, as pg_basebackup names
// its files in tar format: OID.tar for each user tablespace, base.tar for
// the data directory, and the backup manifest.
const (
	BasePart     = "base.tar"
	ManifestPart = "backup_manifest"
)

// TablespacePart is the name of tablespace oid's part.
func TablespacePart(oid uint32) string { return strconv.FormatUint(uint64(oid), 10) + ".tar" }

// Tablespace is a user tablespace of a physical base backup (besides
// pg_default and pg_global, which live in the data directory). Its files
// are the stream's part OID.tar (docs/format.md, "Physical base backups").
// A backup host wrote it: the name and location are shown to an operator,
// escaped, and never used as a path or an option.
type Tablespace struct {
	OID      uint32 `json:"oid"`
	Name     string `json:"name"`     // pg_tablespace.spcname; empty if it was not found
	Location string `json:"location"` // its directory on the backup host
}

// Limits on what a base backup may record of its tablespaces: PostgreSQL's
// first oid for user objects (FirstNormalObjectId), its longest name
// (NAMEDATALEN - 1) and path (MAXPGPATH), and a bound on their number.
const (
	firstUserOID      = 16384
	maxTablespaceName = 63
	maxTablespacePath = 1024
	maxTablespaces    = 1000
)

// checkTablespaces validates the tablespace list; bad reports what is
// wrong as a damaged snapshot.
func (p *PhysicalInfo) checkTablespaces(bad func(string) error) error {
	if len(p.Tablespaces) > maxTablespaces {
		return bad(fmt.Sprintf("%d tablespaces (at most %d)", len(p.Tablespaces), maxTablespaces))
	}
	oids, names := map[uint32]bool{}, map[string]bool{}
	for i, ts := range p.Tablespaces {
		what := fmt.Sprintf("tablespace %d of its list ", i+1)
		switch {
		case ts.OID < firstUserOID:
			return bad(what + fmt.Sprintf("with oid %d, not the oid of a user tablespace (%d or more)", ts.OID, firstUserOID))
		case oids[ts.OID]:
			return bad(what + fmt.Sprintf("with oid %d, which an earlier one has", ts.OID))
		case len(ts.Name) > maxTablespaceName || strings.ContainsRune(ts.Name, 0):
			return bad(what + fmt.Sprintf("(oid %d) with a name that is not one (more than %d bytes, or a NUL)", ts.OID, maxTablespaceName))
		case ts.Name != "" && names[ts.Name]:
			return bad(what + fmt.Sprintf("(oid %d) with the name of an earlier one", ts.OID))
		case !cleanAbsolute(ts.Location):
			return bad(what + fmt.Sprintf("(oid %d) with a location that is not a clean absolute path of at most %d bytes without control characters", ts.OID, maxTablespacePath))
		}
		oids[ts.OID], names[ts.Name] = true, true
	}
	return nil
}

func cleanAbsolute(p string) bool {
	return len(p) <= maxTablespacePath && path.IsAbs(p) && path.Clean(p) == p && p != "/" &&
		!strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Tablespace returns the tablespace with the given oid, or nil.
func (p *PhysicalInfo) Tablespace(oid uint32) *Tablespace {
	for i := range p.Tablespaces {
		if p.Tablespaces[i].OID == oid {
			return &p.Tablespaces[i]
		}
	}
	return nil
}
