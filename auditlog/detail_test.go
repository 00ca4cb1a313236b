package auditlog

import (
	"reflect"
	"testing"
)

func TestDetailTypes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]string
		want map[string]any
	}{
		{"backup before the rename", map[string]string{"engine": "postgres", "bytes_read": "30527929", "bytes_stored": "1200"},
			map[string]any{"engine": "postgres", "size_bytes": int64(30527929), "stored_bytes": int64(1200)}},
		{"backup now", map[string]string{"size_bytes": "7", "stored_bytes": "3"},
			map[string]any{"size_bytes": int64(7), "stored_bytes": int64(3)}},
		{"drill before the rename", map[string]string{"rto": "2.236s", "verdict": "passed", "drill": "20261202"},
			map[string]any{"rto_seconds": 2.236, "verdict": "passed", "drill": "20261202"}},
		{"drill now", map[string]string{"rto_seconds": "0.5"}, map[string]any{"rto_seconds": 0.5}},
		{"prune", map[string]string{"deleted_packs": "2", "deleted_bytes": "99", "temp_files_removed": "1"},
			map[string]any{"deleted_packs": int64(2), "deleted_bytes": int64(99), "temp_files_removed": int64(1)}},
		{"restore choices", map[string]string{"verified": "true", "clean": "true", "to": "sqlite:/x"},
			map[string]any{"verified": true, "clean": true, "to": "sqlite:/x"}},
		{"foreign values stay strings", map[string]string{"deleted_bytes": "many", "rto": "soon", "rto_seconds": "NaN", "verified": "maybe"},
			map[string]any{"deleted_bytes": "many", "rto": "soon", "rto_seconds": "NaN", "verified": "maybe"}},
		{"an old rto that is no duration", map[string]string{"rto": "soon"}, map[string]any{"rto_seconds": "soon"}},
		{"a target named like a number stays a string", map[string]string{"to": "2024", "operators": "1"},
			map[string]any{"to": "2024", "operators": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detail(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Detail(%v) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}
