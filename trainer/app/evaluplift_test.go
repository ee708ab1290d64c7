package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promoai/promo/trainer/app"
)

// writeExperiment writes a table of a randomized e-mail experiment in
// which the e-mail makes web shoppers visit and phone shoppers not.
func writeExperiment(t *testing.T, n int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.WriteString("user_id,arm,time,attr.channel,attr.history,visit,purchase,spend\n")
	for i := range n {
		arm := []string{"email", "none"}[r.IntN(2)]
		channel := []string{"web", "phone"}[r.IntN(2)]
		p := 0.1
		if arm == "email" && channel == "web" {
			p = 0.3
		}
		visit := r.Float64() < p
		buy := visit && r.Float64() < 0.3
		spend := 0.0
		if buy {
			spend = 40
		}
		fmt.Fprintf(&b, "c%d,%s,2026-10-01T%02d:%02d:00Z,%s,%d,%d,%d,%.2f\n", i, arm, i%24, i%60, channel, 50+r.IntN(500), b2i(visit), b2i(buy), spend)
	}
	path := filepath.Join(t.TempDir(), "experiment.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// eval -protocol uplift trains on a tabular experiment the user brings,
// on the outcome they choose, with the attributes they declare, and
// prints each arm's ranking next to the baseline and random targeting.
func TestEvalUpliftOnAnExperimentTable(t *testing.T) {
	file := writeExperiment(t, 6000)
	schema := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(schema, []byte(`{"attributes": [{"name": "channel", "type": "categorical"}, {"name": "history", "type": "numeric"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"eval", "-protocol", "uplift", "-file", file, "-format", "rct", "-rct.control", "none", "-data.config-file", schema,
		"-experiment.outcome", "visit/14d", "-holdout.share", "0.3"}
	var out, errOut bytes.Buffer
	if err := app.Main(context.Background(), append(args, "-json"), app.Env{}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	rankings := map[string]float64{}
	dec := json.NewDecoder(&out)
	var summary map[string]any
	for dec.More() {
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			t.Fatal(err)
		}
		if r, ok := row["ranking"].(string); ok {
			rankings[r] = row["qini"].(float64)
		} else {
			summary = row
		}
	}
	if len(rankings) != 3 || rankings["model"] < 0.1 || rankings["baseline"] < 0.1 || rankings["random"] > 0.08 {
		t.Fatalf("rankings %v: the channel decides who the e-mail moves, so both models should find it", rankings)
	}
	if summary == nil || summary["served"] == nil {
		t.Fatalf("no summary line: %v", summary)
	}
	out.Reset()
	if err := app.Main(context.Background(), args, app.Env{}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"outcome visit within 14d", "30% of shoppers held out", "email", "model", "baseline", "random", "a run serves the"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	// A window longer than the follow-up the table covers leaves no
	// outcome known, and says so.
	err := app.Main(context.Background(), []string{"eval", "-protocol", "uplift", "-file", file, "-format", "rct", "-rct.control", "none",
		"-rct.follow-up", "72h", "-experiment.outcome", "visit/14d"}, app.Env{}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "outcome window") {
		t.Fatalf("window past the data: %v", err)
	}
}
