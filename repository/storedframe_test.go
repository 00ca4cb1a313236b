package repository

import (
	"bytes"
	"testing"
)

// TestStoredFrameLarge: metadata that compresses better than readers
// allow (a snapshot whose chunk list repeats one chunk, say) is written
// as a stored frame; one larger than a zstd window must read back too,
// or a snapshot that said "saved" would not restore.
func TestStoredFrameLarge(t *testing.T) {
	for _, n := range []int{1 << 20, 20 << 20, 40 << 20} {
		src := bytes.Repeat([]byte(`"8b6c0f1e",`), n/11)
		z := compressMeta(nil, src)
		out, err := decompressMeta(z)
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("%d bytes, %d stored: read back %d bytes, %v", len(src), len(z), len(out), err)
		}
	}
}
