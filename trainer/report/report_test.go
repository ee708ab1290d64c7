package report_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/report"
	"github.com/promoai/promo/trainer/shop"
)

func TestRenderAndPublish(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	if _, err := shop.WriteTo(ctx, b, shop.Tiny(), nil); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Run(ctx, registry.New(b), pipeline.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Uplift: pipeline.UpliftConfig{BootstrapRounds: 20}, ReportPath: "reports/x/index.html"})
	if err != nil {
		t.Fatal(err)
	}
	files, err := report.Render(res)
	if err != nil {
		t.Fatal(err)
	}
	html := string(files["index.html"])
	for _, want := range []string{"propensity-calibration.png", "recommender-precision_at_k.png", "profiles-segments.png", "uplift-qini.png", "uplift-experiment.png", "auc"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %s", want)
		}
	}
	pngs := 0
	for name, data := range files {
		if strings.HasSuffix(name, ".png") {
			if _, err := png.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("%s is not a PNG: %v", name, err)
			}
			pngs++
		}
	}
	if pngs < 5 {
		t.Fatalf("%d plots", pngs)
	}
	if err := report.Publish(ctx, b, "reports/x/", files); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.ReadAll(ctx, b, "reports/x/index.html"); err != nil {
		t.Fatal(err)
	}

	// A second run has incumbents: the summary sets each gate's metric
	// beside the incumbent's, and the plots carry their baselines and the
	// calibration bins their counts.
	first := map[string]string{}
	for _, o := range res.Outcomes {
		first[o.Model] = o.Version
	}
	res, err = pipeline.Run(ctx, registry.New(b), pipeline.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Uplift: pipeline.UpliftConfig{BootstrapRounds: 20}, ReportPath: "reports/y/index.html"})
	if err != nil {
		t.Fatal(err)
	}
	files, err = report.Render(res)
	if err != nil {
		t.Fatal(err)
	}
	html = string(files["index.html"])
	for _, want := range []string{"<h2>Summary</h2>", "auc (gate, same holdout)", "ndcg@10 (gate, same holdout)", "incumbent " + first["propensity"], "vs "} {
		if !strings.Contains(html, want) {
			t.Errorf("the second run's report lacks %q", want)
		}
	}
	baselines := map[string]bool{}
	for _, o := range res.Outcomes {
		for _, p := range o.Plots {
			for _, s := range p.Series {
				if s.Baseline {
					baselines[o.Model+"/"+p.File] = true
				}
				if o.Model == "propensity" && !s.Baseline && (len(s.Labels) != len(s.X) || len(s.Labels) == 0 || !strings.HasPrefix(s.Labels[0], "n=")) {
					t.Errorf("calibration points without their counts: %q", s.Labels)
				}
			}
		}
	}
	for _, want := range []string{"propensity/calibration.png", "recommender/precision_at_k.png", "uplift/qini.png"} {
		if !baselines[want] {
			t.Errorf("%s has no baseline (have %v)", want, baselines)
		}
	}
	if err := report.Publish(ctx, b, "reports/y/", files); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("PROMO_TEST_ARTIFACTS"); dir != "" {
		// Look at the pictures: the report as a browser would show it.
		os.MkdirAll(filepath.Join(dir, "report"), 0o755)
		for name, data := range files {
			os.WriteFile(filepath.Join(dir, "report", name), data, 0o644)
		}
	}
}
