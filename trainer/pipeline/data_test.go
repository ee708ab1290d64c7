package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/importer"
	"github.com/promoai/promo/trainer/pipeline"
)

// The data config declares attributes and outcomes; what a run cannot use
// is refused with the reason, and a refused file leaves the config as it
// was. A protected attribute cannot be a model input by any route.
func TestLoadData(t *testing.T) {
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "data.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg := pipeline.DefaultConfig()
	err := cfg.LoadData(write(`{"attributes": [{"name": "channel", "type": "categorical", "values": ["web", "phone"]},
		{"name": "tier", "type": "numeric"}, {"name": "religion", "type": "categorical", "protected": true}],
		"top_categories": 0, "uplift": {"outcome": "visit/14d"}, "propensity": {"outcome": "add_to_cart/7d"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Attributes) != 3 || cfg.TopCategories >= 0 || cfg.Uplift.Outcome != (features.Outcome{Event: "visit", Window: 14 * 24 * time.Hour}) ||
		cfg.Propensity.Outcome.Event != "add_to_cart" {
		t.Fatalf("loaded %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		`{"attributes": [{"name": "x", "type": "text"}]}`:                                      `type "text"`,
		`{"attributes": [{"name": "x", "type": "numeric"}, {"name": "x", "type": "numeric"}]}`: "declared twice",
		`{"attributes": [{"name": "a=b", "type": "numeric"}]}`:                                 "without '='",
		`{"uplift": {"outcome": "click"}}`:                                                     `outcome "click"`,
		`{"uplift": {"outcome": "visit/120d"}}`:                                                "outcome window",
		`{"propensity": {"outcome": "purchase/60d"}}`:                                          "longer than the 720h0m0s label horizon",
		`{"colour": 1}`: `unknown field "colour"`,
	} {
		before := cfg
		if err := cfg.LoadData(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error that says %q", body, err, want)
		}
		if len(cfg.Attributes) != len(before.Attributes) || cfg.Uplift.Outcome != before.Uplift.Outcome {
			t.Errorf("%s: a refused file changed the config", body)
		}
	}
	for _, f := range []string{"religion", "gender"} {
		c := cfg
		c.Propensity.Features = []string{f}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "protected") {
			t.Errorf("propensity feature %s: %v", f, err)
		}
	}
}

// A two-week experiment imported as a table trains the uplift model on
// the attributes the config declares, and the profiles the server reads
// carry them, so the model is served on the same inputs. The protected
// attribute is in neither.
func TestRunOnAnExperimentTable(t *testing.T) {
	ctx := context.Background()
	var table strings.Builder
	table.WriteString("user_id,arm,time,attr.channel,attr.gender,visit\n")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 4000 {
		arm := []string{"mail", "none"}[i%2]
		channel := []string{"web", "phone", "store"}[(i/2)%3]
		u := r.Float64()
		visit := u < 0.1 || arm == "mail" && channel == "web" && u < 0.4
		fmt.Fprintf(&table, "c%d,%s,2026-10-01T%02d:00:00Z,%s,%s,%d\n", i, arm, i%24, channel, []string{"f", "m"}[(i/6)%2], map[bool]int{true: 1}[visit])
	}
	b := inmem.New()
	if _, err := importer.ImportRCT(ctx, strings.NewReader(table.String()), importer.RCT{Control: "none"}, &importer.Sink{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(b)
	cfg := pipeline.Config{Logger: quiet(), Models: []string{artifact.ModelProfiles, artifact.ModelUplift},
		Attributes: []features.Attribute{{Name: "channel", Type: features.Categorical}}, Uplift: pipeline.UpliftConfig{Outcome: features.Outcome{Event: features.OutcomeVisit, Window: 7 * 24 * time.Hour}}}
	res, err := pipeline.Run(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	u := outcome(t, res, artifact.ModelUplift)
	if u.Err != "" || !strings.HasPrefix(u.Params["outcome"], "visit within 7d") {
		t.Fatalf("uplift: %+v", u)
	}
	man, err := reg.Manifest(ctx, artifact.ModelUplift, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	p := outcome(t, res, artifact.ModelProfiles)
	pman, err := reg.Manifest(ctx, artifact.ModelProfiles, p.Version)
	if err != nil {
		t.Fatal(err)
	}
	for _, schema := range [][]string{man.InputSchema, pman.InputSchema} {
		if !slices.Contains(schema, "attr.channel=web") || slices.ContainsFunc(schema, func(s string) bool { return strings.Contains(s, "gender") }) {
			t.Fatalf("inputs %v: want attr.channel=web and nothing of gender", schema)
		}
	}
	if _, ok := u.Metrics["targeting.gender.disparate_impact"]; !ok {
		t.Errorf("no targeting audit by gender: %v", u.Metrics)
	}
}
