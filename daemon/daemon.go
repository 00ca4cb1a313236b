// Package daemon runs coffer unattended from coffer.yaml: each source's
// backup (then its retention) on its schedule, checks, prune and drills,
// with Prometheus metrics, structured logs and notifications. Jobs run as
// coffer child processes; package schedule decides when.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/schedule"
)

// Options configure the daemon.
type Options struct {
	Config *config.Config
	Exe    string         // the coffer binary children run (os.Executable)
	Clock  schedule.Clock // default: the real one
	Log    *slog.Logger
	// Ready, when set, is called with the metrics address once listening.
	Ready func(metricsAddr string)
}

// Daemon is a configured daemon.
type Daemon struct {
	opts   Options
	run    *runner
	m      *metrics
	notify *Notifier
	jobs   []schedule.Job
	kinds  map[string]jobInfo
	inv    *inventory
	kick   chan struct{} // a backup ended: read the inventory again

	mu      sync.Mutex
	running map[string]bool
}

type jobInfo struct{ kind, source string }

// New builds the jobs of the config.
func New(opts Options) (*Daemon, error) {
	c := opts.Config
	run, err := newRunner(opts.Exe, c)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = schedule.RealClock{}
	}
	n := c.Notifications
	d := &Daemon{opts: opts, run: run, m: newMetrics(), kinds: map[string]jobInfo{},
		notify: &Notifier{WebhookURL: n.Webhook.URL, WebhookOn: onSet(n.Webhook.On), Command: n.Command.Run, CommandOn: onSet(n.Command.On), Secrets: secretVars(c)}}
	var sources []string
	for _, s := range c.Sources {
		sources = append(sources, s.Name)
	}
	d.inv = newInventory(sources, opts.Clock.Now)
	d.kick = make(chan struct{}, 1)
	d.running = map[string]bool{}
	d.m.reg.MustRegister(d.inv)
	d.addJobs()
	return d, nil
}

// secretVars names the environment variables the config's secrets are in.
func secretVars(c *config.Config) []string {
	var names []string
	for _, s := range c.Secrets() {
		if s.Env != "" {
			names = append(names, s.Env)
		}
	}
	return names
}

func onSet(on []string) map[string]bool {
	m := map[string]bool{}
	for _, o := range on {
		m[o] = true
	}
	return m
}

func (d *Daemon) job(name, kind, source, lock, spec string, run func(context.Context) error) {
	dc := d.opts.Config.Daemon
	d.jobs = append(d.jobs, schedule.Job{Name: name, Source: lock, Spec: spec, Location: d.opts.Config.Repository.Location,
		Jitter: dc.Jitter, Retries: dc.Retries, RetryBase: dc.RetryBase, Run: run})
	d.kinds[name] = jobInfo{kind: kind, source: source}
}

func (d *Daemon) addJobs() {
	c := d.opts.Config
	for _, s := range c.Sources {
		if s.Schedule != "" {
			d.job("backup "+s.Name, "backup", s.Name, s.Name, s.Schedule, d.backupJob(s))
		}
		if s.Physical {
			d.job("wal-status "+s.Name, "wal-status", s.Name, "wal-status "+s.Name, "* * * * *", d.walStatusJob(s))
		}
	}
	for i, ch := range c.Checks {
		args := []string{"check"}
		if ch.ReadData {
			args = append(args, "--read-data")
			if ch.Subset > 0 {
				args = append(args, "--subset", fmt.Sprintf("%g%%", ch.Subset*100))
			}
		}
		d.job(fmt.Sprintf("check %d", i+1), "check", "", "repository", ch.Schedule, d.plainJob(job{identity: ch.ReadData}, args))
	}
	if c.Prune.Schedule != "" {
		d.job("prune", "prune", "", "repository", c.Prune.Schedule, d.plainJob(job{}, []string{"prune"}))
	}
	for _, dr := range c.Drills {
		for _, src := range dr.Sources {
			d.job("drill "+src, "drill", src, src, dr.Schedule, d.drillJob(dr, src))
		}
	}
	for i, cp := range c.Copies {
		name := fmt.Sprintf("copy %d", i+1)
		// Copies lock both repositories as backups do, so they need not
		// wait for the repository's other jobs; one copy runs at a time.
		d.job(name, "copy", "", name, cp.Schedule, d.copyJob(cp))
	}
}

// copyJob runs coffer copy with the destination's own credentials, which
// reach the child through its environment (COFFER_COPY_*).
func (d *Daemon) copyJob(cp config.Copy) func(context.Context) error {
	return func(ctx context.Context) error {
		env, err := copyEnv(cp)
		if err != nil {
			return err
		}
		args := []string{"copy", "--json", "--to", cp.To}
		for _, s := range cp.Sources {
			args = append(args, "--source", s)
		}
		_, err = d.run.coffer(ctx, job{extra: env}, args...)
		return err
	}
}

