package artifact_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

// effectUplift has one offer arm whose effect is a one-split tree: +0.2
// for f <= 0.5, −0.3 above; its conversion models disagree (control 0.5,
// the offer arm sigmoid(1)), which the effect model overrides.
func effectUplift() *artifact.Uplift {
	return &artifact.Uplift{Features: []string{"f"}, Scaler: artifact.Standardizer{Mean: []float64{0}, Scale: []float64{1}},
		Control: artifact.ArmModel{Arm: "control", Conversion: artifact.Linear{Coef: []float64{0}}, Spend: artifact.Linear{Coef: []float64{0}}},
		Arms: []artifact.ArmModel{{Arm: "gift", Conversion: artifact.Linear{Intercept: 1, Coef: []float64{0}}, Spend: artifact.Linear{Coef: []float64{0}},
			Effect: &artifact.Trees{Base: 0.05, Trees: []artifact.Tree{{
				Feature: []int{0, -1, -1}, Threshold: []float64{0.5, 0, 0}, Left: []int{1, 0, 0}, Right: []int{2, 0, 0}, Value: []float64{0, 0.15, -0.35},
			}}}}}}
}

// An effect model replaces the conversion models' difference, so the
// arm's conversion model (sigmoid(1) ≈ 0.73) plays no part, and the
// probability stays in [0, 1].
func TestEffectMovesTheTreatedProbability(t *testing.T) {
	u, err := artifact.Decode(artifact.KindUplift, blobsOf(t, effectUplift()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ f, want float64 }{{0, 0.7}, {0.5, 0.7}, {2, 0.2}} {
		r, ok := u.(*artifact.Uplift).Predict([]float64{p.f}, "gift")
		if !ok || r.PControl != 0.5 || math.Abs(r.PTreated-p.want) > 1e-12 {
			t.Errorf("f=%v: %+v, want treated %v", p.f, r, p.want)
		}
	}
	out := effectUplift()
	out.Arms[0].Effect.Base = -5
	out.Prepare()
	if r, _ := out.Predict([]float64{0}, "gift"); r.PTreated != 0 {
		t.Errorf("treated probability %v, want it clamped to 0", r.PTreated)
	}
}

func TestInvalidEffectRefused(t *testing.T) {
	u := effectUplift()
	u.Arms[0].Effect.Trees[0].Value[1] = math.Inf(-1)
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("infinite leaf: want ErrInvalid, got %v", err)
	}
	u = effectUplift()
	u.Control.Effect = u.Arms[0].Effect
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("effect on control: want ErrInvalid, got %v", err)
	}
}

func TestInvalidTreesRefused(t *testing.T) {
	for name, spoil := range map[string]func(*artifact.Trees){
		"NaN leaf":          func(l *artifact.Trees) { l.Trees[0].Value[2] = math.NaN() },
		"infinite base":     func(l *artifact.Trees) { l.Base = math.Inf(1) },
		"child before node": func(l *artifact.Trees) { l.Trees[0].Left[0] = 0 },
		"child out of tree": func(l *artifact.Trees) { l.Trees[0].Right[0] = 3 },
		"unknown feature":   func(l *artifact.Trees) { l.Trees[0].Feature[0] = 1 },
		"ragged arrays":     func(l *artifact.Trees) { l.Trees[0].Value = l.Trees[0].Value[:2] },
		"empty tree":        func(l *artifact.Trees) { l.Trees[0] = artifact.Tree{} },
	} {
		u := effectUplift()
		spoil(u.Arms[0].Effect)
		if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}

// BenchmarkUpliftPredict scores one shopper for one offer with and without
// an effect model of 1,500 full trees of depth 3 on 20 features, the largest
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
	effect := &artifact.Trees{}
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
		effect.Trees = append(effect.Trees, t)
	}
	x := make([]float64, d)
	for j := range x {
		x[j] = float64(j%5) - 2
	}
	for _, c := range []struct {
		name   string
		effect *artifact.Trees
	}{{"difference", nil}, {"effect", effect}} {
		b.Run(c.name, func(b *testing.B) {
			u.Arms[0].Effect = c.effect
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

// envelope is an artifact blob of the given kind holding payload, as an
// older trainer wrote it.
func envelope(t *testing.T, kind, payload string) map[string][]byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	fmt.Fprintf(zw, `{"kind":%q,"payload":%s}`, kind, payload)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{artifact.BlobName: buf.Bytes()}
}

// The trainer writes the current kind only; older kinds whose payload the
// current type reads unchanged still load, and a retired kind is refused
// with a message that says to retrain, even when its blob would decode.
func TestOlderUpliftKinds(t *testing.T) {
	if k := effectUplift().Kind(); k != artifact.KindUplift {
		t.Fatalf("kind %s", k)
	}
	raw := blobsOf(t, effectUplift())[artifact.BlobName]
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	env, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := bytes.Cut(env, []byte(`"payload":`))
	payload = bytes.TrimSuffix(payload, []byte("}"))
	for _, kind := range []string{"uplift/v1", "uplift/v3"} {
		a, err := artifact.Decode(kind, envelope(t, kind, string(payload)))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if r, _ := a.(*artifact.Uplift).Predict([]float64{0}, "gift"); math.Abs(r.PTreated-0.7) > 1e-12 {
			t.Errorf("%s: treated %v, want 0.7", kind, r.PTreated)
		}
	}
	_, err = artifact.Decode("uplift/v2", envelope(t, "uplift/v2", string(payload)))
	if !errors.Is(err, registry.ErrCorrupt) || !strings.Contains(err.Error(), "retrain") {
		t.Errorf("retired uplift/v2: %v", err)
	}
	// The envelope must name the manifest's kind.
	if _, err := artifact.Decode("uplift/v3", envelope(t, "uplift/v1", string(payload))); !errors.Is(err, registry.ErrCorrupt) {
		t.Errorf("a v1 envelope read as v3: %v", err)
	}
}

// An effect model's linear part adds to its trees, and is refused where
// it cannot be served: without trees to add to, on control, of the wrong width or
// not finite.
func TestEffectLinearPartAddsToTheTrees(t *testing.T) {
	withLinear := func() *artifact.Uplift {
		u := effectUplift()
		u.Arms[0].EffectLinear = &artifact.Linear{Intercept: 0.1, Coef: []float64{-0.05}}
		return u
	}
	got, err := artifact.Decode(artifact.KindUplift, blobsOf(t, withLinear()))
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
