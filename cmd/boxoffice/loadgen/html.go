package loadgen

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: the figures
// as tables and the timeline as inline SVG charts (decisions/s, p99
// latency, seats sold, queue length). No scripts, fonts or styles are
// fetched: it reads the same offline.
func (r *Report) WriteHTML(w io.Writer) error {
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		return err
	}
	type row struct {
		Name string
		L    Latency
	}
	var lat []row
	for _, name := range endpointNames {
		if l, ok := r.Latency[name]; ok && l.Count > 0 {
			lat = append(lat, row{name, l})
		}
	}
	type kv struct {
		K string
		V int64
	}
	var errs []kv
	for _, k := range slices.Sorted(maps.Keys(r.ErrorsByCode)) {
		errs = append(errs, kv{k, r.ErrorsByCode[k]})
	}
	var outcomes []kv
	for _, k := range slices.Sorted(maps.Keys(r.Buyers.Outcomes)) {
		outcomes = append(outcomes, kv{k, int64(r.Buyers.Outcomes[k])})
	}
	ts := r.Timeline
	x := make([]float64, len(ts))
	col := func(f func(Sample) float64) []float64 {
		out := make([]float64, len(ts))
		for i, s := range ts {
			out[i] = f(s)
		}
		return out
	}
	for i, s := range ts {
		x[i] = s.T
	}
	soldOut := -1.0
	if r.TimeToSellOutSeconds != nil {
		soldOut = *r.TimeToSellOutSeconds
	}
	charts := []template.HTML{
		svgChart("Hold decisions per second", "/s", x, soldOut,
			line{"decisions (granted + refused)", "#2563eb", col(func(s Sample) float64 { return float64(s.HoldDecisions) })},
			line{"granted holds", "#16a34a", col(func(s Sample) float64 { return float64(s.GrantedHolds) })},
			line{"bookings", "#d97706", col(func(s Sample) float64 { return float64(s.Bookings) })}),
		svgChart("p99 latency of the second (from intended send time)", " ms", x, soldOut,
			line{"hold", "#dc2626", col(func(s Sample) float64 { return s.HoldP99Ms })},
			line{"every request", "#7c3aed", col(func(s Sample) float64 { return s.P99Ms })}),
		svgChart("Seats sold (booked on the live map)", "", x, soldOut,
			line{"seats sold", "#16a34a", col(func(s Sample) float64 { return float64(s.SeatsSold) })},
			line{"sellable", "#9ca3af", col(func(Sample) float64 { return float64(r.Sellable) })}),
		svgChart("Queue length", "", x, soldOut,
			line{"waiting room (buyers waiting)", "#2563eb", col(func(s Sample) float64 { return float64(s.QueueLength) })},
			line{"generator backlog (due, not sent)", "#dc2626", col(func(s Sample) float64 { return float64(s.Backlog) })},
			line{"in flight", "#9ca3af", col(func(s Sample) float64 { return float64(s.InFlight) })}),
	}
	return htmlReport.Execute(w, map[string]any{
		"R": r, "Text": text.String(), "Latency": lat, "Errors": errs, "Outcomes": outcomes, "Charts": charts,
	})
}

type line struct {
	name, color string
	y           []float64
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH                     = 760, 240
	padLeft, padRight, padTop, padDown = 64, 16, 28, 56
)

