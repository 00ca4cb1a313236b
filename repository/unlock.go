package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// Stale reports whether the lock's object was last written more than
// stale before now, both by the storage's clock.
func (e LockEntry) Stale(now time.Time, stale time.Duration) bool {
	return now.Sub(e.Modified) > stale
}

// Describe names the lock's holder for messages.
func (l *LockInfo) Describe() string {
	if l.Problem != "" {
		return "a lock that cannot be read (" + l.Problem + ")"
	}
	return fmt.Sprintf("backup on %s (pid %d) since %s", l.Host, l.PID, l.Started.Format(time.RFC3339))
}

// StorageNow returns the storage's current time: the date the storage
// gives an object written now (`prune/now-RANDOM`, removed at once). Only
// such dates are compared with the dates of locks, never a host's clock.
func (r *Repo) StorageNow(ctx context.Context) (time.Time, error) {
	var b [8]byte
	rand.Read(b[:])
	name := "prune/now-" + hex.EncodeToString(b[:])
	if err := r.be.Put(ctx, name, nil, storage.PutOptions{NoOverwrite: true}); err != nil {
		return time.Time{}, fmt.Errorf("learn the storage's time: write %s: %w", name, err)
	}
	defer r.be.Delete(context.WithoutCancel(ctx), name)
	fi, err := r.be.Stat(ctx, name)
	if err != nil {
		return time.Time{}, fmt.Errorf("learn the storage's time: %w", err)
	}
	if fi.ModTime.IsZero() {
		return time.Time{}, fmt.Errorf("learn the storage's time: %s in %s has no modification time", name, r.be.Location())
	}
	return fi.ModTime, nil
}

// UnlockOptions tune Unlock.
type UnlockOptions struct {
	// All removes every lock, live or not. A backup whose lock is removed
	// fails rather than write a snapshot, but one already writing its
	// snapshot may race a prune: use All only when no backup runs.
	All       bool
	LockStale time.Duration // default LockStale
}

// UnlockReport says which locks Unlock removed and which it kept.
type UnlockReport struct {
	Removed []string `json:"removed"`
	Kept    []string `json:"kept,omitempty"` // live locks (without All)
}

// Unlock removes stale locks (by storage time), locks of processes that
// died on this host, and with All every lock.
func (r *Repo) Unlock(ctx context.Context, opts UnlockOptions) (*UnlockReport, error) {
	if opts.LockStale <= 0 {
		opts.LockStale = LockStale
	}
	var now time.Time
	if !opts.All {
		var err error
		if now, err = r.StorageNow(ctx); err != nil {
			return nil, fmt.Errorf("unlock: %w", err)
		}
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	rep := &UnlockReport{}
	for _, e := range locks {
		why := ""
		switch {
		case e.Info.deadHere():
			why = "its process is no longer running"
		case opts.All:
			why = "--remove-all"
		case e.Stale(now, opts.LockStale):
			why = fmt.Sprintf("not refreshed for %s by the storage's clock", now.Sub(e.Modified).Round(time.Second))
		default:
			rep.Kept = append(rep.Kept, e.Info.Describe())
			continue
		}
		if err := r.be.Delete(ctx, "locks/"+e.ID.String()); err != nil {
			return rep, fmt.Errorf("unlock: remove locks/%s: %w", e.ID, err)
		}
		rep.Removed = append(rep.Removed, fmt.Sprintf("%s: %s", e.Info.Describe(), why))
	}
	return rep, nil
}
