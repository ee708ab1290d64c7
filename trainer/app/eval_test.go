package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

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
