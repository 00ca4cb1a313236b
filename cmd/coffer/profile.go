package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole run to the file named by
// COFFER_CPUPROFILE, and a heap profile of what is still live at its end to
// the file named by COFFER_MEMPROFILE, when they are set (for measuring
// coffer: off by default). The returned function stops them.
func startProfile() func() {
	stopCPU := func() {}
	if path := os.Getenv("COFFER_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "coffer: COFFER_CPUPROFILE:", err)
		} else {
			stopCPU = func() {
				pprof.StopCPUProfile()
				f.Close()
			}
		}
	}
	return func() {
		stopCPU()
		if path := os.Getenv("COFFER_MEMPROFILE"); path != "" {
			if err := writeHeapProfile(path); err != nil {
				fmt.Fprintln(os.Stderr, "coffer: COFFER_MEMPROFILE:", err)
			}
		}
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// streamingGC lowers the garbage collector's headroom for backups, which
// stream a database through fixed, pooled buffers: their live heap is
// bounded by the pipeline (about 60-90 MB) and they allocate little, so
// collecting at 25 % growth instead of Go's 100 % costs no measurable CPU
// (90 collections in a 50 GB backup) and keeps the peak resident set near
// the live heap instead of twice it (docs/performance.md). Restores keep
// Go's default: there it cost 10 % of the time for memory they do not need
// (75 against 108 MiB). GOGC, when set, wins.
func streamingGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
}
