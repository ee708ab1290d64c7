package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

// On a generated shop the readout's conversion lift of each offer arm
// must agree with the true effects the shop was built with.
func TestExperimentReadoutFindsTheTrueEffects(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	truth := map[string]map[string]float64{}
	if _, err := shop.WriteTo(ctx, b, shop.Small(), func(tr shop.Truth) error {
		truth[tr.User] = tr.Uplift
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ds, err := pipeline.ExperimentData(ctx, b, pipeline.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pipeline.ExperimentReadout(ds)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		// The true average effect over this arm's exposures.
		var sum float64
		n := 0
		for _, e := range ds.Exposures {
			if e.Arm == r.Arm {
				sum += truth[ds.Users[e.User].ID][r.Arm]
				n++
			}
		}
		want := sum / float64(n)
		c, rev, rep := r.Conversion, r.Revenue, r.Repurchase
		t.Logf("%s: conversion lift %+.4f [%+.4f, %+.4f], true %+.4f; revenue %+.2f [%+.2f, %+.2f]; repurchase %+.4f [%+.4f, %+.4f]",
			r.Arm, c.Diff, c.CI.Lo, c.CI.Hi, want, rev.Diff, rev.CI.Lo, rev.CI.Hi, rep.Diff, rep.CI.Lo, rep.CI.Hi)
		if c.CI.Lo > want || want > c.CI.Hi {
			t.Errorf("%s: the conversion lift's interval [%.4f, %.4f] misses the true effect %.4f", r.Arm, c.CI.Lo, c.CI.Hi, want)
		}
		if c.CI.Lo <= 0 || rev.CI.Lo <= 0 {
			t.Errorf("%s: every offer raises conversion and revenue on this shop, but the intervals include 0: %+v, %+v", r.Arm, c.CI, rev.CI)
		}
		if r.Exposures != c.NTreated || rep.NTreated == 0 || rep.NTreated >= c.NTreated || rep.NControl >= c.NControl {
			t.Errorf("%s: %d exposures, %d/%d in the conversion comparison, %d/%d followed up for repurchase", r.Arm, r.Exposures, c.NTreated, c.NControl, rep.NTreated, rep.NControl)
		}
	}
}

// Exposures the server targeted (propensity 1) cannot measure effects: a
// log with only those says so instead of fitting on them.
func TestTargetedExposuresAreNotAnExperiment(t *testing.T) {
	_, b := shopOf(t, shop.Tiny())
	ds, err := pipeline.ExperimentData(context.Background(), b, pipeline.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	n := len(ds.Exposures)
	ds.Report.TargetedExposures, ds.Exposures = n, nil // as if the server had chosen every offer
	_, err = pipeline.ExperimentReadout(ds)
	if !errors.Is(err, fit.ErrNoData) || !strings.Contains(err.Error(), "targeted") || !strings.Contains(err.Error(), "-offers.exploration") {
		t.Fatalf("readout on targeted exposures only: %v", err)
	}
}

// An experiment step longer than the whole log makes one period, from
// the first event (features with no history), not from before the data.
func TestStepLongerThanTheLog(t *testing.T) {
	p := shop.Tiny()
	_, b := shopOf(t, p)
	long := time.Duration(p.Days+1) * 24 * time.Hour
	cfg := pipeline.Config{Logger: quiet(), Uplift: pipeline.UpliftConfig{Step: long, Lookback: long}}
	ds, err := pipeline.ExperimentData(context.Background(), b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	short, err := pipeline.ExperimentData(context.Background(), b, pipeline.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if !ds.Cutoff.Equal(short.Cutoff) || ds.Cutoff.Year() < 2000 || len(ds.Exposures) != len(short.Exposures) {
		t.Fatalf("one long period from %s with %d exposures; the weekly periods start %s with %d", ds.Cutoff, len(ds.Exposures), short.Cutoff, len(short.Exposures))
	}
	if _, err = pipeline.ExperimentReadout(ds); err != nil {
		t.Fatal(err)
	}
}

// The tiny shop's campaigns before its experiment had no control group and
// are logged as not randomized (propensity 1): the experiment data counts
// them but keeps only the experiment's exposures. And offers without any
// control exposure cannot be read out.
func TestCampaignsWithoutControlAreLeftOut(t *testing.T) {
	p := shop.Tiny()
	p.Start = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -p.Days)
	_, b := shopOf(t, p)
	ds, err := pipeline.ExperimentData(context.Background(), b, pipeline.Config{Logger: quiet(), Uplift: pipeline.UpliftConfig{Lookback: 90 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	experiment := p.Start.AddDate(0, 0, int(float64(p.Days)*(1-p.ExperimentShare)))
	if ds.Report.TargetedExposures == 0 || len(ds.Exposures) == 0 {
		t.Fatalf("want the campaigns counted as not randomized (%d) and the experiment kept (%d)", ds.Report.TargetedExposures, len(ds.Exposures))
	}
	var offers []features.Exposure
	for _, e := range ds.Exposures {
		if e.Time.Before(experiment) {
			t.Fatalf("a %s exposure at %s, before the experiment began on %s, was kept", e.Arm, e.Time, experiment)
		}
		if e.Arm != eventlog.ControlArm {
			offers = append(offers, e)
		}
	}
	ds.Exposures = offers // as if control had never been drawn
	_, err = pipeline.ExperimentReadout(ds)
	if !errors.Is(err, fit.ErrNoData) || !strings.Contains(err.Error(), "randomized control group") {
		t.Fatalf("readout on offers without control: %v", err)
	}
}

// A shopper with rows in several experiment periods is one cluster: the
// readout of stacked data equals that of the same exposures with one row
// per shopper.
func TestReadoutClustersByShopper(t *testing.T) {
	var perShopper, perPeriod features.Dataset
	for s := range 40 {
		id := fmt.Sprint("s", s)
		perShopper.Users = append(perShopper.Users, features.UserRow{ID: id})
		for period := range 3 {
			perPeriod.Users = append(perPeriod.Users, features.UserRow{ID: id})
			for k := range 2 {
				e := features.Exposure{Arm: []string{eventlog.ControlArm, "pct10"}[(s+period)%2], Converted: (s*7+period*3+k)%4 == 0, FollowedUp: true}
				e.User = s
				perShopper.Exposures = append(perShopper.Exposures, e)
				e.User = len(perPeriod.Users) - 1
				perPeriod.Exposures = append(perPeriod.Exposures, e)
			}
		}
	}
	want, err := pipeline.ExperimentReadout(&perShopper)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pipeline.ExperimentReadout(&perPeriod)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Conversion != want[0].Conversion {
		t.Fatalf("stacked rows: %+v, one row per shopper: %+v", got[0].Conversion, want[0].Conversion)
	}
}
