// Package report renders a training run as an HTML page with PNG plots
// (precision@k, calibration, Qini curves, segment sizes) and publishes it
// next to the run's model versions, because people would rather look than
// read metric tables.
package report

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"image/color"
	"sort"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/trainer/pipeline"
)

// Dir returns where the report of a run that started at t is published.
func Dir(t time.Time) string {
	return "reports/" + t.UTC().Format("20060102T150405Z") + "/"
}

// Render builds index.html and the PNGs of a run.
func Render(res *pipeline.Result) (map[string][]byte, error) {
	files := map[string][]byte{}
	type model struct {
		pipeline.Outcome
		MetricNames []string
		Images      []string
		Key         []keyMetric
	}
	var models []model
	for _, o := range res.Outcomes {
		m := model{Outcome: o, Key: keyMetrics(o)}
		for k := range o.Metrics {
			m.MetricNames = append(m.MetricNames, k)
		}
		sort.Strings(m.MetricNames)
		for _, p := range o.Plots {
			png, err := renderPNG(p)
			if err != nil {
				return nil, fmt.Errorf("plot %s: %w", p.File, err)
			}
			name := o.Model + "-" + p.File
			files[name] = png
			m.Images = append(m.Images, name)
		}
		models = append(models, m)
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, map[string]any{"Result": res, "Models": models, "Duration": res.Finished.Sub(res.Started).Round(time.Millisecond)})
	if err != nil {
		return nil, err
	}
	files["index.html"] = buf.Bytes()
	return files, nil
}

// keyMetric is one of a model's key metrics beside the incumbent's.
type keyMetric struct {
	Name, New, Incumbent string
	// Better says whether the new figure beats the incumbent's: "yes",
	// "no", or "" when there is nothing to compare or no direction.
	Better string
}

// lowerIsBetter are the key metrics where less is better.
var lowerIsBetter = map[string]bool{"log_loss": true, "ece": true, "brier": true}

// keyMetrics lists the primary metric (against the incumbent on this
// run's holdout) and the other key metrics (against the incumbent's
// published ones).
func keyMetrics(o pipeline.Outcome) []keyMetric {
	f := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return fmt.Sprintf("%.4g", v)
	}
	better := func(name string, nv, iv float64) string {
		switch {
		case nv == iv:
			return ""
		case (nv > iv) != lowerIsBetter[name]:
			return "yes"
		default:
			return "no"
		}
	}
	var out []keyMetric
	if o.Primary != "" {
		nv, nok := o.Metrics[o.Primary]
		iv, iok := o.Metrics["incumbent_"+o.Primary]
		k := keyMetric{Name: o.Primary + " (gate, same holdout)", New: f(nv, nok), Incumbent: f(iv, iok)}
		if nok && iok {
			k.Better = better(o.Primary, nv, iv)
		}
		out = append(out, k)
	}
	for _, name := range registry.KeyMetrics {
		nv, nok := o.Metrics[name]
		if name == o.Primary || !nok {
			continue
		}
		iv, iok := o.IncumbentMetrics[name]
		k := keyMetric{Name: name, New: f(nv, nok), Incumbent: f(iv, iok)}
		if iok {
			k.Better = better(name, nv, iv)
		}
		out = append(out, k)
	}
	return out
}

// errorBars is a bar chart's values with their intervals, as gonum/plot
// draws error bars.
type errorBars struct {
	plotter.XYs
	plotter.YErrors
}

