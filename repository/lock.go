package repository

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Lock timing: a running backup refreshes its lock every LockRefresh; a
// lock older than LockStale was left by a process that died.
const (
	LockRefresh = 5 * time.Minute
	LockStale   = 30 * time.Minute
)

// LockInfo is the content of a `locks/ID` object.
type LockInfo struct {
	versioned
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Refreshed time.Time `json:"refreshed"`
	Honours   []ID      `json:"honours"` // prune markers this backup does not deduplicate against
}

// Stale reports whether the lock's process has not refreshed it in time.
func (l *LockInfo) Stale(now time.Time) bool { return now.Sub(l.Refreshed) > LockStale }

// Lock is a backup's lock, held until Release.
type Lock struct {
	r    *Repo
	mu   sync.Mutex
	id   ID
	info LockInfo
	stop chan struct{}
	done chan struct{}
}

// Markers returns the prune markers the lock holder must honour.
func (l *Lock) Markers() []ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.info.Honours)
}

// AcquireLock writes a backup lock naming the prune markers in force, as
// docs/format.md describes, and keeps it fresh until Release.
func (r *Repo) AcquireLock(ctx context.Context, host string, pid int, now func() time.Time) (*Lock, error) {
	before, err := r.ListIDs(ctx, "prune")
	if err != nil {
		return nil, err
	}
	t := now().UTC()
	l := &Lock{r: r, info: LockInfo{versioned: versioned{FormatVersion}, Host: host, PID: pid, Started: t, Refreshed: t, Honours: before},
		stop: make(chan struct{}), done: make(chan struct{})}
	if l.id, err = r.saveMeta(ctx, "lock", "locks", &l.info, false); err != nil {
		return nil, fmt.Errorf("write backup lock: %w", err)
	}
	after, err := r.ListIDs(ctx, "prune")
	if err != nil {
		l.remove(ctx)
		return nil, err
	}
	if len(after) != len(before) || !sameIDs(after, before) {
		l.info.Honours = after
		if err := l.rewrite(ctx, now); err != nil {
			return nil, err
		}
	}
	go l.keepFresh(now)
	return l, nil
}

func sameIDs(a, b []ID) bool {
	set := map[ID]bool{}
	for _, id := range a {
		set[id] = true
	}
	for _, id := range b {
		if !set[id] {
			return false
		}
	}
	return len(a) == len(b)
}

// rewrite stores the lock anew (its id changes with its content) and
// deletes the old object.
func (l *Lock) rewrite(ctx context.Context, now func() time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info.Refreshed = now().UTC()
	id, err := l.r.saveMeta(ctx, "lock", "locks", &l.info, false)
	if err != nil {
		return fmt.Errorf("refresh backup lock: %w", err)
	}
	old := l.id
	l.id = id
	if old != id { // the same content is the same object: keep it
		l.r.be.Delete(ctx, "locks/"+old.String())
	}
	return nil
}

func (l *Lock) keepFresh(now func() time.Time) {
	defer close(l.done)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			l.rewrite(ctx, now) // a failed refresh is retried next tick; the lock goes stale only after 30 min
			cancel()
		}
	}
}

func (l *Lock) remove(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.be.Delete(ctx, "locks/"+l.id.String())
}

// Release stops refreshing and deletes the lock.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	return l.remove(ctx)
}

// Locks returns every lock with its id. Locks that vanish while being read
// (released meanwhile) are skipped.
func (r *Repo) Locks(ctx context.Context) (map[ID]*LockInfo, error) {
	ids, err := r.ListIDs(ctx, "locks")
	if err != nil {
		return nil, err
	}
	out := map[ID]*LockInfo{}
	for _, id := range ids {
		var li LockInfo
		if err := r.loadMeta(ctx, "lock", "locks", id, &li); err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		if err := li.check("locks/" + id.String()); err != nil {
			return nil, err
		}
		out[id] = &li
	}
	return out, nil
}
