package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// Lock timing: a running backup refreshes its lock every LockRefresh; a
// lock whose object the storage last modified more than LockStale ago (by
// the storage's clock) was left by a process that died. A backup that
// could not refresh its lock for LockStale/2 stops (docs/format.md).
const (
	LockRefresh = 5 * time.Minute
	LockStale   = 30 * time.Minute
)

// compatRefreshed is written as a lock's "refreshed": earlier versions of
// coffer judged a lock stale by comparing it with their own clock, and a
// lock refreshed in place keeps its content, so a date they never reach
// keeps them from removing a live lock. Newer versions ignore the field.
var compatRefreshed = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// LockInfo is the content of a `locks/ID` object.
type LockInfo struct {
	versioned
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Refreshed time.Time `json:"refreshed"`
	Honours   []ID      `json:"honours"` // prune markers this backup does not deduplicate against
	// Machine (the host name, whatever Host says), BootID, PIDNamespace
	// and StartTicks identify the process (Linux), so that a lock whose
	// process died is known dead at once on that machine even if its PID
	// was reused.
	Machine      string `json:"machine,omitempty"`
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_namespace,omitempty"`
	StartTicks   uint64 `json:"start_ticks,omitempty"`

	// Problem says why a stored lock could not be read (never stored).
	Problem string `json:"-"`
}

// LockTiming sets how often a backup refreshes its lock and after how
// long, by storage time, a lock is stale. Zero fields take LockRefresh and
// LockStale; every process using a repository must agree on Stale.
type LockTiming struct {
	Refresh, Stale time.Duration
}

func (t LockTiming) withDefaults() LockTiming {
	if t.Refresh <= 0 {
		t.Refresh = LockRefresh
	}
	if t.Stale <= 0 {
		t.Stale = LockStale
	}
	return t
}

// LockOptions describe the holder of a backup lock.
type LockOptions struct {
	Host   string
	PID    int              // default os.Getpid()
	Now    func() time.Time // the clock; only intervals of it are used (default time.Now)
	Timing LockTiming
}

// Lock is a backup's lock, held until Release. It is lost when it could
// not be refreshed for Timing.Stale/2: the holder must then stop.
type Lock struct {
	r      *Repo
	now    func() time.Time
	timing LockTiming

	mu     sync.Mutex
	id     ID
	plain  []byte // the lock's content; a refresh stores it again in place
	info   LockInfo
	lastOK time.Time // when the last refresh that succeeded began
	err    error     // why the lock was lost
	lost   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

// Markers returns the prune markers the lock holder must honour.
func (l *Lock) Markers() []ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.info.Honours)
}

// Name is the lock's object name.
func (l *Lock) Name() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "locks/" + l.id.String()
}

// Lost is closed when the lock is lost; Err then says why.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Err returns why the lock was lost, or nil.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// AcquireLock writes a backup lock naming the prune markers in force, as
// docs/format.md describes, and keeps it fresh until Release.
func (r *Repo) AcquireLock(ctx context.Context, opts LockOptions) (*Lock, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	before, err := r.ListIDs(ctx, "prune")
	if err != nil {
		return nil, err
	}
	t := opts.Now()
	l := &Lock{r: r, now: opts.Now, timing: opts.Timing.withDefaults(), lastOK: t,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.info = LockInfo{versioned: versioned{FormatVersion}, Host: opts.Host, PID: opts.PID,
		Started: t.UTC(), Refreshed: compatRefreshed, Honours: before}
	if id, ok := ownIdentity(opts.PID); ok {
		l.info.Machine, l.info.BootID, l.info.PIDNamespace, l.info.StartTicks = id.Machine, id.BootID, id.Namespace, id.Start
	}
	if err := l.store(ctx); err != nil {
		return nil, fmt.Errorf("write backup lock: %w", err)
	}
	after, err := r.ListIDs(ctx, "prune")
	if err != nil {
		l.remove(ctx)
		return nil, err
	}
	if !sameIDs(after, before) {
		// A marker appeared meanwhile: honour it too, under a new name.
		old := l.id
		l.info.Honours = after
		if err := l.store(ctx); err != nil {
			l.r.be.Delete(ctx, "locks/"+old.String())
			return nil, fmt.Errorf("write backup lock: %w", err)
		}
		l.r.be.Delete(ctx, "locks/"+old.String())
	}
	go l.keepFresh()
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

// put seals plain as a lock object. A new lock never replaces an object
// (putSealed). A refresh is the one put in the repository that does: it
// stores the same content again under the same name, so that the
// storage's modification time of the object says when the lock was last
// refreshed (docs/format.md, "Locks and prune markers"); the policies
// allow plain puts on locks/* for it.
func (l *Lock) put(ctx context.Context, plain []byte, refresh bool) (ID, error) {
	id, ct, err := l.r.wk.sealMeta("lock", plain)
	if err != nil {
		return ID{}, err
	}
	name := "locks/" + id.String()
	if refresh {
		err = l.r.be.Put(ctx, name, ct, storage.PutOptions{})
	} else {
		err = l.r.putSealed(ctx, "lock", name, id, ct, storage.PutOptions{})
	}
	if err != nil {
		return ID{}, fmt.Errorf("save lock: %w", err)
	}
	return id, nil
}

// store seals l.info as a new lock object.
func (l *Lock) store(ctx context.Context) error {
	plain, err := json.Marshal(&l.info)
	if err != nil {
		return err
	}
	id, err := l.put(ctx, plain, false)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.id, l.plain = id, plain
	l.mu.Unlock()
	return nil
}

// refresh stores the lock's content again under the same name (the same
// content has the same id), so the storage dates the object anew: that
// date, not any host's clock, is what prune judges.
func (l *Lock) refresh() {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	began, prev, plain := l.now(), l.lastOK, l.plain
	deadline := prev.Add(l.timing.Stale / 2)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), deadline.Sub(began))
	name := "locks/" + l.id.String()
	// A lock removed by someone else is not put back: whoever removed it
	// took this backup for dead.
	_, err := l.r.be.Stat(ctx, name)
	if isNotFound(err) {
		cancel()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.removedLocked(name)
		return
	}
	if err == nil {
		_, err = l.put(ctx, plain, true)
	}
	cancel()
	ended := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case ended.Sub(prev) > l.timing.Stale/2:
		// Even a success this late comes after a gap in which a prune
		// could have judged the lock stale.
		l.loseLocked(err)
	case err == nil:
		l.lastOK = began
	}
}

