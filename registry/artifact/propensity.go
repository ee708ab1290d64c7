package artifact

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Propensity predicts whether a user buys in the next period (logistic
// regression, probability in [0,1]) and how much they spend (linear
// regression), from the same standardized features.
type Propensity struct {
	Features []string     `json:"features"`
	Scaler   Standardizer `json:"scaler"`
	// Logit gives the purchase log-odds.
	Logit Linear `json:"logit"`
	// Spend gives expected next-period spend; negative predictions clip to 0.
	Spend Linear `json:"spend"`
}

// Kind implements Artifact.
func (*Propensity) Kind() string { return KindPropensity }

// Validate implements Artifact.
func (p *Propensity) Validate() error {
	n := len(p.Features)
	if n == 0 {
		return fmt.Errorf("propensity model has no features")
	}
	if err := p.Scaler.Validate(n); err != nil {
		return fmt.Errorf("propensity: %w", err)
	}
	if err := p.Logit.Validate(n); err != nil {
		return fmt.Errorf("propensity logit: %w", err)
	}
	if err := p.Spend.Validate(n); err != nil {
		return fmt.Errorf("propensity spend: %w", err)
	}
	return nil
}

// Contribution is one feature's additive effect on the log-odds.
type Contribution struct {
	Feature      string
	Value        float64
	Contribution float64
}

// Prediction is a propensity model's answer.
type Prediction struct {
	Probability   float64
	ExpectedSpend float64
	LogOdds       float64
	Contributions []Contribution // largest |Contribution| first; nil unless asked
}

// Predict scores raw feature values x (in Features order).
func (p *Propensity) Predict(x []float64, explain bool) Prediction {
	var buf [64]float64 // no allocation for the usual feature counts
	z := buf[:0]
	if len(x) > len(buf) {
		z = make([]float64, len(x))
	}
	z = z[:len(x)]
	p.Scaler.Apply(x, z)
	lo := p.Logit.Eval(z)
	out := Prediction{LogOdds: lo, Probability: Sigmoid(lo), ExpectedSpend: math.Max(0, p.Spend.Eval(z))}
	if explain {
		out.Contributions = make([]Contribution, len(x))
		for i := range x {
			out.Contributions[i] = Contribution{Feature: p.Features[i], Value: x[i], Contribution: p.Logit.Coef[i] * z[i]}
		}
		slices.SortStableFunc(out.Contributions, func(a, b Contribution) int {
			return cmp.Compare(math.Abs(b.Contribution), math.Abs(a.Contribution))
		})
	}
	return out
}