// svgChart draws lines over x (seconds) as an inline SVG, with a dashed
// marker at mark seconds (the sell-out) when mark ≥ 0.
func svgChart(title, unit string, x []float64, mark float64, lines ...line) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><figcaption>%s</figcaption><svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		html.EscapeString(title), chartW, chartH, chartW, chartH, html.EscapeString(title))
	plotW, plotH := float64(chartW-padLeft-padRight), float64(chartH-padTop-padDown)
	xMax := 1.0
	if len(x) > 0 {
		xMax = max(x[len(x)-1], 1)
	}
	yMax := 0.0
	for _, l := range lines {
		for _, v := range l.y {
			yMax = max(yMax, v)
		}
	}
	yMax = niceCeil(yMax)
	px := func(v float64) float64 { return padLeft + v/xMax*plotW }
	py := func(v float64) float64 { return padTop + plotH - v/yMax*plotH }
	// Grid and axes.
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, padLeft, chartW-padRight, py(v), py(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="ylabel">%s%s</text>`, padLeft-6, py(v)+4, html.EscapeString(shortNumber(v)), html.EscapeString(unit))
	}
	step := niceCeil(xMax / 6)
	for v := 0.0; v <= xMax+1e-9; v += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="xlabel">%ss</text>`, px(v), chartH-padDown+16, shortNumber(v))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" class="axis"/>`, padLeft, chartW-padRight, chartH-padDown, chartH-padDown)
	if mark >= 0 && mark <= xMax {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="mark"/><text x="%.1f" y="%d" class="marklabel">sold out %.1fs</text>`,
			px(mark), px(mark), padTop, chartH-padDown, px(mark)+4, padTop+10, mark)
	}
	if len(x) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="xlabel">no samples (the sale lasted under a second)</text>`, chartW/2, chartH/2)
	}
	for _, l := range lines {
		var pts strings.Builder
		for i, v := range l.y {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(x[i]), py(v))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.TrimSpace(pts.String()), l.color)
	}
	// Legend under the axis.
	lx := float64(padLeft)
	for _, l := range lines {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="4" fill="%s"/><text x="%.1f" y="%d" class="legend">%s</text>`,
			lx, chartH-18, l.color, lx+16, chartH-13, html.EscapeString(l.name))
		lx += 28 + 6.5*float64(len(l.name))
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String()) // every text in it is escaped above
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func shortNumber(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e4:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return trimZero(fmt.Sprintf("%.2f", v))
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"n":  thousands,
	"ms": ms,
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2": func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"i":  func(v int) int64 { return int64(v) },
	"r":  func(v float64) int64 { return int64(math.Round(v)) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Flash sale: {{.R.EventID}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:820px;color:#111827;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#4b5563;margin:0 0 16px}
.kpis{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
.kpi{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}.kpi b{display:block;font-size:22px}
.ok{color:#15803d}.bad{color:#b91c1c}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #e5e7eb;text-align:right}td:first-child,th:first-child{text-align:left}
figure{margin:18px 0}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:11px system-ui,sans-serif;fill:#374151}.ylabel{text-anchor:end}.xlabel{text-anchor:middle}
.grid{stroke:#e5e7eb}.axis{stroke:#6b7280}.mark{stroke:#6b7280;stroke-dasharray:4 3}.marklabel{fill:#6b7280}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:10px;overflow-x:auto;font-size:12px}
</style></head><body>
<h1>Flash sale: {{.R.EventName}}</h1>
<p class="sub">{{.R.EventID}} · {{.R.Venue}} · {{n (i .R.Capacity)}} seats · {{.R.Target}} · started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}}{{if .R.Interrupted}} · <b class="bad">interrupted</b>{{end}}</p>
<div class="kpis">
<div class="kpi">hold decisions/s<b>{{n (r .R.HoldDecisionsPerSecond)}}</b>peak {{n (r .R.PeakHoldDecisionsPerSecond)}}/s</div>
<div class="kpi">granted holds/s<b>{{n (r .R.GrantedHoldsPerSecond)}}</b>{{n .R.GrantedHolds}} of {{n .R.HoldDecisions}}</div>
<div class="kpi">bookings/s<b>{{n (r .R.BookingsPerSecond)}}</b>{{n .R.Bookings}} bookings, {{n .R.SeatsBooked}} seats</div>
<div class="kpi">time to sell out<b>{{with .R.TimeToSellOutSeconds}}{{f2 .}} s{{else}}not sold out{{end}}</b>{{n (i .R.SeatsSold)}} of {{n (i .R.Sellable)}} seats sold</div>
<div class="kpi">hold p99{{with index .R.Latency "hold"}}<b>{{ms .P99}} ms</b>p99.9 {{ms .P999}} ms, max {{ms .Max}} ms{{else}}<b>–</b>{{end}}</div>
<div class="kpi">oversell audit{{if .R.Audit.OK}}<b class="ok">passed</b>{{else}}<b class="bad">FAILED</b>{{end}}{{n (i .R.Audit.Bookings)}} bookings, {{n (i .R.Audit.MapBookedSeats)}} seats booked</div>
</div>
{{if not .R.Audit.OK}}<h2 class="bad">Audit problems</h2><ul>{{range .R.Audit.Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Over time</h2>
{{range .Charts}}{{.}}{{end}}
<h2>Latency by endpoint (ms, from intended send time)</h2>
<table><tr><th>endpoint</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{range .Latency}}<tr><td>{{.Name}}</td><td>{{n .L.Count}}</td><td>{{ms .L.P50}}</td><td>{{ms .L.P90}}</td><td>{{ms .L.P99}}</td><td>{{ms .L.P999}}</td><td>{{ms .L.Max}}</td></tr>{{end}}
<tr><td>(send delay)</td><td>{{n .R.SendDelay.Count}}</td><td>{{ms .R.SendDelay.P50}}</td><td>{{ms .R.SendDelay.P90}}</td><td>{{ms .R.SendDelay.P99}}</td><td>{{ms .R.SendDelay.P999}}</td><td>{{ms .R.SendDelay.Max}}</td></tr>
</table>
<h2>Buyers</h2>
<table><tr><th>outcome</th><th>buyers</th></tr>{{range .Outcomes}}<tr><td>{{.K}}</td><td>{{n .V}}</td></tr>{{end}}</table>
<h2>Errors by code</h2>
{{if .Errors}}<table><tr><th>code</th><th>answers</th></tr>{{range .Errors}}<tr><td>{{.K}}</td><td>{{n .V}}</td></tr>{{end}}</table>
<p>{{n .R.UnexpectedErrors}} unexpected (not a normal part of a sale).</p>{{else}}<p>None.</p>{{end}}
<h2>The report as text</h2>
<pre>{{.Text}}</pre>
</body></html>
`))
