package backup_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"testing"

	"filippo.io/age"
	"github.com/restic/chunker"

	"github.com/coffer-backup/coffer/internal/synth"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// The pipeline's stages, each alone, on synthetic customer rows; compare
// with BenchmarkBackup (all stages in parallel, into a local directory).

const benchSize = 64 << 20

var benchData = lazyData()

func lazyData() func() []byte {
	var b []byte
	return func() []byte {
		if b == nil {
			b = synth.Bytes(42, benchSize)
		}
		return b
	}
}

func BenchmarkStageChunk(b *testing.B) {
	data := benchData()
	d := repository.DefaultChunker
	buf := make([]byte, d.Max)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c := chunker.New(bytes.NewReader(data), chunker.Pol(0x3DA3358B4DC173), chunker.WithBoundaries(d.Min, d.Max), chunker.WithAverageBits(d.AvgBits))
		for {
			if _, err := c.Next(buf); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkStageHash(b *testing.B) {
	data := benchData()[:1<<20]
	key := make([]byte, 32)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := hmac.New(sha256.New, key)
		h.Write(data)
		h.Sum(nil)
	}
}

func BenchmarkStageCompress(b *testing.B) {
	data := benchData()[:1<<20]
	var out []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		out = repository.Compress(out[:0], data)
	}
	b.ReportMetric(float64(len(data))/float64(len(out)), "ratio")
}

func BenchmarkStageEncrypt(b *testing.B) {
	id, _ := age.GenerateX25519Identity()
	data := benchData()[:16<<20]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, _ := age.Encrypt(io.Discard, id.Recipient())
		w.Write(data)
		w.Close()
	}
}

func BenchmarkBackup(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		r := localRepo(b)
		b.StartTimer()
		run(b, r.Writer, bytes.NewReader(data), "bench")
	}
}

func BenchmarkRestore(b *testing.B) {
	data := benchData()
	r := localRepo(b)
	sum := run(b, r.Writer, bytes.NewReader(data), "bench")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := restore.Run(context.Background(), r.Restorer, sum.Snapshot, io.Discard, restore.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
