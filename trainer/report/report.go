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
	}
	var models []model
	for _, o := range res.Outcomes {
		m := model{Outcome: o}
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
	} else {
		var args []any
		for _, s := range p.Series {
			xy := make(plotter.XYs, len(s.X))
			for i := range s.X {
				xy[i].X, xy[i].Y = s.X[i], s.Y[i]
			}
			args = append(args, s.Name, xy)
		}
		if err := plotutil.AddLinePoints(pl, args...); err != nil {
			return nil, err
		}
		pl.Legend.Top = true
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
.ok{color:#176d2c}.no{color:#a33}img{max-width:100%;border:1px solid #eee;margin:.5em 0}</style></head>
<body><h1>Training run {{.Result.Started.Format "2006-01-02 15:04:05Z"}}</h1>
<p>{{.Duration}} · {{.Result.Report.Used}} events used · {{.Result.Report.UsersSeen}} users · {{.Result.Report.ItemsSeen}} items ·
dropped: {{range $k, $v := .Result.Report.Dropped}}{{$k}} {{$v}} {{else}}nothing{{end}}</p>
<table><tr><th>model</th><th>version</th><th>promoted</th><th>reason</th></tr>
{{range .Models}}<tr><td><a href="#{{.Model}}">{{.Model}}</a></td><td>{{.Version}}</td>
<td class="{{if .Promoted}}ok{{else}}no{{end}}">{{.Promoted}}</td><td>{{.Reason}}</td></tr>{{end}}</table>
{{range .Models}}<h2 id="{{.Model}}">{{.Model}}</h2>
{{if .Err}}<p class="no">{{.Err}}</p>{{end}}
{{range .Images}}<img src="{{.}}" alt="{{.}}">{{end}}
<table><tr><th>metric</th><th>value</th></tr>{{$m := .Metrics}}{{range .MetricNames}}<tr><td>{{.}}</td><td>{{fmt (index $m .)}}</td></tr>{{end}}</table>
{{end}}</body></html>
`))
