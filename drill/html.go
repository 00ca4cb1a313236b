package drill

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

var page = template.Must(template.New("drill").Funcs(template.FuncMap{
	"dur":    humanDuration,
	"secs":   func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s" },
	"when":   when,
	"bytes":  humanBytes,
	"count":  thousands,
	"bars":   bars,
	"failed": failedChecks,
	"short":  short,
}).Parse(pageSource))

// WriteHTML writes r as a self-contained HTML page for people: the verdict
// first, then for each run its checks, phase timings (RTO), RPO and
// per-table results. Every string from the report is escaped.
func WriteHTML(w io.Writer, r *Report) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, htmlView{Report: r, Headline: headline(r)}); err != nil {
		return fmt.Errorf("drill: render HTML report %s: %w", r.ID, err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("drill: write HTML report %s: %w", r.ID, err)
	}
	return nil
}

// htmlView is what the template sees.
type htmlView struct {
	*Report
	Headline *SnapshotRun // the newest snapshot drilled: its RTO and RPO lead the page
}

// headline picks the run of the newest snapshot, the one a real restore
// would most likely use.
func headline(r *Report) *SnapshotRun {
	var h *SnapshotRun
	for i := range r.Runs {
		if h == nil || r.Runs[i].SnapshotAt.After(h.SnapshotAt) {
			h = &r.Runs[i]
		}
	}
	return h
}

// failure is one failed check, named with its run for the summary.
type failure struct {
	Snapshot, Source string
	Check
}

func failedChecks(r *Report) []failure {
	var fs []failure
	for _, run := range r.Runs {
		for _, c := range run.Checks {
			if !c.Passed {
				fs = append(fs, failure{Snapshot: run.Snapshot, Source: run.Source, Check: c})
			}
		}
	}
	return fs
}

// bar is one row of a phase chart; Permille is its length against the
// longest phase, the width of the chart's coordinate system being 1000.
type bar struct {
	Phase
	Permille int
}

func bars(ps []Phase) []bar {
	var longest time.Duration
	for _, p := range ps {
		longest = max(longest, p.Duration)
	}
	out := make([]bar, len(ps))
	for i, p := range ps {
		out[i].Phase = p
		if longest > 0 && p.Duration > 0 {
			// A phase that took any time at all stays visible.
			out[i].Permille = max(4, int(1000*float64(p.Duration)/float64(longest)))
		}
	}
	return out
}

// humanDuration writes d the way people say it: "350 ms", "2.3 s",
// "42 s", "5 min 3 s", "1 h 5 min", "1 day 4 h", "3 days". Each unit is
// rounded before it is chosen, so 59.7 s reads "1 min", not "60 s".
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "−" + humanDuration(-d)
	}
	if d == 0 {
		return "0 s"
	}
	if r := d.Round(time.Millisecond); r < time.Second {
		if r == 0 {
			return "< 1 ms"
		}
		return fmt.Sprintf("%d ms", r/time.Millisecond)
	}
	if r := d.Round(100 * time.Millisecond); r < 10*time.Second {
		return fmt.Sprintf("%.1f s", r.Seconds())
	}
	if r := d.Round(time.Second); r < time.Minute {
		return fmt.Sprintf("%d s", r/time.Second)
	}
	if r := d.Round(time.Second); r < time.Hour {
		return pair(int64(r/time.Minute), "min", int64(r%time.Minute/time.Second), "s")
	}
	if r := d.Round(time.Minute); r < 24*time.Hour {
		return pair(int64(r/time.Hour), "h", int64(r%time.Hour/time.Minute), "min")
	}
	const day = 24 * time.Hour
	if r := d.Round(time.Hour); r < 7*day && r%day != 0 {
		return pair(int64(r/day), plural(int64(r/day), "day"), int64(r%day/time.Hour), "h")
	}
	n := int64(d.Round(day) / day)
	return fmt.Sprintf("%d %s", n, plural(n, "day"))
}

// pair writes "a unitA b unitB", leaving out a zero b.
func pair(a int64, unitA string, b int64, unitB string) string {
	if b == 0 {
		return fmt.Sprintf("%d %s", a, unitA)
	}
	return fmt.Sprintf("%d %s %d %s", a, unitA, b, unitB)
}

func plural(n int64, unit string) string {
	if n == 1 {
		return unit
	}
	return unit + "s"
}

// humanBytes writes n in binary units: "512 B", "1.5 KiB", "12.3 GiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n)/1024, []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// thousands writes n with comma separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}

