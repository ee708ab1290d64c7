package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/app"
)

func TestEvalExperimentPrintsEachArm(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := app.Main(ctx, []string{"eval", "-protocol", "experiment", "-size", "tiny"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// Header, column names, control, then the four offer arms.
	if len(lines) != 7 || !strings.HasPrefix(lines[2], "control") {
		t.Fatalf("table:\n%s", out.String())
	}
	for _, l := range lines[3:] {
		if !strings.Contains(l, "[") || !strings.Contains(l, "%)") {
			t.Errorf("arm row without lift, interval and relative change: %q", l)
		}
	}

	out.Reset()
	if err := app.Main(ctx, []string{"eval", "-protocol", "experiment", "-size", "tiny", "-json"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	arms := 0
	for dec.More() {
		var r struct {
			Arm        string
			Conversion map[string]float64
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		c := r.Conversion
		if r.Arm == "" || !(c["ci_lo"] <= c["lift"] && c["lift"] <= c["ci_hi"]) || c["n_treated"] == 0 {
			t.Errorf("arm %q: conversion %v", r.Arm, c)
		}
		arms++
	}
	if arms != 4 {
		t.Fatalf("%d arms in the JSON output", arms)
	}
}

// A step under an hour (or negative) is refused with the flag's name
// before any work, by the trainer and by eval alike.
func TestExperimentPeriodFlags(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"eval", "-protocol", "experiment", "-size", "tiny", "-experiment.step", "-5h"},
		{"eval", "-protocol", "uplift", "-size", "tiny", "-experiment.lookback", "24h", "-experiment.step", "48h"},
		{"-once", "-store.dir", t.TempDir(), "-experiment.step", "30m"},
	} {
		var out, errOut bytes.Buffer
		if err := app.Main(ctx, args, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-experiment.step") {
			t.Errorf("%v: %v", args, err)
		}
	}
	for _, every := range []string{"1m", "1000h"} {
		var out, errOut bytes.Buffer
		if err := app.Main(ctx, []string{"eval", "-protocol", "uplift", "-size", "tiny", "-served.every", every}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-served.every") {
			t.Errorf("-served.every %s: %v", every, err)
		}
	}
}

// An unknown uplift learner is refused with the flag's name before any
// work, by the trainer and by eval alike.
func TestUpliftEffectFlags(t *testing.T) {
	ctx := context.Background()
	for flag, args := range map[string][]string{
		"-effect":        {"eval", "-protocol", "uplift", "-size", "tiny", "-effect", "forest"},
		"-uplift.effect": {"-once", "-store.dir", t.TempDir(), "-uplift.effect", "forest"},
	} {
		var out, errOut bytes.Buffer
		if err := app.Main(ctx, args, &out, &errOut); err == nil || !strings.Contains(err.Error(), flag+": unknown uplift effect") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// -uplift.effect reaches the training run: difference publishes offer arms
// without effect trees, dr-pooled and dr-trees with a correction (uplift/v2),
// the default with effect trees and their linear terms (uplift/v4).
func TestUpliftEffectReachesTheRun(t *testing.T) {
	for effect, kind := range map[string]string{"difference": artifact.KindUplift, "dr-trees": artifact.KindUpliftLift,
		"dr-pooled": artifact.KindUpliftLift, "dr": artifact.KindUpliftEffectLinear} {
		dir := t.TempDir()
		var out, errOut bytes.Buffer
		args := []string{"-once", "-store.dir", dir, "-generate", "tiny", "-models", "uplift", "-uplift.effect", effect}
		if err := app.Main(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", effect, err, errOut.String())
		}
		blobs, err := filepath.Glob(filepath.Join(dir, "models", "uplift", "versions", "*", "blobs", artifact.BlobName))
		if err != nil || len(blobs) != 1 {
			t.Fatalf("%s: published blobs %v (%v)", effect, blobs, err)
		}
		data, err := os.ReadFile(blobs[0])
		if err != nil {
			t.Fatal(err)
		}
		a, err := artifact.Decode(kind, map[string][]byte{artifact.BlobName: data})
		if err != nil {
			t.Fatal(err)
		}
		for _, arm := range a.(*artifact.Uplift).Arms {
			withEffect := kind == artifact.KindUpliftEffectLinear
			if (arm.Lift != nil) != (kind == artifact.KindUpliftLift) || (arm.Effect != nil) != withEffect || (arm.EffectLinear != nil) != withEffect {
				t.Errorf("%s: arm %s has a correction %t, effect trees %t, a linear term %t", effect, arm.Arm, arm.Lift != nil, arm.Effect != nil, arm.EffectLinear != nil)
			}
		}
	}
}

// On the tiny shop some uplift figures are not numbers (no sleeping dog
// among the users the trace is read for): the JSON output says null for
// them rather than failing.
func TestUpliftJSONWithUndefinedFigures(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := app.Main(context.Background(), []string{"eval", "-protocol", "uplift", "-size", "tiny", "-served.every", "0", "-json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var r struct {
		Arms           []struct{ Arm string }
		SleepingDogAUC *float64
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(r.Arms) != 4 || r.SleepingDogAUC != nil {
		t.Fatalf("%d arms, sleeping-dog AUC %v", len(r.Arms), r.SleepingDogAUC)
	}
}

// Over several shops, every figure of the mean line is the mean of the
// shops' lines (to their printed rounding), NaN where a shop's is,
// including those of the model fitted on probabilities.
func TestUpliftShopsMeanLine(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := app.Main(context.Background(), []string{"eval", "-protocol", "uplift", "-size", "tiny", "-shops", "2", "-served.every", "24h", "-on-probabilities"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	number := regexp.MustCompile(`-?\d+\.\d+|NaN`)
	figures := func(prefix string) []float64 {
		for _, l := range strings.Split(out.String(), "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				var fs []float64
				for _, m := range number.FindAllString(rest, -1) {
					f, err := strconv.ParseFloat(m, 64)
					if err != nil {
						t.Fatal(err)
					}
					fs = append(fs, f)
				}
				return fs
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, out.String())
		return nil
	}
	a, b, mean := figures("seed 1: "), figures("seed 2: "), figures("mean over 2 shops: ")
	if !strings.Contains(out.String(), "fitted on the sessions' probabilities instead of outcomes: model / truth") {
		t.Errorf("no figures of the model fitted on probabilities in\n%s", out.String())
	}
	if len(a) < 16 || len(a) != len(b) || len(a) != len(mean) {
		t.Fatalf("figures: %v, %v, mean %v", a, b, mean)
	}
	for i := range mean {
		want := (a[i] + b[i]) / 2
		if math.IsNaN(want) != math.IsNaN(mean[i]) || math.Abs(want-mean[i]) > 0.006 {
			t.Errorf("figure %d: mean %v of %v and %v", i, mean[i], a[i], b[i])
		}
	}
}

// -uplift.equal-weights, -uplift.arm-linear and -uplift.shared-leaves
// reach the training run, and the manifest says how the effect trees
// weighed the exposures, whether their leaves held a value per arm and
// whether each arm had a linear term, with which penalty.
func TestUpliftLearnerFlagsReachTheRun(t *testing.T) {
	for _, c := range []struct {
		flags     []string
		want, not string
	}{
		{nil, "each weighted by the inverse of its variance, their splits shared by all offer arms and each leaf holding a value per arm, the splits also chosen on each arm's effect on add-to-carts where the log has carts without purchases (weight 3), then each arm's linear term (ridge, penalty 20000 rows)", "then its own trees"},
		{nil, "(at most 300 trees, learning rate 0.02, depth 3, at least 500 rows a leaf, leaf L2 1, 64 bins; the average of 5 runs, each leaving out a fold of shoppers and stopped where that fold's error was lowest)", "as many trees as"},
		{[]string{"-uplift.trees-refit"}, "(at most 300 trees, learning rate 0.02, depth 3, at least 500 rows a leaf, leaf L2 1, 64 bins; as many trees as 5-fold cross-validation over shoppers keeps)", "the average of"},
		{[]string{"-uplift.cart-weight", "10"}, "add-to-carts where the log has carts without purchases (weight 10)", ""},
		{[]string{"-uplift.cart-weight", "-1"}, "each leaf holding a value per arm, then each arm's linear term", "add-to-carts"},
		{[]string{"-uplift.equal-weights"}, "all weighted alike", ""},
		{[]string{"-uplift.arm-linear", "5000"}, "linear term (ridge, penalty 5000 rows)", ""},
		{[]string{"-uplift.arm-linear", "-1"}, "each leaf holding a value per arm", "linear term"},
		{[]string{"-uplift.shared-leaves"}, "first trees all offer arms share, then each arm's linear term (ridge, penalty 20000 rows), then its own trees", "add-to-carts"},
		{[]string{"-uplift.shared-leaves", "-uplift.arm-linear", "-1"}, "first trees all offer arms share, then each arm's own", "linear term"},
	} {
		dir := t.TempDir()
		var out, errOut bytes.Buffer
		args := append([]string{"-once", "-store.dir", dir, "-generate", "tiny", "-models", "uplift"}, c.flags...)
		if err := app.Main(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		manifests, err := filepath.Glob(filepath.Join(dir, "models", "uplift", "versions", "*", "manifest.json"))
		if err != nil || len(manifests) != 1 {
			t.Fatalf("manifests %v (%v)", manifests, err)
		}
		data, err := os.ReadFile(manifests[0])
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Params map[string]string }
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if got := m.Params["algorithm"]; !strings.Contains(got, c.want) || c.not != "" && strings.Contains(got, c.not) {
			t.Errorf("%v: algorithm %q, want it to say %q and not %q", c.flags, got, c.want, c.not)
		}
	}
}
