package artifact

import "fmt"

// ArmModel is a response model for one experiment arm: conversion log-odds
// and spend given conversion, on the uplift model's standardized features.
//
// An offer arm may also carry a model fitted to the offer's effect on the
// conversion probability itself (not to either arm's conversions), Effect,
// which replaces the conversion models' difference: the arm's conversion
// probability is control's plus Effect, clamped to [0, 1], and the arm's
// Conversion model is kept for inspection only. An Effect may have a
// linear part, EffectLinear, added to its trees.
type ArmModel struct {
	Arm          string  `json:"arm"`
	Conversion   Linear  `json:"conversion"`
	Spend        Linear  `json:"spend"`
	Effect       *Trees  `json:"effect,omitempty"`
	EffectLinear *Linear `json:"effect_linear,omitempty"`
	N            int     `json:"n"` // training examples
}

// Uplift holds a response model for the control arm and one for each offer
// arm, so the server can estimate what an offer changes for a
// particular user.
type Uplift struct {
	Features []string     `json:"features"`
	Scaler   Standardizer `json:"scaler"`
	Control  ArmModel     `json:"control"`
	Arms     []ArmModel   `json:"arms"`

	byArm map[string]int
}

// Kind implements Artifact.
func (u *Uplift) Kind() string { return KindUplift }

// Validate implements Artifact.
func (u *Uplift) Validate() error {
	n := len(u.Features)
	if n == 0 {
		return fmt.Errorf("uplift model has no features")
	}
	if err := u.Scaler.Validate(n); err != nil {
		return fmt.Errorf("uplift: %w", err)
	}
	if len(u.Arms) == 0 {
		return fmt.Errorf("uplift model has no treatment arms")
	}
	seen := map[string]bool{}
	for _, a := range append([]ArmModel{u.Control}, u.Arms...) {
		if a.Arm == "" || seen[a.Arm] {
			return fmt.Errorf("uplift: empty or duplicate arm %q", a.Arm)
		}
		seen[a.Arm] = true
		if err := a.Conversion.Validate(n); err != nil {
			return fmt.Errorf("uplift arm %s conversion: %w", a.Arm, err)
		}
		if err := a.Spend.Validate(n); err != nil {
			return fmt.Errorf("uplift arm %s spend: %w", a.Arm, err)
		}
		if a.Effect != nil {
			if err := a.Effect.Validate(n); err != nil {
				return fmt.Errorf("uplift arm %s effect: %w", a.Arm, err)
			}
		}
		if a.EffectLinear != nil {
			if a.Effect == nil {
				return fmt.Errorf("uplift arm %s has a linear part of an effect model but no effect model", a.Arm)
			}
			if err := a.EffectLinear.Validate(n); err != nil {
				return fmt.Errorf("uplift arm %s effect's linear part: %w", a.Arm, err)
			}
		}
	}
	if u.Control.Effect != nil || u.Control.EffectLinear != nil {
		return fmt.Errorf("uplift: the control arm %q has an effect model", u.Control.Arm)
	}
	return nil
}

func (u *Uplift) prepare() {
	u.byArm = make(map[string]int, len(u.Arms))
	for i, a := range u.Arms {
		u.byArm[a.Arm] = i
	}
}

// Prepare builds the arm index (Decode calls it).
func (u *Uplift) Prepare() { u.prepare() }

// Response is the predicted behaviour with and without one offer.
type Response struct {
	PTreated, PControl         float64 // conversion probabilities
	SpendTreated, SpendControl float64 // spend given conversion
}

// Predict estimates the response to arm for raw features x.
func (u *Uplift) Predict(x []float64, arm string) (Response, bool) {
	i, ok := u.byArm[arm]
	if !ok {
		return Response{}, false
	}
	z := make([]float64, len(x))
	u.Scaler.Apply(x, z)
	a := &u.Arms[i]
	r := Response{
		PTreated: Sigmoid(a.Conversion.Eval(z)), PControl: Sigmoid(u.Control.Conversion.Eval(z)),
		SpendTreated: max(0, a.Spend.Eval(z)), SpendControl: max(0, u.Control.Spend.Eval(z)),
	}
	if a.Effect != nil {
		effect := a.Effect.Eval(z)
		if a.EffectLinear != nil {
			effect += a.EffectLinear.Eval(z)
		}
		r.PTreated = clamp01(r.PControl + effect)
	}
	return r, true
}

// ArmNames lists the treatment arms.
func (u *Uplift) ArmNames() []string {
	out := make([]string, len(u.Arms))
	for i, a := range u.Arms {
		out[i] = a.Arm
	}
	return out
}