// when writes a time in UTC to the second, or a dash for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// short abbreviates a snapshot ID for the places where the full one is
// shown nearby.
func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// pageSource is the report page. It is one file an auditor can archive or
// mail: its CSS is inline and it loads nothing (no scripts, fonts, images
// or links). Colours are set to print too.
const pageSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Restore drill {{.ID}}: {{if .Passed}}PASSED{{else}}FAILED{{end}}</title>
<style>
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #c62828; --bad-bg: #ffebe9; --bar: #3b6ea8; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 32px 40px 48px; }
h1 { font-size: 15px; font-weight: 600; color: var(--muted); margin: 0 0 4px; letter-spacing: .04em; text-transform: uppercase; }
h2 { font-size: 20px; margin: 0; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 22px 0 8px; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 13px; overflow-wrap: anywhere; }
.summary { border: 1px solid var(--line); border-left: 10px solid var(--bad); border-radius: 6px; padding: 20px 24px; margin-bottom: 28px; }
.summary.pass { border-left-color: var(--ok); }
.verdict { font-size: 56px; font-weight: 800; line-height: 1; letter-spacing: .02em; margin: 6px 0 10px; color: var(--bad); }
.pass .verdict { color: var(--ok); }
.lede { font-size: 17px; margin: 0 0 16px; }
.figures { display: flex; gap: 12px; flex-wrap: wrap; margin: 0 0 16px; }
.figure { flex: 1 1 180px; background: var(--soft); border-radius: 6px; padding: 10px 14px; }
.figure .label { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.figure .value { font-size: 24px; font-weight: 700; }
.figure .note { font-size: 12px; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
ul.failures { margin: 0 0 16px; padding-left: 20px; }
ul.failures li { margin: 2px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; border-bottom-width: 2px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; }
tr.mismatch td { background: var(--bad-bg); }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.badge { display: inline-block; font-size: 12px; font-weight: 700; letter-spacing: .05em; padding: 2px 8px; border-radius: 4px; vertical-align: middle; }
.badge.pass { background: var(--ok-bg); color: var(--ok); }
.badge.fail { background: var(--bad-bg); color: var(--bad); }
section.run { border-top: 3px solid var(--ink); padding-top: 16px; margin-top: 32px; }
.run-head { display: flex; align-items: baseline; justify-content: space-between; gap: 12px; flex-wrap: wrap; }
.sub { color: var(--muted); font-size: 14px; margin: 4px 0 0; }
ul.checks { list-style: none; margin: 0; padding: 0; }
ul.checks li { display: grid; grid-template-columns: 22px 200px 1fr; gap: 8px; padding: 5px 0; border-bottom: 1px solid var(--line); break-inside: avoid; }
ul.checks li.failed { background: var(--bad-bg); }
.mark { font-weight: 700; text-align: center; }
.detail { color: var(--muted); overflow-wrap: anywhere; }
li.failed .detail { color: var(--ink); }
.chart { display: grid; grid-template-columns: 200px 1fr 170px; gap: 6px 12px; align-items: center; }
.chart svg { display: block; width: 100%; height: 16px; }
.chart rect { fill: var(--bar); }
.chart .total { font-weight: 700; border-top: 1px solid var(--line); padding-top: 4px; }
.chart .secs { font-variant-numeric: tabular-nums; }
.chart .secs small { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  section.run + section.run { break-before: page; margin-top: 0; }
  h3, .chart, .figures { break-inside: avoid; break-after: avoid; }
}
</style>
</head>
<body>
<main>
{{- $failed := failed .Report}}
<header class="summary {{if .Passed}}pass{{else}}fail{{end}}">
  <h1>Restore drill</h1>
  <div class="verdict">{{if .Passed}}PASSED{{else}}FAILED{{end}}</div>
  <p class="lede">
  {{- if not .Runs}}No snapshot was drilled.
  {{- else if .Passed}}{{if eq (len .Runs) 1}}The snapshot was{{else}}All {{len .Runs}} snapshots were{{end}} restored into a scratch database and every check passed.
  {{- else}}{{len $failed}} check{{if ne (len $failed) 1}}s{{end}} failed; the restore cannot be trusted until {{if eq (len $failed) 1}}it is{{else}}they are{{end}} resolved.{{end}}</p>
  {{- if $failed}}
  <ul class="failures">
    {{- range $failed}}
    <li><span class="bad">✗</span> <strong>{{.Name}}</strong> ({{.Source}}, snapshot <code>{{short .Snapshot}}</code>): {{.Detail}}</li>
    {{- end}}
  </ul>
  {{- end}}
  {{- with .Headline}}
  <div class="figures">
    <div class="figure"><div class="label">RTO{{if gt (len $.Runs) 1}}: newest snapshot{{end}}</div><div class="value">{{dur .RTO}}</div><div class="note">to download, decrypt, load and verify</div></div>
    <div class="figure"><div class="label">RPO: snapshot age</div><div class="value">{{dur .RPO.Age}}</div><div class="note">from the snapshot to the drill</div></div>
    <div class="figure"><div class="label">RPO: backup gap</div><div class="value">{{if .RPO.Gap}}{{dur .RPO.Gap}}{{else}}—{{end}}</div><div class="note">{{if .RPO.Gap}}between the two newest snapshots{{else}}only one snapshot of the source{{end}}</div></div>
  </div>
  {{- end}}
  <dl class="facts">
    {{- with .Headline}}
    <dt>Source</dt><dd>{{.Source}} ({{.Engine}})</dd>
    {{- end}}
    <dt>Snapshot{{if ne (len .Runs) 1}}s{{end}}</dt>
    <dd>{{range $i, $r := .Runs}}{{if $i}}<br>{{end}}<code>{{short $r.Snapshot}}</code> taken {{when $r.SnapshotAt}}, {{dur $r.RPO.Age}} old: <span class="{{if $r.Passed}}ok{{else}}bad{{end}}">{{if $r.Passed}}✓ passed{{else}}✗ failed{{end}}</span>{{end}}</dd>
    <dt>Drill</dt><dd>{{when .Started}}{{if not .Finished.IsZero}} (took {{dur (.Finished.Sub .Started)}}){{end}}</dd>
    <dt>Host</dt><dd>{{.Host}}</dd>
    <dt>Drill ID</dt><dd><code>{{.ID}}</code></dd>
    {{- if .Tool}}
    <dt>Tool</dt><dd>{{.Tool}}</dd>
    {{- end}}
  </dl>
</header>
{{range .Runs}}
<section class="run">
  <div class="run-head">
    <h2>{{.Source}} <span class="mono">{{short .Snapshot}}</span></h2>
    <span class="badge {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASSED{{else}}FAILED{{end}}</span>
  </div>
  <p class="sub">{{.Engine}} snapshot <code>{{.Snapshot}}</code>, taken {{when .SnapshotAt}}, {{bytes .Size}}{{if .Target}}, restored into <code>{{.Target}}</code>{{end}}</p>

  <h3>Checks</h3>
  <ul class="checks">
    {{- range .Checks}}
    <li{{if not .Passed}} class="failed"{{end}}><span class="mark {{if .Passed}}ok{{else}}bad{{end}}">{{if .Passed}}✓{{else}}✗{{end}}</span><strong>{{.Name}}</strong><span class="detail">{{.Detail}}</span></li>
    {{- else}}
    <li><span></span><span class="detail">No check ran.</span><span></span></li>
    {{- end}}
  </ul>

  <h3>Recovery time (RTO)</h3>
  <div class="chart">
    {{- range bars .Phases}}
    <span>{{.Name}}</span>
    <svg viewBox="0 0 1000 16" preserveAspectRatio="none" aria-hidden="true"><rect x="0" y="0" width="{{.Permille}}" height="16"></rect></svg>
    <span class="secs">{{secs .Duration}}{{if ge .Duration.Seconds 60.0}} <small>({{dur .Duration}})</small>{{end}}</span>
    {{- end}}
    <span class="total">total</span><span class="total"></span><span class="total secs">{{secs .RTO}}{{if ge .RTO.Seconds 60.0}} <small>({{dur .RTO}})</small>{{end}}</span>
  </div>

  <h3>Recovery point (RPO)</h3>
  <dl class="facts">
    <dt>Snapshot age</dt><dd><strong>{{dur .RPO.Age}}</strong> at the drill</dd>
    <dt>Backup gap</dt><dd>{{if .RPO.Gap}}<strong>{{dur .RPO.Gap}}</strong> between the two newest snapshots{{else}}— (only one snapshot){{end}}</dd>
  </dl>

  {{- if .Tables}}
  <h3>Tables</h3>
  <table>
    <thead><tr><th>Table</th><th class="num">Rows expected</th><th class="num">Rows restored</th><th>Verdict</th></tr></thead>
    <tbody>
    {{- range .Tables}}
    <tr{{if not .Match}} class="mismatch"{{end}}><td class="mono">{{.Table}}</td><td class="num">{{if lt .WantRows 0}}—{{else}}{{count .WantRows}}{{end}}</td><td class="num">{{count .GotRows}}</td><td>{{if lt .WantRows 0}}{{.Reason}}{{else if .Match}}<span class="ok">✓ match</span>{{else}}<span class="bad">✗ {{or .Reason "differs"}}</span>{{end}}</td></tr>
    {{- end}}
    </tbody>
  </table>
  {{- end}}
</section>
{{end}}
<footer>Drill {{.ID}}{{if .Tool}} · {{.Tool}}{{end}} · report format {{.Version}} · all times UTC</footer>
</main>
</body>
</html>
`
