package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/promoai/promo/registry"
)

// ReadoutDir holds the campaigns' readouts, one object per campaign
// (campaigns-readout/ID.json), written by the trainer.
const ReadoutDir = "campaigns-readout/"

// Verdicts of a comparison.
const (
	VerdictGain     = "significant gain"
	VerdictLoss     = "significant loss"
	VerdictNoEffect = "no detectable effect"
)

// Readout is what a campaign did, measured from the event log.
type Readout struct {
	Campaign   string    `json:"campaign"`
	ComputedAt time.Time `json:"computed_at"`
	// Exposures from From to To count; each shopper's outcomes are their
	// purchases within OutcomeDays of their first exposure.
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	OutcomeDays int       `json:"outcome_days"`
	// MarginRate turns revenue into profit.
	MarginRate float64 `json:"margin_rate"`
	Groups     []Group `json:"groups"`
	// Comparisons: the campaign's shoppers against its holdout first,
	// then each experiment arm against the experiment's control.
	Comparisons []Comparison `json:"comparisons"`
	// Spend is the campaign's spend (every replica's ledger) and Budget
	// its budget; FairnessGivenUp what the fairness guard's offers gave
	// up (the replicas' ledgers).
	Spend           float64 `json:"spend"`
	Budget          float64 `json:"budget"`
	FairnessGivenUp float64 `json:"fairness_given_up"`
	// Redemptions logged (promo_redeem with the campaign's id) and what
	// they really cost: each offer's cost on its order's value.
	Redemptions  int     `json:"redemptions"`
	RedeemedCost float64 `json:"redeemed_cost"`
	// Verdict is the first comparison's: did the campaign change
	// conversion against its holdout?
	Verdict string `json:"verdict"`
	// Note says what limits the readout (too few shoppers, say).
	Note string `json:"note,omitempty"`
	// Fairness: who got offers, per audited attribute.
	Fairness []Fairness `json:"fairness,omitempty"`
}

// DIFloor is the disparate-impact ratio below which offers are flagged as
// unfair to a group (the four-fifths rule).
const DIFloor = 0.8

// MinGroupShoppers is the fewest shoppers a group needs to count in a
// disparate-impact ratio: smaller ones would make it noise.
const MinGroupShoppers = 30

// Fairness is how often each group of an audited attribute was offered
// something, among the campaign's shoppers outside its holdout.
type Fairness struct {
	Attribute string          `json:"attribute"`
	Groups    []FairnessGroup `json:"groups"`
	// DI is the lowest group offer rate over the highest, among groups of
	// at least MinGroupShoppers (1 with fewer than two such groups);
	// BelowFloor when it is under DIFloor.
	DI         float64 `json:"di"`
	BelowFloor bool    `json:"below_floor"`
}

// FairnessGroup is one value of an audited attribute ("unknown" for
// shoppers without one).
type FairnessGroup struct {
	Value     string  `json:"value"`
	Shoppers  int     `json:"shoppers"`
	OfferRate float64 `json:"offer_rate"`
}

// Group is one set of shoppers and their outcomes.
type Group struct {
	Name     string `json:"name"` // "holdout", "campaign", or an experiment arm
	Shoppers int    `json:"shoppers"`
	// Conversion: the share who bought; RevenuePerShopper; AOV: revenue
	// per order; Repurchase: the share who bought again within the window
	// after their first purchase.
	Conversion        float64 `json:"conversion"`
	RevenuePerShopper float64 `json:"revenue_per_shopper"`
	AOV               float64 `json:"aov"`
	Repurchase        float64 `json:"repurchase"`
}

// Effect is a difference between two groups with its 95% interval.
type Effect struct {
	Diff float64 `json:"diff"`
	Lo   float64 `json:"lo"`
	Hi   float64 `json:"hi"`
}

// Comparison is one group against its control.
type Comparison struct {
	Group   string `json:"group"`
	Control string `json:"control"`
	// Per shopper: conversion and revenue differences, repurchase.
	Conversion Effect `json:"conversion"`
	Revenue    Effect `json:"revenue"`
	Repurchase Effect `json:"repurchase"`
	// IncrementalConversions over the group's shoppers, and
	// IncrementalProfit: the revenue difference times the margin rate
	// over the group's shoppers, less what the group's offers cost (for
	// the campaign against its holdout, its spend).
	IncrementalConversions Effect `json:"incremental_conversions"`
	IncrementalProfit      Effect `json:"incremental_profit"`
	Verdict                string `json:"verdict"`
	Test                   string `json:"test"`
}

func readoutPath(id string) string { return ReadoutDir + id + ".json" }

// PublishReadout stores a campaign's readout, replacing the last one.
func PublishReadout(ctx context.Context, b registry.Bucket, r *Readout) error {
	if err := ValidateID(r.Campaign); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return registry.UploadBytes(ctx, b, readoutPath(r.Campaign), data)
}

// ReconciledReplica is the spend ledger entry the trainer writes: what the
// campaign's redemptions really cost beyond the expected cost the servers
// counted, so that pacing and the budget see it.
const ReconciledReplica = "trainer-reconciled"

// ErrNoReadout is returned for a campaign the trainer has not read out.
var ErrNoReadout = errors.New("no readout yet: the trainer computes one at each scheduled run, or now with promo-trainer readout -campaign ID")

// ReadReadout returns a campaign's latest readout.
func ReadReadout(ctx context.Context, b registry.Bucket, id string) (*Readout, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := registry.ReadAll(ctx, b, readoutPath(id))
	if errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("campaign %s: %w: %w", id, ErrNoReadout, registry.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var r Readout
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("readout of %s: %v: %w", id, err, registry.ErrCorrupt)
	}
	return &r, nil
}