func (d *Daemon) backupJob(s config.Source) func(context.Context) error {
	return func(ctx context.Context) error {
		args, env, err := backupArgs(s)
		if err != nil {
			return err
		}
		out, err := d.run.coffer(ctx, job{extra: env}, args...)
		defer d.kickInventory()
		if err != nil {
			return err
		}
		if res, err := parseJSON[backupResult](out); err == nil {
			l := []string{"backup " + s.Name, "backup", s.Name}
			d.m.bytesRead.WithLabelValues(l...).Set(float64(res.BytesRead))
			d.m.bytesStored.WithLabelValues(l...).Set(float64(res.BytesStored))
			d.opts.Log.Info("snapshot saved", "job", "backup "+s.Name, "snapshot", res.Snapshot,
				"bytes_read", res.BytesRead, "bytes_stored", res.BytesStored)
		}
		if !s.Retention.IsSet() {
			return nil
		}
		out, err = d.run.coffer(ctx, job{}, forgetArgs(s, d.opts.Config.Repository.Location.String())...)
		if groups, perr := parseJSON[[]forgetResult](out); perr == nil {
			kept, removed := 0, []string{}
			for _, g := range groups {
				for _, it := range g.Snapshots {
					if it.Keep {
						kept++
					} else {
						removed = append(removed, it.ID)
					}
				}
			}
			d.opts.Log.Info("retention applied", "job", "backup "+s.Name, "kept", kept, "removed", len(removed), "removed_snapshots", removed)
		}
		return err
	}
}

// walStatusJob reads a physical source's WAL archiving into the metrics.
// A failing archive_command makes the job fail, so it is logged and
// notified like any failed job.
func (d *Daemon) walStatusJob(s config.Source) func(context.Context) error {
	return func(ctx context.Context) error {
		_, target := s.Engine()
		_, env, err := backupArgs(s)
		if err != nil {
			return err
		}
		out, runErr := d.run.coffer(ctx, job{extra: env}, "wal-status", "--json", "--postgres", target)
		if st, err := parseJSON[walStatus](out); err == nil {
			d.m.wal.archived.WithLabelValues(s.Name).Set(float64(st.Archived))
			d.m.wal.failed.WithLabelValues(s.Name).Set(float64(st.Failed))
			last := 0.0 // none yet
			if !st.LastTime.IsZero() {
				last = float64(st.LastTime.UnixNano()) / 1e9
			}
			d.m.wal.lastArchived.WithLabelValues(s.Name).Set(last)
			d.m.wal.ready.WithLabelValues(s.Name).Set(float64(st.Ready))
		}
		return runErr
	}
}

func (d *Daemon) plainJob(j job, args []string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := d.run.coffer(ctx, j, args...)
		return err
	}
}

func (d *Daemon) drillJob(dr config.Drill, src string) func(context.Context) error {
	return func(ctx context.Context) error {
		args := []string{"drill", "--json", "--source", src}
		var env []string
		if dr.Ephemeral {
			args = append(args, "--ephemeral")
		} else if dr.Scratch != "" {
			args = append(args, "--scratch", dr.Scratch)
		}
		if dr.Assertions != "" {
			args = append(args, "--assertions", dr.Assertions)
		}
		if dr.Sample > 0 {
			args = append(args, "--sample", fmt.Sprint(dr.Sample))
		}
		if dr.ReportDir != "" {
			args = append(args, "--report-dir", dr.ReportDir)
		}
		if dr.ScratchPassword().IsSet() {
			pw, err := dr.ScratchPassword().Read(os.LookupEnv)
			if err != nil {
				return err
			}
			env = append(env, "PGPASSWORD="+pw, "MYSQL_PWD="+pw)
		}
		out, err := d.run.coffer(ctx, job{identity: true, extra: env}, args...)
		if res, perr := parseJSON[drillResult](out); perr == nil {
			l := []string{"drill " + src, "drill", src}
			d.m.drillPassed.WithLabelValues(l...).Set(map[bool]float64{true: 1, false: 0}[res.Passed])
			if len(res.Runs) > 0 {
				d.m.drillRTO.WithLabelValues(l...).Set(res.Runs[0].RTO)
			}
		}
		return err
	}
}

// Next lists every job's next run (coffer schedule).
func (d *Daemon) Next(now time.Time) ([]schedule.Planned, error) {
	s, err := schedule.New(d.opts.Clock, &memState{}, d.jobs, schedule.Options{})
	if err != nil {
		return nil, err
	}
	return s.Next(now), nil
}

