package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/trainer/app"
)

func TestEvalExperimentPrintsEachArm(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := app.Main(ctx, []string{"eval", "-protocol", "experiment", "-size", "tiny"}, app.Env{}, &out, &errOut); err != nil {
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
	if err := app.Main(ctx, []string{"eval", "-protocol", "experiment", "-size", "tiny", "-json"}, app.Env{}, &out, &errOut); err != nil {
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

// Settings a run cannot use are refused with their names before any
// work, by the trainer and by eval alike.
func TestInvalidSettingsAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "-protocol", "experiment", "-size", "tiny", "-experiment.step", "-5h"}, "experiment.step"},
		{[]string{"eval", "-protocol", "experiment", "-size", "tiny", "-experiment.lookback", "24h", "-experiment.step", "48h"}, "experiment.step"},
		{[]string{"-once", "-store.dir", t.TempDir(), "-experiment.step", "30m"}, "experiment.step"},
		{[]string{"-once", "-store.dir", t.TempDir(), "-models", "propensity,forest"}, `unknown model "forest"`},
		{[]string{"-once", "-store.dir", t.TempDir(), "-cf.weights", "view=-1"}, "view=-1"},
		{[]string{"eval", "-protocol", "ml100k", "-size", "tiny"}, "research protocols are promo-bench's"},
		{[]string{"eval", "-protocol", "uplift", "-file", "x.csv", "-size", "tiny"}, "-size shapes a generated shop"},
		{[]string{"eval", "-protocol", "uplift", "-size", "tiny", "-rct.design", "control=0.5,a=0.5"}, "-rct.design describes a -format rct file"},
		{[]string{"eval", "-protocol", "uplift", "-format", "rct"}, "-format describes -file"},
		{[]string{"eval", "-protocol", "uplift", "-size", "tiny", "-experiment.outcome", "visit/200d"}, "from 1h0m0s to 2160h0m0s"},
		{[]string{"eval", "-protocol", "uplift", "-size", "tiny", "-propensity.outcome", "revenue"}, "revenue per exposure is in every experiment readout"},
	} {
		var out, errOut bytes.Buffer
		if err := app.Main(ctx, c.args, app.Env{}, &out, &errOut); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error that says %q", c.args, err, c.want)
		}
	}
}

// The learners' hyper-parameters come from a file: a field it sets
// reaches the run (the manifest says how the model was fitted), a field
// it leaves out keeps its default, and an unknown field or a value the
// learner cannot use is refused before any work.
func TestLearnersFileReachesTheRun(t *testing.T) {
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "learners.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		file, want, not string
	}{
		{"", "(weight 3), then each arm's linear term (ridge, penalty 20000 rows)", ""},
		{`{"uplift": {"arm_linear": 5000}}`, "(weight 3), then each arm's linear term (ridge, penalty 5000 rows)", ""},
		{`{"uplift": {"cart_weight": 0, "arm_linear": 0}}`, "each leaf holding a value per arm, conversion models", "add-to-carts"},
		{`{"uplift": {"trees": {"depth": 2}}}`, "learning rate 0.02, depth 2, at least 500 rows a leaf", ""},
	} {
		dir := t.TempDir()
		args := []string{"-once", "-store.dir", dir, "-generate", "tiny", "-models", "uplift"}
		if c.file != "" {
			args = append(args, "-learners.config-file", write(c.file))
		}
		var out, errOut bytes.Buffer
		if err := app.Main(context.Background(), args, app.Env{}, &out, &errOut); err != nil {
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
		// "learner" is the main learner's, served or not ("algorithm"
		// names the model served: the baseline when the main learner is
		// not significantly better).
		if got := m.Params["learner"]; !strings.Contains(got, c.want) || c.not != "" && strings.Contains(got, c.not) {
			t.Errorf("%s: algorithm %q, want it to say %q and not %q", c.file, got, c.want, c.not)
		}
	}
	for body, want := range map[string]string{
		`{"uplift": {"effect": "forest"}}`:   `unknown field "effect"`,
		`{"uplift": {"trees": {"rate": 2}}}`: "uplift.trees.rate",
		`{"uplift": {"l2": -1}}`:             "uplift.l2",
		`{"recommender": {"neighbors": 0}}`:  "recommender.neighbors",
		`not json`:                           "learners' config",
	} {
		var out, errOut bytes.Buffer
		err := app.Main(context.Background(), []string{"-once", "-store.dir", t.TempDir(), "-learners.config-file", write(body)}, app.Env{}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error that says %q", body, err, want)
		}
	}
}

// The product's commands offer what an operator tunes, not the research
// knobs of the benchmark tree (promo-bench).
func TestHelpListsNoResearchKnobs(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"eval", "-h"}} {
		var out, errOut bytes.Buffer
		_ = app.Main(context.Background(), args, app.Env{}, &out, &errOut)
		help := errOut.String()
		if !strings.Contains(help, "-seed") {
			t.Fatalf("%v: no help printed:\n%s", args, help)
		}
		for _, knob := range []string{"uplift.", "oracle-trace", "on-probabilities", "trees.", "effect", "arm-linear", "cart-weight", "shared-leaves", "equal-weights", "separate-arms", "deviation", "l2"} {
			if strings.Contains(help, "  -"+knob) {
				t.Errorf("%v lists the research knob %q:\n%s", args, knob, help)
			}
		}
	}
}

// On a schedule, a trainer that finds no production version trains at
// once instead of leaving a new deployment without models until the first
// tick.
func TestScheduleTrainsAtOnceWithoutProduction(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- app.Main(ctx, []string{"-store.dir", dir, "-generate", "tiny", "-schedule", "@every 24h", "-models", "propensity", "-gate.first-auc", "0"}, app.Env{}, &out, &errOut)
	}()
	manifests := filepath.Join(dir, "models", "propensity", "aliases", "production.json")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(manifests); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the trainer stopped: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no production version after 60 s:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopping: %v", err)
	}
}
