package status

import (
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/dustin/go-humanize"
)

// The plots' colours, which the page's test looks for in a screenshot.
const (
	ColorStored = "#1f6fb4"
	ColorRPO    = "#d9480f"
	ColorRTO    = "#2b8a3e"
)

// HTML writes the report as one self-contained page (no script, no
// external resource) with three SVG plots: stored bytes per night, RPO per
// night, RTO per drill. Every name in it is escaped by html/template.
func HTML(w io.Writer, rep *Report) error {
	return page.Execute(w, struct {
		*Report
		Charts []chart
	}{rep, charts(rep)})
}

type chart struct {
	Title, Color, Max, First, Last string
	Bars                           []bar
	Empty                          string
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

const (
	plotW, plotH = 720.0, 180.0
)

func charts(rep *Report) []chart {
	var stored, rpo []float64
	var days []string
	for _, n := range rep.Nights {
		stored = append(stored, float64(n.Stored))
		rpo = append(rpo, n.RPOSeconds/3600)
		days = append(days, n.Day)
	}
	var rto []float64
	var drills []string
	for _, d := range rep.Drills {
		rto = append(rto, d.RTOSeconds)
		drills = append(drills, d.Time.Format(time.DateOnly)+" "+d.Source)
	}
	return []chart{
		bars("Stored per night", ColorStored, stored, days, func(v float64) string { return humanize.IBytes(uint64(v)) }, "no snapshot in these days"),
		bars("RPO per night (longest gap between snapshots of a source)", ColorRPO, rpo, days, func(v float64) string { return fmt.Sprintf("%.1f h", v) }, "fewer than two snapshots of a source"),
		bars("RTO per drill", ColorRTO, rto, drills, func(v float64) string { return fmt.Sprintf("%.1f s", v) }, "no drill yet"),
	}
}

func bars(title, color string, vals []float64, labels []string, format func(float64) string, empty string) chart {
	c := chart{Title: title, Color: color}
	top := 0.0
	for _, v := range vals {
		top = max(top, v)
	}
	if top == 0 || len(vals) == 0 {
		c.Empty = empty
		return c
	}
	c.Max, c.First, c.Last = format(top), labels[0], labels[len(labels)-1]
	step := plotW / float64(len(vals))
	for i, v := range vals {
		h := v / top * plotH
		if v > 0 {
			h = max(h, 2)
		}
		c.Bars = append(c.Bars, bar{X: float64(i)*step + step*0.1, Y: plotH - h, W: step * 0.8, H: h, Label: labels[i] + ": " + format(v)})
	}
	return c
}

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago":   func(s float64) string { return (time.Duration(s) * time.Second).Round(time.Minute).String() },
	"bytes": func(n int64) string { return humanize.IBytes(uint64(n)) },
	"when":  func(t time.Time) string { return t.Format(time.RFC3339) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>coffer status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:12px 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}
.bad{color:#b00020;font-weight:600}.ok{color:#2b8a3e;font-weight:600}
svg{background:#fafafa;border:1px solid #ddd}
</style></head><body>
<h1>coffer status <span class="{{if .OK}}ok{{else}}bad{{end}}">{{if .OK}}OK{{else}}PROBLEMS{{end}}</span></h1>
<p>{{when .Time}}</p>
{{if .Problems}}<ul>{{range .Problems}}<li class="bad">{{.}}</li>{{end}}</ul>{{end}}
<table><tr><th>source</th><th>snapshots</th><th>newest</th><th>age</th><th>schedule</th><th>stored</th><th>last 7 days</th><th>last drill</th><th>WAL lag</th></tr>
{{range .Sources}}<tr><td>{{.Source}}</td><td>{{.Snapshots}}</td>
<td>{{with .Newest}}{{slice .ID 0 8}} {{when .Time}}{{else}}-{{end}}</td>
<td class="{{if .Overdue}}bad{{end}}">{{with .Newest}}{{ago .AgeSeconds}}{{else}}-{{end}}</td>
<td>{{or .Schedule "-"}}</td><td>{{bytes .StoredBytes}}</td><td>{{bytes .Stored7Days}}</td>
<td>{{with .LastDrill}}<span class="{{if .Passed}}ok{{else}}bad{{end}}">{{if .Passed}}passed{{else}}FAILED{{end}}</span> RTO {{printf "%.1f" .RTOSeconds}} s{{else}}-{{end}}</td>
<td>{{with .WALAgeSecond}}{{ago .}}{{else}}-{{end}}</td></tr>
{{end}}</table>
{{with .Audit}}<p>Audit log: {{.Records}} records, newest {{.Event}} at {{when .Newest}}{{if .Problems}}, <span class="bad">{{.Problems}} problems</span>{{end}}</p>{{end}}
{{range .Charts}}<h2>{{.Title}}</h2>
{{if .Empty}}<p>{{.Empty}}</p>{{else}}
<svg xmlns="http://www.w3.org/2000/svg" width="760" height="220" viewBox="-30 -10 760 220" role="img" aria-label="{{.Title}}">
<line x1="0" y1="180" x2="720" y2="180" stroke="#888"/><line x1="0" y1="0" x2="0" y2="180" stroke="#888"/>
<text x="4" y="10" font-size="11">{{.Max}}</text><text x="0" y="196" font-size="11">{{.First}}</text><text x="720" y="196" font-size="11" text-anchor="end">{{.Last}}</text>
{{$c := .Color}}{{range .Bars}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="{{$c}}"><title>{{.Label}}</title></rect>
{{end}}</svg>{{end}}
{{end}}
</body></html>
`))
