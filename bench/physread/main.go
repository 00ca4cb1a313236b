// Command physread reads a physical base backup's stream from the server
// at its argument and discards it, printing bytes and seconds: the speed
// of coffer's BASE_BACKUP reader alone (bench/physical-source.sh).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/coffer-backup/coffer/engine/postgres"
)

func main() {
	ctx := context.Background()
	if path := os.Getenv("COFFER_CPUPROFILE"); path != "" {
		f, _ := os.Create(path)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	p, err := postgres.OpenPhysical(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer p.Close()
	n, err := io.CopyBuffer(io.Discard, p, make([]byte, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p.Close()
	fmt.Printf("%d bytes in %.1f s\n", n, time.Since(start).Seconds())
}
