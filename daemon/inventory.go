package daemon

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// inventory is what the repository holds of each configured source, read
// with `coffer snapshots --json` (the writer key suffices) when the daemon
// starts, after every backup and every few minutes. The newest snapshot's
// age is computed when the metrics are scraped, so an alert on it fires
// for a source whose backups stopped, whatever the job metrics say; a
// source without any snapshot has an infinite age.
type inventory struct {
	now     func() time.Time
	sources []string // the configured ones, listed even without snapshots

	mu    sync.Mutex
	known bool // read at least once
	by    map[string]sourceInv

	age, newest, count, stored *prometheus.Desc
}

type sourceInv struct {
	newest time.Time
	count  int
	stored int64
}

func newInventory(sources []string, now func() time.Time) *inventory {
	src := []string{"source"}
	return &inventory{now: now, sources: sources, by: map[string]sourceInv{},
		age: prometheus.NewDesc("coffer_source_newest_snapshot_age_seconds",
			"Age of the source's newest snapshot in the repository (+Inf: none).", src, nil),
		newest: prometheus.NewDesc("coffer_source_newest_snapshot_timestamp_seconds",
			"When the source's newest snapshot was taken (Unix time; 0: none).", src, nil),
		count: prometheus.NewDesc("coffer_source_snapshots",
			"Snapshots of the source in the repository.", src, nil),
		stored: prometheus.NewDesc("coffer_source_stored_bytes",
			"Bytes the source's snapshots added to the repository when they were taken.", src, nil),
	}
}

func (inv *inventory) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{inv.age, inv.newest, inv.count, inv.stored} {
		ch <- d
	}
}

func (inv *inventory) Collect(ch chan<- prometheus.Metric) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if !inv.known {
		return // not read yet: no figure rather than a false "none"
	}
	now := inv.now()
	for _, name := range inv.sources {
		s := inv.by[name]
		age, ts := math.Inf(1), 0.0
		if s.count > 0 {
			age, ts = now.Sub(s.newest).Seconds(), float64(s.newest.Unix())
		}
		ch <- prometheus.MustNewConstMetric(inv.age, prometheus.GaugeValue, age, name)
		ch <- prometheus.MustNewConstMetric(inv.newest, prometheus.GaugeValue, ts, name)
		ch <- prometheus.MustNewConstMetric(inv.count, prometheus.GaugeValue, float64(s.count), name)
		ch <- prometheus.MustNewConstMetric(inv.stored, prometheus.GaugeValue, float64(s.stored), name)
	}
}

// snapshotRow is what the inventory reads of `coffer snapshots --json`.
type snapshotRow struct {
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	Stored int64     `json:"stored_bytes"`
}

// refresh reads the repository's snapshots.
func (d *Daemon) refreshInventory(ctx context.Context) error {
	out, err := d.run.coffer(ctx, job{}, "snapshots", "--json")
	if err != nil {
		return err
	}
	rows, err := parseJSON[[]snapshotRow](out)
	if err != nil {
		return err
	}
	by := map[string]sourceInv{}
	for _, r := range rows {
		s := by[r.Source]
		s.count++
		s.stored += r.Stored
		if r.Time.After(s.newest) {
			s.newest = r.Time
		}
		by[r.Source] = s
	}
	inv := d.inv
	inv.mu.Lock()
	inv.by, inv.known = by, true
	inv.mu.Unlock()
	return nil
}

// inventoryEvery is how often the inventory is read besides after backups.
const inventoryEvery = 5 * time.Minute

// keepInventory refreshes the inventory until ctx ends; after a backup,
// kick makes it read again at once.
func (d *Daemon) keepInventory(ctx context.Context, kick <-chan struct{}) {
	t := time.NewTicker(inventoryEvery)
	defer t.Stop()
	for {
		if err := d.refreshInventory(ctx); err != nil && ctx.Err() == nil {
			d.opts.Log.Warn("reading the repository's snapshots for the metrics failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}
