package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/trainer/readout"
	"github.com/promoai/promo/trainer/report"
)

// readoutCmd reads campaigns out now: one (-campaign) or every campaign
// that is running or ended within its outcome window.
func readoutCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, store := subcommand("readout", stderr)
	id := fs.String("campaign", "", "the campaign to read out (default: every campaign running or ended within -outcome-days)")
	var o readout.Options
	fs.IntVar(&o.OutcomeDays, "outcome-days", 7, "a shopper's purchases within this many days of their first exposure count")
	fs.Float64Var(&o.MarginRate, "margin-rate", 0.3, "share of revenue that is margin, for incremental profit")
	asJSON := fs.Bool("json", false, "print the readouts as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bkt, err := client.NewBucket(ctx, *store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	var cs []campaign.Campaign
	if *id != "" {
		c, err := campaign.NewStore(bkt).Get(ctx, *id)
		if err != nil {
			return err
		}
		cs = []campaign.Campaign{*c}
	}
	rs, err := readCampaigns(ctx, bkt, cs, o, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if *asJSON {
		return report.WriteJSON(stdout, rs)
	}
	for _, r := range rs {
		printReadout(stdout, r)
	}
	return nil
}

// readCampaigns computes and publishes the readouts of cs, or with none
// given, of every campaign running or ended within the outcome window.
// A campaign whose readout cannot be published is logged and skipped.
func readCampaigns(ctx context.Context, b registry.Bucket, cs []campaign.Campaign, o readout.Options, log *slog.Logger) ([]*campaign.Readout, error) {
	if cs == nil {
		all, err := campaign.NewStore(b).List(ctx)
		if err != nil {
			return nil, err
		}
		window := time.Duration(max(o.OutcomeDays, 7)) * 24 * time.Hour
		for _, c := range all {
			if now := time.Now(); !now.Before(c.Start) && now.Before(c.End.Add(window)) {
				cs = append(cs, c)
			}
		}
	}
	ptrs := make([]*campaign.Campaign, len(cs))
	for i := range cs {
		ptrs[i] = &cs[i]
	}
	// Every campaign from the same two passes over the log.
	rs, err := readout.ComputeAll(ctx, b, ptrs, o)
	if err != nil {
		return nil, err
	}
	var out []*campaign.Readout
	var errs []error
	for i, r := range rs {
		err := campaign.PublishReadout(ctx, b, r)
		if err == nil {
			// Redemptions that cost more than the servers expected in all
			// count against the budget too (never less: the expected cost
			// of offers not redeemed yet may still come).
			err = campaign.WriteSpend(ctx, b, cs[i].ID, campaign.ReplicaSpend{Replica: campaign.ReconciledReplica,
				Total: max(0, r.RedeemedCost-r.Spend), Days: map[string]float64{}, UpdatedAt: time.Now()})
		}
		if err != nil {
			log.Warn("campaign readout failed", "campaign", cs[i].ID, "err", err)
			errs = append(errs, fmt.Errorf("campaign %s: %w", cs[i].ID, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func printReadout(w io.Writer, r *campaign.Readout) {
	fmt.Fprintf(w, "campaign %s: %s (spent %.2f of %.2f, expected at decision time; %d redemptions cost %.2f; outcomes within %d days of a shopper's first exposure)\n",
		r.Campaign, r.Verdict, r.Spend, r.Budget, r.Redemptions, r.RedeemedCost, r.OutcomeDays)
	for _, g := range r.Groups {
		fmt.Fprintf(w, "  %-10s %7d shoppers  conversion %.4f  revenue/shopper %.2f  AOV %.2f  repurchase %.4f\n", g.Name, g.Shoppers, g.Conversion, g.RevenuePerShopper, g.AOV, g.Repurchase)
	}
	for _, c := range r.Comparisons {
		fmt.Fprintf(w, "  %s vs %s: conversion %+.4f [%+.4f, %+.4f], revenue/shopper %+.2f [%+.2f, %+.2f], incremental profit %+.2f [%+.2f, %+.2f]: %s\n",
			c.Group, c.Control, c.Conversion.Diff, c.Conversion.Lo, c.Conversion.Hi, c.Revenue.Diff, c.Revenue.Lo, c.Revenue.Hi,
			c.IncrementalProfit.Diff, c.IncrementalProfit.Lo, c.IncrementalProfit.Hi, c.Verdict)
	}
	for _, f := range r.Fairness {
		flag := ""
		if f.BelowFloor {
			flag = " (below the campaign's floor)"
		}
		fmt.Fprintf(w, "  fairness by %s: disparate impact %.3f%s;", f.Attribute, f.DI, flag)
		for _, g := range f.Groups {
			fmt.Fprintf(w, " %s %.3f of %d", g.Value, g.OfferRate, g.Shoppers)
		}
		fmt.Fprintln(w)
	}
	if r.FairnessGivenUp > 0 {
		fmt.Fprintf(w, "  the fairness guard's offers gave up %.2f of expected value\n", r.FairnessGivenUp)
	}
	if r.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", r.Note)
	}
}