func renderPNG(p pipeline.Plot) ([]byte, error) {
	pl := plot.New()
	pl.Title.Text, pl.X.Label.Text, pl.Y.Label.Text = p.Title, p.XLabel, p.YLabel
	pl.Add(plotter.NewGrid())
	if len(p.Bars) > 0 {
		vals := plotter.Values(p.Series[0].Y)
		bars, err := plotter.NewBarChart(vals, vg.Points(30))
		if err != nil {
			return nil, err
		}
		bars.Color = color.RGBA{R: 60, G: 120, B: 200, A: 255}
		pl.Add(bars)
		if s := p.Series[0]; len(s.Lo) == len(s.Y) && len(s.Hi) == len(s.Y) {
			eb := errorBars{XYs: make(plotter.XYs, len(s.Y)), YErrors: make(plotter.YErrors, len(s.Y))}
			for i, y := range s.Y {
				eb.XYs[i].X, eb.XYs[i].Y = float64(i), y
				eb.YErrors[i].Low, eb.YErrors[i].High = y-s.Lo[i], s.Hi[i]-y
			}
			e, err := plotter.NewYErrorBars(eb)
			if err != nil {
				return nil, err
			}
			e.CapWidth = vg.Points(10)
			pl.Add(e)
		}
		pl.NominalX(p.Bars...)
	} else if err := addLines(pl, p.Series); err != nil {
		return nil, err
	}
	w, err := pl.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addLines draws each series as a line: models in colour with their
// points (and labels), baselines grey and dashed. The legend sits in
// headroom added above the data, so it never covers a line.
func addLines(pl *plot.Plot, series []pipeline.Series) error {
	model := 0
	colours := map[string]color.Color{}
	for _, s := range series {
		xy := make(plotter.XYs, len(s.X))
		for i := range s.X {
			xy[i].X, xy[i].Y = s.X[i], s.Y[i]
		}
		line, points, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		if s.Baseline {
			line.Color = color.Gray{Y: 120}
			if c, ok := colours[s.For]; ok {
				line.Color = c
			}
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			pl.Add(line)
			pl.Legend.Add(s.Name, line)
			continue
		}
		line.Color = plotutil.Color(model)
		colours[s.Name] = line.Color
		points.Color, points.Shape = line.Color, plotutil.Shape(model)
		model++
		pl.Add(line, points)
		pl.Legend.Add(s.Name, line, points)
		if len(s.Labels) == len(s.X) {
			labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: s.Labels})
			if err != nil {
				return err
			}
			for i := range labels.TextStyle {
				labels.TextStyle[i].Font.Size = vg.Points(7)
				labels.TextStyle[i].Color = color.Gray{Y: 70}
			}
			labels.Offset = vg.Point{X: vg.Points(3), Y: vg.Points(3)}
			pl.Add(labels)
		}
	}
	pl.Legend.Top = true
	// About 14 pt per legend row in a plot area of about 220 pt.
	if span := pl.Y.Max - pl.Y.Min; span > 0 {
		room := min(0.6, 0.065*float64(len(series))+0.03)
		pl.Y.Max += span * room / (1 - room)
	}
	return nil
}

// Publish writes the report files under dir.
func Publish(ctx context.Context, b registry.Bucket, dir string, files map[string][]byte) error {
	for name, data := range files {
		if err := registry.UploadBytes(ctx, b, dir+name, data); err != nil {
			return fmt.Errorf("publish report %s: %w", name, err)
		}
	}
	return nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"fmt": func(v float64) string { return fmt.Sprintf("%.4g", v) },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Training run {{.Result.Started.Format "2006-01-02 15:04:05Z"}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.ok{color:#176d2c}.no{color:#a33}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
table.key td{border:none;padding:0 .6em 0 0}details{margin:.5em 0}</style></head>
<body><h1>Training run {{.Result.Started.Format "2006-01-02 15:04:05Z"}}</h1>
<p>{{.Duration}} · {{.Result.Report.Used}} events used · {{.Result.Report.UsersSeen}} users · {{.Result.Report.ItemsSeen}} items ·
dropped: {{range $k, $v := .Result.Report.Dropped}}{{$k}} {{$v}} {{else}}nothing{{end}}</p>
<h2>Summary</h2>
<table class="summary"><tr><th>model</th><th>version</th><th>outcome</th><th>key metrics: this run vs the incumbent</th><th>why</th></tr>
{{range .Models}}<tr><td><a href="#{{.Model}}">{{.Model}}</a></td><td>{{.Version}}</td>
<td class="{{if .Promoted}}ok{{else}}no{{end}}">{{if .Err}}failed{{else if .Promoted}}promoted{{else}}kept as candidate{{end}}</td>
<td>{{if .Key}}<table class="key">{{range .Key}}<tr><td>{{.Name}}</td><td class="{{if eq .Better "yes"}}ok{{else if eq .Better "no"}}no{{end}}">{{.New}}</td><td>{{if .Incumbent}}vs {{.Incumbent}}{{end}}</td></tr>{{end}}</table>{{end}}
{{if .Incumbent}}<small>incumbent {{.Incumbent}}</small>{{else}}<small>no incumbent</small>{{end}}</td>
<td>{{if .Err}}{{.Err}}{{else}}{{.Reason}}{{end}}</td></tr>{{end}}</table>
{{range .Models}}<h2 id="{{.Model}}">{{.Model}}</h2>
{{if .Err}}<p class="no">{{.Err}}</p>{{end}}
{{range .Images}}<img src="{{.}}" alt="{{.}}">{{end}}
<details><summary>all {{len .MetricNames}} metrics</summary>
<table><tr><th>metric</th><th>value</th></tr>{{$m := .Metrics}}{{range .MetricNames}}<tr><td>{{.}}</td><td>{{fmt (index $m .)}}</td></tr>{{end}}</table></details>
{{end}}</body></html>
`))
