package artifact

import "fmt"

// ArmModel is a response model for one experiment arm: conversion log-odds
// and spend given conversion, on the uplift model's standardized features.
//
// An offer arm may also carry a model fitted to the offer's effect on the
// conversion probability itself (not to either arm's conversions): either
// Lift, a correction to the conversion models' difference (the arm's
// conversion probability is its Conversion model's plus Lift), or Effect,
// which replaces that difference (the arm's conversion probability is
// control's plus Effect; the arm's Conversion model is then kept for
// inspection only). Either way the probability is clamped to [0, 1].
// An Effect may have a linear part, EffectLinear, added to its trees.
type ArmModel struct {
	Arm          string  `json:"arm"`
	Conversion   Linear  `json:"conversion"`
	Spend        Linear  `json:"spend"`
	Lift         *Trees  `json:"lift,omitempty"`
	Effect       *Trees  `json:"effect,omitempty"`
	EffectLinear *Linear `json:"effect_linear,omitempty"`
	N            int     `json:"n"` // training examples
}

// Uplift holds a response model for the control arm and one for each offer
// arm (however the trainer fitted them: separately, or the offer arms
// jointly), so the server can estimate what an offer changes for a
// particular user.
type Uplift struct {
	Features []string     `json:"features"`
	Scaler   Standardizer `json:"scaler"`
	Control  ArmModel     `json:"control"`
	Arms     []ArmModel   `json:"arms"`

	byArm map[string]int
}

// Kind implements Artifact.
// A model with any effect model's linear part is of
// KindUpliftEffectLinear, else one with any effect model of
// KindUpliftEffect, else one with any correction of KindUpliftLift, so
// readers that predate any of them refuse it.
func (u *Uplift) Kind() string {
	kind := KindUplift
	for _, a := range u.Arms {
		switch {
		case a.EffectLinear != nil:
			return KindUpliftEffectLinear
		case a.Effect != nil:
			kind = KindUpliftEffect
		case a.Lift != nil && kind == KindUplift:
			kind = KindUpliftLift
		}
	}
	return kind
}

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
		if a.Lift != nil {
			if err := a.Lift.Validate(n); err != nil {
				return fmt.Errorf("uplift arm %s lift: %w", a.Arm, err)
			}
		}
		if a.Effect != nil {
			if err := a.Effect.Validate(n); err != nil {
				return fmt.Errorf("uplift arm %s effect: %w", a.Arm, err)
			}
		}
		if a.Lift != nil && a.Effect != nil {
			return fmt.Errorf("uplift arm %s has both a lift and an effect model", a.Arm)
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
	if u.Control.Lift != nil || u.Control.Effect != nil || u.Control.EffectLinear != nil {
		return fmt.Errorf("uplift: the control arm %q has a lift or effect model", u.Control.Arm)
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
	switch {
	case a.Effect != nil:
		effect := a.Effect.Eval(z)
		if a.EffectLinear != nil {
			effect += a.EffectLinear.Eval(z)
		}
		r.PTreated = clamp01(r.PControl + effect)
	case a.Lift != nil:
		r.PTreated = clamp01(r.PTreated + a.Lift.Eval(z))
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
