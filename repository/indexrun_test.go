package repository

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestIndexRunsAgreeWithAMap: chunks added in batches that spill into
// sorted runs (and runs merged) are found exactly as a map finds them;
// absent ids are not found; a chunk whose first copy is in a dropped pack
// is found in its other copy; ForEachBlob reports each chunk once.
func TestIndexRunsAgreeWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func() ID {
		var x ID
		for i := range x {
			x[i] = byte(rng.IntN(256))
		}
		return x
	}
	ix := NewIndex()
	type want struct {
		pack ID
		b    Blob
	}
	first := map[ID]want{}
	var all []ID
	var dupPack ID // the pack holding the first copies of dup
	var dup []ID   // chunks stored in two packs
	for p := range 3 * memSpill / 500 {
		e := PackEntry{ID: id(), Size: int64(p), Plain: int64(p) * 2}
		for i := range 500 {
			b := Blob{ID: id(), Off: uint32(i), Len: uint32(p), Raw: uint32(i * p)}
			if p > 0 && i < 5 { // a copy of a chunk of the first pack
				b.ID = dup[i]
			}
			if p == 0 && i < 5 {
				dup = append(dup, b.ID)
			}
			if _, ok := first[b.ID]; !ok {
				first[b.ID] = want{e.ID, b}
				all = append(all, b.ID)
			}
			e.Blobs = append(e.Blobs, b)
		}
		if p == 0 {
			dupPack = e.ID
		}
		if err := ix.Add([]PackEntry{e}); err != nil {
			t.Fatal(err)
		}
	}
	if len(ix.session) == 0 {
		t.Fatal("nothing spilled: the test does not exercise runs")
	}
	for _, c := range all {
		p, b, ok, err := ix.Lookup(c)
		if err != nil || !ok {
			t.Fatalf("chunk %s: %v %v", c.Short(), ok, err)
		}
		w := first[c]
		if slicesContain(dup, c) {
			continue // either copy is right
		}
		if p.ID != w.pack || b != w.b {
			t.Fatalf("chunk %s: got %v %+v, want %v %+v", c.Short(), p.ID.Short(), b, w.pack.Short(), w.b)
		}
	}
	for range 1000 {
		if ok, err := ix.Has(id()); ok || err != nil {
			t.Fatalf("an absent chunk: %v %v", ok, err)
		}
	}
	n, err := ix.Len()
	if err != nil || n != len(all) {
		t.Fatalf("Len = %d, %v; want %d", n, err, len(all))
	}
	ix.dropPacks(map[ID]bool{dupPack: true})
	for _, c := range dup {
		p, _, ok, err := ix.Lookup(c)
		if err != nil || !ok || p.ID == dupPack {
			t.Fatalf("a chunk of a dropped pack with another copy: %v %v %v", p.ID.Short(), ok, err)
		}
	}
	for _, c := range all {
		if first[c].pack == dupPack && !slicesContain(dup, c) {
			if ok, err := ix.Has(c); ok || err != nil {
				t.Fatalf("a chunk only in a dropped pack: found %v, %v", ok, err)
			}
		}
	}
	seen := map[ID]bool{}
	if err := ix.ForEachBlob(func(p PackInfo, b Blob) {
		if seen[b.ID] || p.ID == dupPack {
			t.Fatalf("ForEachBlob: %s twice or in a dropped pack", b.ID.Short())
		}
		seen[b.ID] = true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(all)-(500-5) {
		t.Fatalf("ForEachBlob reported %d chunks, want %d", len(seen), len(all)-(500-5))
	}
}

func slicesContain(ids []ID, id ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestRunBlockTampered: a run whose block was altered answers with an
// error, never with a record.
func TestRunBlockTampered(t *testing.T) {
	s := memoryStore()
	var recs []record
	for i := range 1000 {
		var id ID
		id[0], id[1], id[2] = byte(i>>8), byte(i), 7
		recs = append(recs, record{id: id, pack: 1, off: uint32(i)})
	}
	ru, err := s.sortedRun(recs, true)
	if err != nil {
		t.Fatal(err)
	}
	// Swap in an altered copy of the bytes: block 3's first record now
	// names another chunk.
	data := make([]byte, ru.blocks()*blockSize)
	ru.r.ReadAt(data, 0)
	target := recs[3*recordsPerBlock].id
	forged := target
	forged[5] = 0xff
	copy(data[3*blockSize:], forged[:])
	ru.r = bytes.NewReader(data)
	found := false
	if err := ru.find(forged, func(record) bool { found = true; return true }); err == nil || found {
		t.Fatalf("a forged record: found %v, error %v", found, err)
	}
	if err := ru.find(recs[0].id, func(record) bool { return true }); err != nil {
		t.Fatalf("an untouched block: %v", err)
	}
}