// loseLocked marks the lock lost (once); l.mu is held.
func (l *Lock) loseLocked(cause error) {
	if l.err != nil {
		return
	}
	msg := fmt.Sprintf("the backup lock locks/%s in %s could not be refreshed for %s", l.id, l.r.be.Location(), l.timing.Stale/2)
	if cause != nil {
		msg += fmt.Sprintf(" (last error: %v)", cause)
	}
	l.err = errors.New(msg + "; a prune may now take this backup for dead and delete packs it reuses, so it stops and writes no snapshot: make locks/ writable and run the backup again")
	close(l.lost)
}

// removedLocked marks the lock lost because it was removed; l.mu is held.
func (l *Lock) removedLocked(name string) {
	if l.err != nil {
		return
	}
	l.err = fmt.Errorf("the backup lock %s in %s was removed (by `coffer unlock --remove-all`, or by a prune that took this backup for dead): packs it reuses may be deleted, so it writes no snapshot; run the backup again", name, l.r.be.Location())
	close(l.lost)
}

func (l *Lock) keepFresh() {
	defer close(l.done)
	retry := max(l.timing.Refresh/10, time.Millisecond)
	wait := l.timing.Refresh
	for {
		l.mu.Lock()
		lost := l.err != nil
		giveUp := l.lastOK.Add(l.timing.Stale / 2).Sub(l.now())
		l.mu.Unlock()
		if lost {
			return
		}
		if giveUp <= 0 {
			l.mu.Lock()
			l.loseLocked(nil)
			l.mu.Unlock()
			return
		}
		t := time.NewTimer(min(wait, giveUp))
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
		l.mu.Lock()
		due := l.now().Sub(l.lastOK) >= wait
		l.mu.Unlock()
		if !due {
			continue // woke to check the deadline
		}
		l.refresh()
		l.mu.Lock()
		ok := l.now().Sub(l.lastOK) < l.timing.Refresh
		l.mu.Unlock()
		if wait = l.timing.Refresh; !ok {
			wait = retry
		}
	}
}

// Confirm is called just before the holder writes what the lock protects
// (a snapshot). It fails if the lock is lost or was removed, and otherwise
// returns how long that write may take: while the holder writes within
// it, no prune can have judged the lock stale.
func (l *Lock) Confirm(ctx context.Context) (time.Duration, error) {
	if err := l.r.confirmKeys(ctx); err != nil {
		return 0, err
	}
	name := l.Name()
	_, err := l.r.be.Stat(ctx, name)
	if err != nil && !isNotFound(err) {
		return 0, fmt.Errorf("confirm the backup lock %s: %w", name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.removedLocked(name)
	}
	if l.now().Sub(l.lastOK) >= l.timing.Stale/2 {
		l.loseLocked(nil)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.lastOK.Add(l.timing.Stale * 2 / 3).Sub(l.now()), nil
}

func (l *Lock) remove(ctx context.Context) error {
	return l.r.be.Delete(ctx, l.Name())
}

// Release stops refreshing and deletes the lock.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	return l.remove(ctx)
}

// LockEntry is a stored lock and the storage's date of its object.
type LockEntry struct {
	ID       ID
	Info     *LockInfo
	Modified time.Time // last written, by the storage's clock
}

// Locks returns every lock. Locks that vanish while being read (released
// meanwhile) are skipped.
func (r *Repo) Locks(ctx context.Context) ([]LockEntry, error) {
	var names []storage.Info
	err := r.be.List(ctx, "locks/", func(fi storage.Info) error {
		names = append(names, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list locks/ in %s: %w", r.be.Location(), err)
	}
	var out []LockEntry
	for _, fi := range names {
		id, err := ParseID(fi.Name[len("locks/"):])
		if err != nil {
			continue // not ours
		}
		var li LockInfo
		if err := r.loadMeta(ctx, "lock", "locks", id, &li); err != nil {
			if isNotFound(err) {
				continue
			}
			// A lock that does not authenticate (damaged, forged, or of a
			// backup whose keys a rotation replaced) is kept as an unknown
			// live lock until it is stale by storage time: it might be a
			// damaged lock of a running backup.
			var ce *CorruptError
			if !errors.As(err, &ce) {
				return nil, err
			}
			li = LockInfo{Problem: ce.Reason}
		} else if err := li.check("locks/" + id.String()); err != nil {
			return nil, err
		}
		out = append(out, LockEntry{ID: id, Info: &li, Modified: fi.ModTime})
	}
	return out, nil
}
