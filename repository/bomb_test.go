package repository

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// bombFrame builds a zstd frame by hand, as an attacker would: RLE blocks
// of 'x' adding up to total bytes. With declared >= 0 the frame is single
// segment and declares that content size (which may be a lie); otherwise
// it declares no size and a 1 MiB window.
func bombFrame(declared, total int64) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	block := int64(128 << 10)
	if declared >= 0 {
		b = append(b, 0xe0) // FCS field of 8 bytes, single segment
		b = binary.LittleEndian.AppendUint64(b, uint64(declared))
		block = min(block, max(declared, 1<<10))
	} else {
		b = append(b, 0x00, 10<<3) // no FCS; window 1 KiB << 10
	}
	for left := total; left > 0; {
		n := min(block, left)
		left -= n
		h := uint32(n)<<3 | 1<<1 // RLE
		if left == 0 {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 'x')
	}
	return b
}

func TestBombFrameIsValidZstd(t *testing.T) {
	for _, declared := range []int64{-1, 300 << 10} {
		got, err := decompressExact(nil, bombFrame(declared, 300<<10), -1, 1<<20)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("x"), 300<<10)) {
			t.Fatalf("declared %d: %d bytes, %v", declared, len(got), err)
		}
	}
}

func TestDecompressChunkBounds(t *testing.T) {
	honest := bytes.Repeat([]byte("row\t"), 10000)
	tests := []struct {
		name     string
		frame    []byte
		raw, max int
		ok       bool
	}{
		{"honest", Compress(nil, honest), len(honest), 256 << 10, true},
		{"honest tiny v1 frame without size", compressMeta(nil, []byte("tiny")), 4, 256 << 10, true},
		{"declares more than the index", bombFrame(16<<30, 16<<30), 64 << 10, 256 << 10, false},
		{"index above the chunker max", bombFrame(16<<30, 16<<30), 1 << 30, 256 << 10, false},
		{"lies: declares 64 KiB, holds 16 GiB", bombFrame(64<<10, 16<<30), 64 << 10, 256 << 10, false},
		{"declares nothing, holds 16 GiB", bombFrame(-1, 16<<30), 64 << 10, 256 << 10, false},
		{"holds less than declared", bombFrame(64<<10, 1<<10), 64 << 10, 256 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecompressChunk(nil, tt.frame, tt.raw, tt.max)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if len(got) > tt.raw {
				t.Fatalf("returned %d bytes, more than the index's %d", len(got), tt.raw)
			}
		})
	}
}

func TestDecompressMetaBounds(t *testing.T) {
	// A snapshot of one chunk repeated: it compresses far beyond the ratio,
	// so the writer stores it uncompressed and readers accept it.
	for _, honest := range [][]byte{nil, []byte("{}"), bytes.Repeat([]byte(`"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",`), 200000)} {
		frame := compressMeta(nil, honest)
		if got, err := decompressMeta(frame); err != nil || !bytes.Equal(got, honest) {
			t.Fatalf("honest metadata of %d bytes (frame of %d): %v", len(honest), len(frame), err)
		}
	}
	for name, frame := range map[string][]byte{
		"declares 16 GiB":               bombFrame(16<<30, 16<<30),
		"declares nothing, holds 1 GiB": bombFrame(-1, 1<<30),
		"declares 16 MiB, holds it":     bombFrame(16<<20, 16<<20),
		"declares 1 MiB, holds 1 GiB":   bombFrame(1<<20, 1<<30),
	} {
		_, err := decompressMeta(frame)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if name == "declares 16 GiB" && !errors.Is(err, errBound) {
			t.Errorf("%s: %v, want the bound named", name, err)
		}
	}
}

func FuzzDecompress(f *testing.F) {
	f.Add(Compress(nil, bytes.Repeat([]byte("ab"), 5000)), 10000)
	f.Add(compressMeta(nil, []byte("x")), 1)
	f.Add(bombFrame(64<<10, 1<<30), 64<<10)
	f.Add(bombFrame(-1, 1<<30), 64<<10)
	f.Add(bombFrame(1<<40, 1<<20), 1<<20)
	f.Fuzz(func(t *testing.T, frame []byte, raw int) {
		got, err := DecompressChunk(nil, frame, raw, 256<<10)
		if err == nil && len(got) != raw {
			t.Fatalf("returned %d bytes, want %d", len(got), raw)
		}
		if got, err := decompressMeta(frame); err == nil && int64(len(got)) > metaLimit(len(frame)) {
			t.Fatalf("metadata of %d bytes from %d", len(got), len(frame))
		}
	})
}
