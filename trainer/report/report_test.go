package report_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"log/slog"
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
}
