package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the daemon's Prometheus metrics, per job.
type metrics struct {
	reg          *prometheus.Registry
	lastSuccess  *prometheus.GaugeVec
	lastDuration *prometheus.GaugeVec
	runs         *prometheus.CounterVec
	bytesRead    *prometheus.GaugeVec
	bytesStored  *prometheus.GaugeVec
	drillPassed  *prometheus.GaugeVec
	drillRTO     *prometheus.GaugeVec
	wal          walMetrics
}

// walMetrics describe a physical source's WAL archiving, as `coffer
// wal-status` reads it from the server every minute.
type walMetrics struct {
	archived, failed, lastArchived, ready *prometheus.GaugeVec
}

func newMetrics() *metrics {
	job := []string{"job", "kind", "source"}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_job_last_success_timestamp_seconds",
			Help: "When the job last succeeded (Unix time)."}, job),
		lastDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_job_last_duration_seconds",
			Help: "How long the job's last run took."}, job),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coffer_job_runs_total",
			Help: "Job runs by outcome."}, append(job, "outcome")),
		bytesRead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_backup_last_bytes_read",
			Help: "Bytes the last backup read from its source."}, job),
		bytesStored: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_backup_last_bytes_stored",
			Help: "Bytes the last backup added to the repository."}, job),
		drillPassed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_drill_last_passed",
			Help: "1 if the last drill passed every check, 0 if not."}, job),
		drillRTO: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_drill_last_rto_seconds",
			Help: "The last drill's recovery time: download, decrypt, load, verify."}, job),
	}
	src := []string{"source"}
	m.wal = walMetrics{
		archived: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_wal_archived_files",
			Help: "WAL files the server archived since its statistics were reset (pg_stat_archiver.archived_count)."}, src),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_wal_failed_attempts",
			Help: "Failed archiving attempts since the statistics were reset (pg_stat_archiver.failed_count)."}, src),
		lastArchived: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_wal_last_archived_timestamp_seconds",
			Help: "When the server last archived a WAL file (Unix time): time() minus it is the point-in-time RPO."}, src),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coffer_wal_ready_files",
			Help: "WAL files waiting to be archived (-1: the user may not list them)."}, src),
	}
	m.reg.MustRegister(m.lastSuccess, m.lastDuration, m.runs, m.bytesRead, m.bytesStored, m.drillPassed, m.drillRTO,
		m.wal.archived, m.wal.failed, m.wal.lastArchived, m.wal.ready)
	return m
}
