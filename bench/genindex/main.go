// Command genindex adds synthetic index objects to a repository: real,
// authenticated index objects (sealed with the writer key like a backup's)
// that list random chunk ids in packs that do not exist. It makes a
// repository of millions of indexed chunks in seconds, for measuring what
// opening the index costs (bench/index-curve.sh). The chunks cannot be
// restored and `coffer check` reports the packs missing: use it only on a
// repository made for the measurement.
//
//	go run ./bench/genindex -repo DIR -writer-key FILE -chunks 1000000
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage/local"
)

func main() {
	repo := flag.String("repo", "", "repository directory")
	keyFile := flag.String("writer-key", "", "writer key file")
	chunks := flag.Int("chunks", 1_000_000, "chunks to index")
	perPack := flag.Int("per-pack", 1000, "chunks per pack (16 MiB packs of 16 KiB chunks)")
	perObject := flag.Int("packs-per-object", 64, "packs per index object (a backup writes one every 64 packs)")
	flag.Parse()
	if *repo == "" || *keyFile == "" {
		log.Fatal("genindex: -repo and -writer-key are required")
	}
	ctx := context.Background()
	b, err := os.ReadFile(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	wk, err := repository.ParseWriterKey(b, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	be, err := local.Open(*repo, false)
	if err != nil {
		log.Fatal(err)
	}
	r, err := repository.OpenWriter(ctx, be, wk)
	if err != nil {
		log.Fatal(err)
	}
	left, objects := *chunks, 0
	for left > 0 {
		var packs []repository.PackEntry
		for p := 0; p < *perObject && left > 0; p++ {
			e := repository.PackEntry{Size: 16 << 20, Plain: 16 << 20}
			rand.Read(e.ID[:])
			var off uint32
			for range min(*perPack, left) {
				bl := repository.Blob{Off: off, Len: 8000, Raw: 16384}
				rand.Read(bl.ID[:])
				off += bl.Len
				e.Blobs = append(e.Blobs, bl)
			}
			left -= len(e.Blobs)
			packs = append(packs, e)
		}
		if _, err := r.SaveIndex(ctx, &repository.IndexFile{Packs: packs}); err != nil {
			log.Fatal(err)
		}
		objects++
	}
	fmt.Fprintf(os.Stderr, "genindex: %d synthetic chunks in %d index objects\n", *chunks, objects)
}
