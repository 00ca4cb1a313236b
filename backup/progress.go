package backup

import (
	"sync"
	"time"
)

// reportProgress calls fn periodically until the returned stop is called,
// and once more at the end.
func (p *pipeline) reportProgress(fn func(Progress)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn(p.progress())
			case <-done:
				fn(p.progress())
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (p *pipeline) progress() Progress {
	return Progress{
		BytesRead: p.read.Load(), BytesNew: p.bytesNew.Load(), BytesStored: p.stored.Load(),
		Chunks: p.chunks.Load(), ChunksNew: p.chunksNew.Load(),
	}
}
