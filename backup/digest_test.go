package backup

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

func TestAsyncHashEqualsHash(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a := newAsyncHash(sha256.New())
	h := sha256.New()
	buf := make([]byte, 600<<10)
	for range 200 {
		p := buf[:r.IntN(len(buf))]
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		a.Write(p)
		h.Write(p)
	}
	if !bytes.Equal(a.Sum(nil), h.Sum(nil)) {
		t.Fatal("the asynchronous digest differs from the synchronous one")
	}
	a.Stop() // after Sum: a no-op

	b := newAsyncHash(sha256.New())
	b.Write([]byte("a backup that failed"))
	b.Stop() // without Sum: ends the goroutine
}