// Run serves metrics and runs the jobs until ctx is cancelled (SIGTERM);
// a running job is let finish.
func (d *Daemon) Run(ctx context.Context) error {
	c := d.opts.Config
	state := schedule.StateStore(&memState{})
	if c.Daemon.StateFile != "" {
		state = schedule.FileState(c.Daemon.StateFile)
	}
	s, err := schedule.New(d.opts.Clock, state, d.jobs, schedule.Options{OnEvent: d.event})
	if err != nil {
		return err
	}
	if err := d.seedMetrics(state); err != nil {
		return err
	}
	ictx, stopInventory := context.WithCancel(ctx)
	defer stopInventory()
	go d.keepInventory(ictx, d.kick)
	if c.Daemon.MetricsAddr != "" {
		ln, err := net.Listen("tcp", c.Daemon.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: listen on %s: %w (daemon.metrics_addr)", c.Daemon.MetricsAddr, err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		if d.opts.Ready != nil {
			d.opts.Ready(ln.Addr().String())
		}
	} else if d.opts.Ready != nil {
		d.opts.Ready("")
	}
	d.opts.Log.Info("daemon started", "jobs", len(d.jobs), "metrics", c.Daemon.MetricsAddr)
	go func() {
		<-ctx.Done()
		if running := d.runningJobs(); len(running) > 0 {
			d.opts.Log.Info("stopping: waiting for the running jobs to finish (their children got no signal)", "jobs", running)
		}
	}()
	err = s.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	d.opts.Log.Info("daemon stopped")
	return err
}

// seedMetrics sets every job's last success from the state file, and to 0
// for a job that never succeeded, so that a staleness alert
// (time() - coffer_job_last_success_timestamp_seconds > …) fires for it
// too, and a restart does not empty the metrics.
func (d *Daemon) seedMetrics(state schedule.StateStore) error {
	st, err := state.Load()
	if err != nil {
		return err
	}
	for _, j := range d.jobs {
		info := d.kinds[j.Name]
		last := 0.0
		if t := st[j.Name].LastSuccess; !t.IsZero() {
			last = float64(t.Unix())
		}
		d.m.lastSuccess.WithLabelValues(j.Name, info.kind, info.source).Set(last)
	}
	return nil
}

// track keeps the set of running jobs, for the shutdown's log.
func (d *Daemon) track(job string, running bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if running {
		d.running[job] = true
	} else {
		delete(d.running, job)
	}
}

func (d *Daemon) runningJobs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for j := range d.running {
		names = append(names, j)
	}
	sort.Strings(names)
	return names
}

func (d *Daemon) kickInventory() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// monitoring jobs run every minute: their successes are not news.
var monitoring = map[string]bool{"wal-status": true}

// event logs, counts and notifies.
func (d *Daemon) event(ev schedule.Event) {
	info := d.kinds[ev.Job]
	l := []string{ev.Job, info.kind, info.source}
	log := d.opts.Log.With("job", ev.Job, "event", string(ev.Kind))
	switch ev.Kind {
	case schedule.EventStarted:
		// A start well after its time (more than the jitter and a minute)
		// is a run missed while the daemon was down, caught up.
		late := ev.At.Sub(ev.Scheduled)
		log.Info("job started", "attempt", ev.Attempt, "scheduled", ev.Scheduled,
			"catch_up", ev.Attempt == 0 && late > d.opts.Config.Daemon.Jitter+time.Minute)
		d.track(ev.Job, true)
	case schedule.EventSucceeded:
		d.track(ev.Job, false)
		log.Info("job succeeded", "seconds", ev.Duration.Seconds())
		d.m.lastSuccess.WithLabelValues(l...).Set(float64(ev.At.Unix()))
		d.m.lastDuration.WithLabelValues(l...).Set(ev.Duration.Seconds())
		d.m.runs.WithLabelValues(append(l, "success")...).Inc()
		if !monitoring[info.kind] {
			d.send(ev, info, "success")
		}
	case schedule.EventRetrying:
		d.track(ev.Job, false)
		log.Warn("job failed; retrying", "err", ev.Err, "retry_at", ev.RetryAt)
	case schedule.EventFailed:
		d.track(ev.Job, false)
		log.Error("job failed", "err", ev.Err, "seconds", ev.Duration.Seconds())
		d.m.lastDuration.WithLabelValues(l...).Set(ev.Duration.Seconds())
		d.m.runs.WithLabelValues(append(l, "failure")...).Inc()
		d.send(ev, info, "failure")
	default:
		log.Info("job event", "err", ev.Err)
	}
}

func (d *Daemon) send(ev schedule.Event, info jobInfo, outcome string) {
	host, _ := os.Hostname()
	n := Notice{Job: ev.Job, Kind: info.kind, Source: info.source, Outcome: outcome, Started: ev.At.Add(-ev.Duration),
		Duration: ev.Duration.Seconds(), Host: host}
	if ev.Err != nil {
		n.Error = ev.Err.Error()
	}
	go func() { // the scheduler's event loop must not wait on a slow receiver
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.notify.Send(ctx, n); err != nil {
			d.opts.Log.Warn("notification failed", "job", ev.Job, "err", err)
		}
	}()
}

// memState keeps the schedule's state in memory (no catch-up across
// restarts), when daemon.state_file is not set.
type memState struct{ m map[string]schedule.JobState }

func (s *memState) Load() (map[string]schedule.JobState, error) { return s.m, nil }
func (s *memState) Save(m map[string]schedule.JobState) error   { s.m = m; return nil }
