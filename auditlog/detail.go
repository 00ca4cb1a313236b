package auditlog

import (
	"strconv"
	"strings"
	"time"
)

// An audit record's Detail is stored as strings (repository.AuditRecord),
// and so it stays: records are authenticated as they were written, and old
// ones must read forever. Detail gives it the types that docs/json.md
// promises, by key, so that machines read numbers as numbers.

// legacyKeys are the names earlier versions recorded, and what they are
// called now.
var legacyKeys = map[string]string{
	"bytes_read":   "size_bytes",
	"bytes_stored": "stored_bytes",
	"rto":          "rto_seconds", // a Go duration, such as 2.236s
}

// intKeys are the counts recorded; any key ending in _bytes is one too.
var intKeys = map[string]bool{
	"deleted_packs": true, "deleted_lists": true, "temp_files_removed": true, "canaries": true, "generation": true,
}

// boolKeys are the yes/no choices recorded.
var boolKeys = map[string]bool{
	"verified": true, "clean": true, "drop_old": true, "force": true, "trust_snapshot": true,
}

// Detail returns d with today's key names and typed values: integers for
// counts and *_bytes, float seconds for *_seconds, booleans for choices,
// strings for the rest. A value that does not parse as its key's type (a
// record written by something else than coffer) is kept as its string.
func Detail(d map[string]string) map[string]any {
	out := make(map[string]any, len(d))
	for k, v := range d {
		if n, ok := legacyKeys[k]; ok {
			if _, both := d[n]; !both {
				k, v = n, legacyValue(k, v)
			}
		}
		out[k] = typed(k, v)
	}
	return out
}

// legacyValue is an old value in today's unit.
func legacyValue(k, v string) string {
	if k == "rto" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return v
		}
		return strconv.FormatFloat(float64(d)/1e9, 'f', -1, 64)
	}
	return v
}

func typed(k, v string) any {
	switch {
	case intKeys[k] || strings.HasSuffix(k, "_bytes"):
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	case strings.HasSuffix(k, "_seconds"):
		if f, err := strconv.ParseFloat(v, 64); err == nil && !isSpecial(v) {
			return f
		}
	case boolKeys[k]:
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return v
}

// isSpecial reports values ParseFloat takes that JSON has no number for.
func isSpecial(v string) bool {
	v = strings.ToLower(strings.TrimLeft(v, "+-"))
	return strings.HasPrefix(v, "inf") || v == "nan" || strings.ContainsAny(v, "xp_")
}
