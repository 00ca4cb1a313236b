// Command gendump writes synthetic customer rows, for benchmarks: the same
// seed and size give the same bytes, and -edit changes a fraction of them
// in place as a day of updates would.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/internal/synth"
)

func main() {
	size := flag.String("size", "2G", "bytes to write (suffix K, M, G)")
	seed := flag.Uint64("seed", 1, "seed of the rows")
	edit := flag.Float64("edit", 0, "fraction of bytes to change in 20 scattered places (needs the data in memory)")
	flag.Parse()
	n, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendump:", err)
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if *edit > 0 {
		b := synth.Bytes(*seed, n)
		synth.Edit(b, *seed+1000, 20, *edit)
		_, err = w.Write(b)
	} else {
		_, err = io.Copy(w, synth.Dump(*seed, n))
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendump:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: give bytes with an optional K, M or G suffix", s)
	}
	return v * mult, nil
}
