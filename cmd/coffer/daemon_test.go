package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDaemon runs a real daemon process: it backs up a real PostgreSQL
// database every minute, serves metrics that the test scrapes and
// parses, posts a webhook when a job fails, and stops cleanly on SIGTERM.
func TestDaemon(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("coffer_daemon_%d", time.Now().UnixNano()%1e9)
	admin := postgres(t, "postgres")
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	postgres(t, name).Exec(ctx, "CREATE TABLE customers AS SELECT g AS id, 'Kunde ' || g AS name FROM generate_series(1, 5000) g")

	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	c.init()
	hooks := make(chan map[string]any, 10)
	receiver := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n map[string]any
		json.NewDecoder(r.Body).Decode(&n)
		hooks <- n
	})}
	hookLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go receiver.Serve(hookLn)
	defer receiver.Close()
	metrics := freeAddr(t)
	cfg := fmt.Sprintf(`repository:
  url: %s
  writer_key_file: %s
  time_zone: UTC
sources:
  - name: shop
    postgres: postgres://postgres@127.0.0.1:5432/%s
    schedule: "* * * * *"
    retention: {keep_last: 2}
  - name: broken
    exec: "echo half a dump; exit 3"
    schedule: "* * * * *"
  - name: envdump
    exec: "env"
    schedule: "* * * * *"
notifications:
  webhook: {url: "http://%s/hook", on: [failure]}
daemon:
  metrics_addr: %s
  retries: 0
  state_file: %s
`, filepath.Join(dir, "repo"), filepath.Join(c.dir, "writer.key"), name, hookLn.Addr(), metrics, filepath.Join(dir, "state.json"))
	cfgPath := filepath.Join(dir, "coffer.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	c.ok(nil, "config", "check", cfgPath)
	mustContain(t, "coffer schedule", c.ok(nil, "schedule", "--config", cfgPath), "backup shop", "backup broken")

	dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// A variable of the daemon's own environment, which no job may see.
	cmd := c.without("COFFER_IDENTITY_FILE").with("DAEMON_ONLY_VARIABLE=xyzzy").cmd(dctx, nil, "daemon", "--config", cfgPath)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Before any job ran: every job's last success is there, 0.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fams := scrape(t, "http://"+metrics+"/metrics")
		if metricPresent(fams, "coffer_job_last_success_timestamp_seconds", "job", "backup shop") {
			if v := metricValue(fams, "coffer_job_last_success_timestamp_seconds", "backup shop"); v != 0 {
				t.Fatalf("last success before any run: %v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no coffer_job_last_success_timestamp_seconds before the first run\n%s", logs.String())
		}
	}

	select {
	case n := <-hooks:
		if n["job"] != "backup broken" || n["outcome"] != "failure" || !strings.Contains(fmt.Sprint(n["error"]), "exit status 3") {
			t.Fatalf("webhook: %+v", n)
		}
	case err := <-exited:
		t.Fatalf("the daemon exited: %v\n%s", err, logs.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("no webhook for the failing job\n%s", logs.String())
	}

	var families map[string]*dto.MetricFamily
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		families = scrape(t, "http://"+metrics+"/metrics")
		if metricValue(families, "coffer_backup_last_bytes_read", "backup shop") > 0 &&
			metricValue(families, "coffer_job_last_success_timestamp_seconds", "backup shop") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics never showed a successful backup of shop\n%s", logs.String())
		}
	}
	if metricValue(families, "coffer_job_runs_total", "backup broken") < 1 {
		t.Error("the failing job's runs are not counted")
	}
	// What the repository holds per source: the newest snapshot's age,
	// +Inf for a source without any.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		families = scrape(t, "http://"+metrics+"/metrics")
		if sourceValue(families, "coffer_source_snapshots", "shop") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coffer_source_snapshots never counted shop's snapshots\n%s", logs.String())
		}
	}
	if age := sourceValue(families, "coffer_source_newest_snapshot_age_seconds", "shop"); age < 0 || age > 300 {
		t.Errorf("shop's newest snapshot age: %v", age)
	}
	if age := sourceValue(families, "coffer_source_newest_snapshot_age_seconds", "broken"); !math.IsInf(age, 1) {
		t.Errorf("a source without snapshots has age %v, want +Inf", age)
	}
	if sourceValue(families, "coffer_source_stored_bytes", "shop") <= 0 {
		t.Error("no stored bytes for shop")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the daemon did not stop cleanly on SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("the daemon did not stop on SIGTERM\n%s", logs.String())
	}
	mustContain(t, "daemon log", logs.String(), "job succeeded", "job failed", "daemon stopped", "snapshot saved", "snapshot=", "bytes_stored=", "retention applied", "catch_up=false")
	// Jobs get an environment built from nothing, never the daemon's.
	r := c.run(nil, "restore", "latest", "--source", "envdump", "--output", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "PATH=") {
		t.Fatalf("restore of the env source: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "DAEMON_ONLY_VARIABLE") || strings.Contains(r.stdout, "COFFER_") {
		t.Fatalf("a job saw the daemon's environment or coffer's settings:\n%s", r.stdout)
	}

	// After a restart, before any job: the last successes come from the
	// state file.
	cmd = c.without("COFFER_IDENTITY_FILE").cmd(dctx, nil, "daemon", "--config", cfgPath)
	logs.Reset()
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		fams := scrape(t, "http://"+metrics+"/metrics")
		if v := metricValue(fams, "coffer_job_last_success_timestamp_seconds", "backup shop"); v > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a restart the last success of backup shop is not restored\n%s", logs.String())
		}
	}
	rows := c.snapshots("--source", "shop")
	if len(rows) == 0 || len(rows) > 3 {
		t.Fatalf("%d snapshots of shop: the backups or their retention (keep_last 2) did not run", len(rows))
	}
	mustContain(t, "check after the daemon", c.ok(nil, "check"), "no errors")
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, b)
	}
	return fams
}

// metricPresent reports whether metric name has a sample labelled key=value.
func metricPresent(fams map[string]*dto.MetricFamily, name, key, value string) bool {
	f := fams[name]
	if f == nil {
		return false
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == key && l.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// sourceValue is the gauge name of source (NaN when missing).
func sourceValue(fams map[string]*dto.MetricFamily, name, source string) float64 {
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "source" && l.GetValue() == source && m.Gauge != nil {
					return m.Gauge.GetValue()
				}
			}
		}
	}
	return math.NaN()
}

func metricValue(fams map[string]*dto.MetricFamily, name, job string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "job" && l.GetValue() == job {
				switch {
				case m.Gauge != nil:
					total += m.Gauge.GetValue()
				case m.Counter != nil:
					total += m.Counter.GetValue()
				}
			}
		}
	}
	return total
}
