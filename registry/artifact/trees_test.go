package artifact_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

// liftedUplift has one offer arm whose effect a one-split tree corrects:
// +0.2 for f <= 0.5, −0.3 above.
func liftedUplift() *artifact.Uplift {
	return &artifact.Uplift{Features: []string{"f"}, Scaler: artifact.Standardizer{Mean: []float64{0}, Scale: []float64{1}},
		Control: artifact.ArmModel{Arm: "control", Conversion: artifact.Linear{Coef: []float64{0}}, Spend: artifact.Linear{Coef: []float64{0}}},
		Arms: []artifact.ArmModel{{Arm: "gift", Conversion: artifact.Linear{Coef: []float64{0}}, Spend: artifact.Linear{Coef: []float64{0}},
			Lift: &artifact.Trees{Base: 0.05, Trees: []artifact.Tree{{
				Feature: []int{0, -1, -1}, Threshold: []float64{0.5, 0, 0}, Left: []int{1, 0, 0}, Right: []int{2, 0, 0}, Value: []float64{0, 0.15, -0.35},
			}}}}}}
}

// effectUplift is liftedUplift with the tree as an effect model instead
// of a correction, and conversion models that disagree: control 0.5, the
// offer arm sigmoid(1).
func effectUplift() *artifact.Uplift {
	u := liftedUplift()
	u.Arms[0].Effect, u.Arms[0].Lift = u.Arms[0].Lift, nil
	u.Arms[0].Conversion.Intercept = 1
	return u
}

// A correction moves the arm's own probability (both conversion models
// say 0.5 there); an effect model replaces the difference, so the arm's
// conversion model (sigmoid(1) ≈ 0.73) plays no part. Either way the
// probability stays in [0, 1].
func TestUpliftTreesMoveTheTreatedProbability(t *testing.T) {
	for _, c := range []struct {
		name    string
		kind    string
		model   func() *artifact.Uplift
		trees   func(*artifact.Uplift) *artifact.Trees
		base    float64 // a base that takes the probability out of range
		clamped float64
	}{
		{"lift", artifact.KindUpliftLift, liftedUplift, func(u *artifact.Uplift) *artifact.Trees { return u.Arms[0].Lift }, 5, 1},
		{"effect", artifact.KindUpliftEffect, effectUplift, func(u *artifact.Uplift) *artifact.Trees { return u.Arms[0].Effect }, -5, 0},
	} {
		u, err := artifact.Decode(c.kind, blobsOf(t, c.model()))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, p := range []struct{ f, want float64 }{{0, 0.7}, {0.5, 0.7}, {2, 0.2}} {
			r, ok := u.(*artifact.Uplift).Predict([]float64{p.f}, "gift")
			if !ok || r.PControl != 0.5 || math.Abs(r.PTreated-p.want) > 1e-12 {
				t.Errorf("%s, f=%v: %+v, want treated %v", c.name, p.f, r, p.want)
			}
		}
		out := c.model()
		c.trees(out).Base = c.base
		out.Prepare()
		if r, _ := out.Predict([]float64{0}, "gift"); r.PTreated != c.clamped {
			t.Errorf("%s: treated probability %v", c.name, r.PTreated)
		}
	}
	if _, err := artifact.Decode(artifact.KindUpliftLift, blobsOf(t, effectUplift())); !errors.Is(err, registry.ErrCorrupt) {
		t.Errorf("v3 blob read as v2: %v", err)
	}
}

func TestInvalidEffectRefused(t *testing.T) {
	u := effectUplift()
	u.Arms[0].Effect.Trees[0].Value[1] = math.Inf(-1)
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("infinite leaf: want ErrInvalid, got %v", err)
	}
	u = effectUplift()
	u.Arms[0].Lift = liftedUplift().Arms[0].Lift
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("lift and effect on one arm: want ErrInvalid, got %v", err)
	}
	u = effectUplift()
	u.Control.Effect = u.Arms[0].Effect
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("effect on control: want ErrInvalid, got %v", err)
	}
}

func TestInvalidLiftRefused(t *testing.T) {
	for name, spoil := range map[string]func(*artifact.Trees){
		"NaN leaf":          func(l *artifact.Trees) { l.Trees[0].Value[2] = math.NaN() },
		"infinite base":     func(l *artifact.Trees) { l.Base = math.Inf(1) },
		"child before node": func(l *artifact.Trees) { l.Trees[0].Left[0] = 0 },
		"child out of tree": func(l *artifact.Trees) { l.Trees[0].Right[0] = 3 },
		"unknown feature":   func(l *artifact.Trees) { l.Trees[0].Feature[0] = 1 },
		"ragged arrays":     func(l *artifact.Trees) { l.Trees[0].Value = l.Trees[0].Value[:2] },
		"empty tree":        func(l *artifact.Trees) { l.Trees[0] = artifact.Tree{} },
	} {
		u := liftedUplift()
		spoil(u.Arms[0].Lift)
		if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	u := liftedUplift()
	u.Control.Lift = u.Arms[0].Lift
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("lift on control: want ErrInvalid, got %v", err)
	}
}

