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
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/trainer/bench/datasets"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/report"
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
	Seed uint64
	K    int
	// Neighbors kept per item in the picked model (default 400, about a
	// quarter of the catalogue; fewer cost precision, see the /full row).
	Neighbors int
	// SessionGap splits each user's ratings into sessions where more than
	// this passes between two ratings (default one minute; MovieLens users
	// rate in bursts, film after film).
	SessionGap time.Duration
	Search     *pipeline.RecSearch // default pipeline.DefaultRecSearch
	// Log, if set, is told every configuration tried on validation.
	Log func(c pipeline.RecConfig, metrics map[string]float64, err error)
}

// ML100K runs the protocol on the files in dir: each model family's best
// configuration on validation, refitted on the whole training part and
// scored on the test part.
func ML100K(dir string, o ML100KOptions) ([]Row, error) {
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.K == 0 {
		o.K = 10
	}
	if o.Neighbors == 0 {
		o.Neighbors = 400
	}
	if o.SessionGap == 0 {
		o.SessionGap = time.Minute
	}
	search := pipeline.DefaultRecSearch(o.Neighbors)
	search.KNN = 100
	if o.Search != nil {
		search = *o.Search
	}
	ml, err := datasets.LoadMovieLens(dir)
	if err != nil {
		return nil, fmt.Errorf("ml-100k: %w", err)
	}
	split := datasets.RandomSplit(ml, 0.2, o.Seed, o.SessionGap)
	valid := fit.Holdout(split.Train, 0.2, o.Seed)
	families, err := pipeline.SearchRecommenders(context.Background(), valid.Train, valid.Test, ml.Items, o.K, search, o.Log)
	if err != nil {
		return nil, err
	}
	pick := pipeline.Pick(families)
	var rows []Row
	for _, f := range families {
		t0 := time.Now()
		s, err := pipeline.FitItemSim(split.Train, ml.Items, f.Config)
		if err != nil {
			return nil, err
		}
		secs := time.Since(t0).Seconds()
		p := params(f.Config)
		p["family"] = f.Name
		p["validation_ndcg"] = fmt.Sprintf("%.4f", f.NDCG)
		rows = append(rows, Row{Model: f.Config.String(), Params: p, Metrics: pipeline.EvaluateItemSim(s, split.Train, split.Test, o.K), Picked: f.Name == pick.Name, Seconds: secs})
	}
	// Reference row: the textbook item-kNN (plain cosine, every neighbour),
	// which the pick must not score below.
	plain := pipeline.RecConfig{Method: "itemknn-cosine", K: fit.AllNeighbors}
	t0 := time.Now()
	s, err := pipeline.FitItemSim(split.Train, ml.Items, plain)
	if err != nil {
		return nil, err
	}
	p := params(plain)
	p["note"] = "reference: plain cosine item-kNN with every neighbour"
	rows = append(rows, Row{Model: plain.String() + "/reference", Params: p, Metrics: pipeline.EvaluateItemSim(s, split.Train, split.Test, o.K), Seconds: time.Since(t0).Seconds()})
	// Reference row: the pick without truncating its weights, to show what
	// keeping o.Neighbors per item for serving costs.
	if c := pick.Config; c.Method == "ease" {
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
	switch {
	case c.K == fit.AllNeighbors:
		p["neighbors"] = "all"
	case c.K > 0:
		p["neighbors"] = fmt.Sprint(c.K)
	}
	if c.Method == "ease" {
		p["lambda"] = fmt.Sprint(c.Lambda)
		for name, v := range map[string]float64{"dropout": c.Dropout, "sessions": c.Sessions, "spectral": c.Spectral} {
			if v > 0 {
				p[name] = fmt.Sprint(v)
			}
		}
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
	for _, r := range rows {
		if err := report.WriteJSON(w, r); err != nil {
			return err
		}
	}
	return nil
}
