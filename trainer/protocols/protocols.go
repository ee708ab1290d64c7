// Package protocols runs named evaluation protocols, so the `eval` command,
// the benchmarks and anyone comparing models measure the same way.
//
// ml100k: MovieLens 100K as implicit feedback (every rating a positive); a
// seeded random 80/20 split of interactions; every user with at least one
// test item is evaluated; all items the user has not interacted with in
// training are ranked; top 10. Hyperparameters are chosen on a validation
// split carved out of the training part, never on the test part.
package protocols

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/trainer/datasets"
	"github.com/promoai/promo/trainer/pipeline"
)

// Row is one model's result.
type Row struct {
	Model   string             `json:"model"`
	Params  map[string]string  `json:"params"`
	Metrics map[string]float64 `json:"metrics"`
	Picked  bool               `json:"picked"`
	Seconds float64            `json:"fit_seconds"`
}

// ML100KOptions tune the protocol.
type ML100KOptions struct {
	Seed      uint64
	K         int
	Neighbors int // kept per item in the served model (default 200)
	Lambdas   []float64
}

// ML100K runs the protocol on the files in dir.
func ML100K(dir string, o ML100KOptions) ([]Row, error) {
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.K == 0 {
		o.K = 10
	}
	if o.Neighbors == 0 {
		o.Neighbors = 200
	}
	if len(o.Lambdas) == 0 {
		o.Lambdas = []float64{100, 300, 500, 1000}
	}
	ml, err := datasets.LoadMovieLens(dir)
	if err != nil {
		return nil, fmt.Errorf("ml-100k: %w", err)
	}
	split := datasets.RandomSplit(ml, 0.2, o.Seed)
	valid := datasets.Holdout(split.Train, 0.2, o.Seed)
	configs := []pipeline.RecConfig{
		{Method: "popularity"},
		{Method: "itemknn-cosine", K: 100},
		{Method: "itemknn-pearson", K: 100},
	}
	for _, l := range o.Lambdas {
		configs = append(configs, pipeline.RecConfig{Method: "ease", Lambda: l, K: o.Neighbors})
	}
	// The trainer's choice: best validation NDCG among the configurations.
	best, bestV := -1, -1.0
	for i, c := range configs {
		s, err := pipeline.FitItemSim(valid.Train, ml.Items, c)
		if err != nil {
			return nil, err
		}
		if v := pipeline.EvaluateItemSim(s, valid.Train, valid.Test, o.K)[fmt.Sprintf("ndcg@%d", o.K)]; v > bestV {
			best, bestV = i, v
		}
	}
	var rows []Row
	for i, c := range configs {
		t0 := time.Now()
		s, err := pipeline.FitItemSim(split.Train, ml.Items, c)
		if err != nil {
			return nil, err
		}
		secs := time.Since(t0).Seconds()
		rows = append(rows, Row{Model: c.String(), Params: params(c), Metrics: pipeline.EvaluateItemSim(s, split.Train, split.Test, o.K), Picked: i == best, Seconds: secs})
	}
	// Reference row: the best EASE without truncating its weights, to show
	// what truncation for serving costs.
	if c := configs[best]; c.Method == "ease" {
		full := c
		full.K = len(ml.Items)
		t0 := time.Now()
		s, err := pipeline.FitItemSim(split.Train, ml.Items, full)
		if err != nil {
			return nil, err
		}
		p := params(full)
		p["note"] = "all weights kept (reference; the served model keeps " + fmt.Sprint(o.Neighbors) + ")"
		rows = append(rows, Row{Model: full.String() + "/full", Params: p, Metrics: pipeline.EvaluateItemSim(s, split.Train, split.Test, o.K), Seconds: time.Since(t0).Seconds()})
	}
	return rows, nil
}

func params(c pipeline.RecConfig) map[string]string {
	p := map[string]string{"method": c.Method}
	if c.K > 0 {
		p["neighbors"] = fmt.Sprint(c.K)
	}
	if c.Method == "ease" {
		p["lambda"] = fmt.Sprint(c.Lambda)
	}
	return p
}

// PrintTable writes rows as an aligned table.
func PrintTable(w io.Writer, rows []Row, k int) {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := []string{"precision", "recall", "ndcg", "hit_rate", "coverage"}
	fmt.Fprint(t, "MODEL\t")
	for _, c := range cols {
		fmt.Fprintf(t, "%s@%d\t", strings.ToUpper(c[:1])+c[1:], k)
	}
	fmt.Fprintln(t, "FIT s\tPICKED")
	for _, r := range rows {
		fmt.Fprintf(t, "%s\t", r.Model)
		for _, c := range cols {
			fmt.Fprintf(t, "%.4f\t", r.Metrics[fmt.Sprintf("%s@%d", c, k)])
		}
		pick := ""
		if r.Picked {
			pick = "<- trainer's pick"
		}
		fmt.Fprintf(t, "%.2f\t%s\n", r.Seconds, pick)
	}
	t.Flush()
}

// PrintJSON writes one JSON object per row.
func PrintJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