// BenchmarkUpliftPredict scores one shopper for one offer with and without
// a correction of 1,500 full trees of depth 3 on 20 features, the largest
// the trainer's defaults publish (the average of five cross-validation
// runs of at most 300 trees each; go test -run '^$' -bench UpliftPredict
// ./registry/artifact/).
func BenchmarkUpliftPredict(b *testing.B) {
	const d = 20
	linear := func() artifact.Linear { return artifact.Linear{Coef: make([]float64, d)} }
	u := &artifact.Uplift{Scaler: artifact.Standardizer{Mean: make([]float64, d), Scale: make([]float64, d)},
		Control: artifact.ArmModel{Arm: "control", Conversion: linear(), Spend: linear()},
		Arms:    []artifact.ArmModel{{Arm: "gift", Conversion: linear(), Spend: linear()}}}
	for j := range d {
		u.Features = append(u.Features, fmt.Sprintf("f%d", j))
		u.Scaler.Scale[j] = 1
	}
	lift := &artifact.Trees{}
	for k := range 1500 {
		// A full tree of depth 3: 7 splits, then 8 leaves.
		var t artifact.Tree
		for i := range 15 {
			f, l, r := (k+i)%d, 2*i+1, 2*i+2
			if i >= 7 {
				f, l, r = -1, 0, 0
			}
			t.Feature, t.Threshold = append(t.Feature, f), append(t.Threshold, 0.1*float64(i%3-1))
			t.Left, t.Right, t.Value = append(t.Left, l), append(t.Right, r), append(t.Value, 0.001)
		}
		lift.Trees = append(lift.Trees, t)
	}
	x := make([]float64, d)
	for j := range x {
		x[j] = float64(j%5) - 2
	}
	for _, c := range []struct {
		name string
		lift *artifact.Trees
	}{{"difference", nil}, {"corrected", lift}} {
		b.Run(c.name, func(b *testing.B) {
			u.Arms[0].Lift = c.lift
			if err := u.Validate(); err != nil {
				b.Fatal(err)
			}
			u.Prepare()
			for range b.N {
				u.Predict(x, "gift")
			}
		})
	}
}

// A corrected model has a kind of its own, so that readers which would
// ignore the corrections refuse it, and a blob cannot claim the older
// kind while holding them.
func TestLiftHasItsOwnKind(t *testing.T) {
	u := liftedUplift()
	if u.Kind() != artifact.KindUpliftLift || artifact.Family(u.Kind()) != artifact.Family(artifact.KindUplift) {
		t.Fatalf("kind %s", u.Kind())
	}
	plain := liftedUplift()
	plain.Arms[0].Lift = nil
	if plain.Kind() != artifact.KindUplift {
		t.Fatalf("kind without corrections %s", plain.Kind())
	}
	if k := effectUplift().Kind(); k != artifact.KindUpliftEffect || artifact.Family(k) != artifact.Family(artifact.KindUplift) {
		t.Fatalf("kind with an effect model %s", k)
	}
	if _, err := artifact.Decode(artifact.KindUplift, blobsOf(t, u)); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("v2 blob read as v1: %v", err)
	}
	// Rewrite the envelope's kind: the payload still holds corrections.
	raw := blobsOf(t, u)[artifact.BlobName]
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	env, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	env = bytes.Replace(env, []byte(`"kind":"uplift/v2"`), []byte(`"kind":"uplift/v1"`), 1)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(env)
	zw.Close()
	if _, err := artifact.Decode(artifact.KindUplift, map[string][]byte{artifact.BlobName: buf.Bytes()}); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("corrections under the v1 kind: %v", err)
	}
}

// An effect model's linear part adds to its trees, makes the model a kind
// of its own (a reader that knows only uplift/v3 would drop it and serve
// other effects than the ones evaluated), and is refused where it cannot
// be served: without trees to add to, on control, of the wrong width or
// not finite.
func TestEffectLinearPartAddsToTheTrees(t *testing.T) {
	withLinear := func() *artifact.Uplift {
		u := effectUplift()
		u.Arms[0].EffectLinear = &artifact.Linear{Intercept: 0.1, Coef: []float64{-0.05}}
		return u
	}
	u := withLinear()
	if u.Kind() != artifact.KindUpliftEffectLinear || artifact.Family(u.Kind()) != artifact.Family(artifact.KindUplift) {
		t.Fatalf("kind %s", u.Kind())
	}
	got, err := artifact.Decode(artifact.KindUpliftEffectLinear, blobsOf(t, u))
	if err != nil {
		t.Fatal(err)
	}
	// Control 0.5; trees +0.2 up to f = 0.5, −0.3 above; linear 0.1 − 0.05f.
	for _, p := range []struct{ f, want float64 }{{0, 0.8}, {0.5, 0.775}, {2, 0.2}} {
		r, ok := got.(*artifact.Uplift).Predict([]float64{p.f}, "gift")
		if !ok || math.Abs(r.PTreated-p.want) > 1e-12 {
			t.Errorf("f=%v: treated %v, want %v", p.f, r.PTreated, p.want)
		}
	}
	if _, err := artifact.Decode(artifact.KindUpliftEffect, blobsOf(t, u)); !errors.Is(err, registry.ErrCorrupt) {
		t.Errorf("v4 blob read as v3: %v", err)
	}
	for name, spoil := range map[string]func(*artifact.Uplift){
		"without trees":   func(u *artifact.Uplift) { u.Arms[0].Effect = nil },
		"on control":      func(u *artifact.Uplift) { u.Control.EffectLinear = u.Arms[0].EffectLinear },
		"wrong width":     func(u *artifact.Uplift) { u.Arms[0].EffectLinear.Coef = []float64{1, 2} },
		"NaN coefficient": func(u *artifact.Uplift) { u.Arms[0].EffectLinear.Coef[0] = math.NaN() },
	} {
		u := withLinear()
		spoil(u)
		if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}
