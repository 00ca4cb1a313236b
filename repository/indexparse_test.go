package repository

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomIndexFile(rng *rand.Rand) *IndexFile {
	f := &IndexFile{Version: 1}
	id := func() ID {
		var x ID
		for i := range x {
			x[i] = byte(rng.IntN(256))
		}
		return x
	}
	for range rng.IntN(3) {
		f.Supersedes = append(f.Supersedes, id())
	}
	for range rng.IntN(4) {
		e := PackEntry{ID: id(), Size: rng.Int64N(1 << 40), Plain: rng.Int64N(1 << 40), Gen: rng.IntN(3)}
		for range rng.IntN(5) {
			e.Blobs = append(e.Blobs, Blob{ID: id(), Off: rng.Uint32(), Len: rng.Uint32N(10), Raw: rng.Uint32()})
		}
		f.Packs = append(f.Packs, e)
	}
	return f
}

func parseCanonical(b []byte) (*IndexFile, error) {
	f := &IndexFile{}
	var err error
	f.Version, f.Supersedes, err = parseIndexCanonical(bufio.NewReader(bytes.NewReader(b)), func(e PackEntry) error {
		f.Packs = append(f.Packs, e)
		return nil
	})
	return f, err
}

// TestCanonicalParserReadsWhatCofferWrites: every index object json.Marshal
// writes is read by the fast parser as encoding/json reads it.
func TestCanonicalParserReadsWhatCofferWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		f := randomIndexFile(rng)
		b, _ := json.Marshal(f)
		got, err := parseCanonical(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var want IndexFile
		json.Unmarshal(b, &want)
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", b, got, want)
		}
	}
}

// FuzzIndexCanonical: whatever the fast parser accepts, encoding/json
// reads the same; it never panics.
func FuzzIndexCanonical(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		b, _ := json.Marshal(randomIndexFile(rng))
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"packs":null}`))
	f.Add([]byte(`{"version":01,"packs":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseCanonical(b)
		if err != nil {
			return
		}
		var want IndexFile
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("the fast parser accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
		}
	})
}
