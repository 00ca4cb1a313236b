package backup

import (
	"hash"
)

// asyncHash hashes, in its own goroutine and in order, what is written to
// it: the whole-stream digest then costs the chunker's goroutine a copy,
// not a SHA-256 pass, so reading and cutting the stream go faster.
type asyncHash struct {
	h    hash.Hash
	ch   chan []byte
	free chan []byte
	done chan struct{}
}

// asyncDepth bounds the blocks waiting to be hashed (the chunker reads in
// blocks of up to 512 KiB), and so the memory this takes.
const asyncDepth = 8

func newAsyncHash(h hash.Hash) *asyncHash {
	a := &asyncHash{h: h, ch: make(chan []byte, asyncDepth), free: make(chan []byte, asyncDepth+1), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(b)
			select {
			case a.free <- b[:0]:
			default:
			}
		}
	}()
	return a
}

// Write queues a copy of p; it never fails.
func (a *asyncHash) Write(p []byte) (int, error) {
	var b []byte
	select {
	case b = <-a.free:
	default:
	}
	a.ch <- append(b, p...)
	return len(p), nil
}

// Sum waits for everything written to be hashed and appends the digest.
// The hash takes no writes after Sum.
func (a *asyncHash) Sum(dst []byte) []byte {
	close(a.ch)
	<-a.done
	return a.h.Sum(dst)
}

// Stop ends the hashing goroutine without a result (the backup failed).
func (a *asyncHash) Stop() {
	select {
	case <-a.done:
	default:
		close(a.ch)
		<-a.done
	}
}
