package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/restore"
)

func bytesStr(n int64) string { return humanize.IBytes(uint64(n)) }

// progress draws one status line on a terminal, and nothing otherwise.
// It ends with its final state on a line of its own, so that what the
// command prints next starts on a fresh line.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	verb  string
	start time.Time
	last  time.Time
	cur   string // the latest state, drawn or not
	shown bool   // a line is on the terminal
	ended bool   // the final line was drawn
}

func newProgress(f *os.File, verb string) *progress {
	return &progress{w: f, on: isTerminal(f), verb: verb, start: time.Now()}
}

func (p *progress) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = s
	if !p.on || p.ended || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(p.w, "\r\x1b[K%s", s)
}

// end draws the final state and leaves it on its line.
func (p *progress) end() {
	if !p.on || p.ended || p.cur == "" {
		return
	}
	p.ended = true
	fmt.Fprintf(p.w, "\r\x1b[K%s\n", p.cur)
}

func (p *progress) rate(n int64) string {
	secs := time.Since(p.start).Seconds()
	if secs <= 0 {
		return "-"
	}
	return humanize.IBytes(uint64(float64(n)/secs)) + "/s"
}

func (p *progress) backup(b backup.Progress) {
	dedup := 0.0
	if b.BytesRead > 0 {
		dedup = 100 * (1 - float64(b.BytesNew)/float64(b.BytesRead))
	}
	p.line(fmt.Sprintf("%s: %s read (%s), %.0f%% already stored, %s uploaded",
		p.verb, bytesStr(b.BytesRead), p.rate(b.BytesRead), dedup, bytesStr(b.BytesStored)))
}

func (p *progress) restore(r restore.Progress) {
	pct := 0.0
	if r.BytesTotal > 0 {
		pct = 100 * float64(r.BytesWritten) / float64(r.BytesTotal)
	}
	p.line(fmt.Sprintf("%s: %s of %s (%.0f%%, %s)", p.verb, bytesStr(r.BytesWritten), bytesStr(r.BytesTotal), pct, p.rate(r.BytesWritten)))
	if r.BytesTotal > 0 && r.BytesWritten >= r.BytesTotal {
		// The stream is complete: a load into a database still runs,
		// and prints its result below.
		p.mu.Lock()
		p.end()
		p.mu.Unlock()
	}
}

func (p *progress) check(done, total int) {
	p.line(fmt.Sprintf("%s: %d of %d packs read", p.verb, done, total))
}

// done ends the progress line, if one was drawn, with the final state.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		p.end()
	}
}
