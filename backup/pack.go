package backup

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coffer-backup/coffer/repository"
)

type finishedPack struct {
	entry repository.PackEntry
	buf   *bytes.Buffer // holds the ciphertext; returned to its free list once stored
}

// pack puts results in stream order and fills packs with the new chunks.
func (p *pipeline) pack(ctx context.Context, results <-chan chunkResult, out chan<- finishedPack, lists chan<- *repository.PendingList) error {
	size := p.repo.Config().PackSize
	var pw *repository.PackWriter
	var buf *bytes.Buffer
	flush := func() error {
		if pw == nil || pw.Count() == 0 {
			return nil
		}
		e, _, err := pw.Finish()
		if err != nil {
			return err
		}
		pw = nil
		select {
		case out <- finishedPack{entry: e, buf: buf}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Results come in the order the workers finish them: ids wait here
	// until those before them came, at most cap(p.order).
	early := map[int]repository.ID{}
	next := 0
	for r := range results {
		early[r.seq] = r.id
		for id, ok := early[next]; ok; id, ok = early[next] {
			delete(early, next)
			next++
			<-p.order
			if err := sendList(ctx, lists, p.lists.Add(id)); err != nil {
				return err
			}
		}
		p.chunks.Add(1)
		if r.compressed == nil {
			if err := p.noteReused(r.id); err != nil {
				return err
			}
			continue
		}
		if pw == nil {
			var err error
			buf = p.packBufs.get()
			if pw, err = p.repo.NewPackWriter(buf, size); err != nil {
				return err
			}
		}
		if err := pw.Add(r.id, *r.compressed, r.raw); err != nil {
			return err
		}
		p.zbufs.put(r.compressed)
		p.chunksNew.Add(1)
		p.bytesNew.Add(int64(r.raw))
		if pw.Plain() >= int64(size) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(early) > 0 {
		return fmt.Errorf("backup: %d chunks came after a chunk that never did", len(early))
	}
	if err := sendList(ctx, lists, p.lists.Finish()); err != nil {
		return err
	}
	return flush()
}

// sendList hands a chunk list to store, if any, to saveLists.
func sendList(ctx context.Context, lists chan<- *repository.PendingList, l *repository.PendingList) error {
	if l == nil {
		return nil
	}
	select {
	case lists <- l:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saveLists stores the chunk lists the packer ends, in order, beside the
// pipeline: a slow put holds up the stream only once two are waiting.
func (p *pipeline) saveLists(ctx context.Context, lists <-chan *repository.PendingList) error {
	for l := range lists {
		n, err := p.repo.SaveChunkList(ctx, l)
		if err != nil {
			return err
		}
		p.stored.Add(n)
	}
	return nil
}

// noteReused records, under Object Lock, the pack of a chunk the stream
// reuses, whose retention the backup extends before its snapshot.
func (p *pipeline) noteReused(id repository.ID) error {
	if p.reused == nil {
		return nil
	}
	pk, _, ok, err := p.idx.Lookup(id)
	if ok {
		p.reused[pk.ID] = true
	}
	return err
}

// indexEvery is how many packs a backup stores before it writes an index
// object for them, so a backup killed late leaves packs the next one reuses.
const indexEvery = 64

type uploader struct {
	repo          *repository.Repo
	stored, count *atomic.Int64
	free          *freeList[*bytes.Buffer]

	// done is told of each pack stored, before its index object exists.
	done func(repository.PackEntry) error

	// pending are the stored packs no index object lists yet: at most
	// indexEvery of them.
	mu      sync.Mutex
	pending []repository.PackEntry
}

func newUploader(repo *repository.Repo, stored, count *atomic.Int64, free *freeList[*bytes.Buffer], done func(repository.PackEntry) error) *uploader {
	return &uploader{repo: repo, stored: stored, count: count, free: free, done: done}
}

func (u *uploader) upload(ctx context.Context, packs <-chan finishedPack) error {
	for fp := range packs {
		if err := u.repo.SavePack(ctx, fp.entry, fp.buf.Bytes()); err != nil {
			return err
		}
		u.stored.Add(int64(fp.buf.Len()))
		u.free.put(fp.buf)
		u.count.Add(1)
		if err := u.done(fp.entry); err != nil {
			return err
		}
		u.mu.Lock()
		u.pending = append(u.pending, fp.entry)
		var batch []repository.PackEntry
		if len(u.pending) >= indexEvery {
			batch, u.pending = u.pending, nil
		}
		u.mu.Unlock()
		if batch != nil {
			if err := u.saveIndex(ctx, batch); err != nil {
				return err
			}
		}
	}
	return nil
}

func (u *uploader) flushIndex(ctx context.Context) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = nil
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	return u.saveIndex(ctx, batch)
}

func (u *uploader) saveIndex(ctx context.Context, batch []repository.PackEntry) error {
	_, err := u.repo.SaveIndex(ctx, &repository.IndexFile{Packs: batch})
	return err
}
