package pipeline

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
)

// Segment names.
const (
	SegmentNew        = "new"
	SegmentHighValue  = "high_value"
	SegmentLoyal      = "loyal"
	SegmentAtRisk     = "at_risk"
	SegmentOccasional = "occasional"
)

// SegmentRules are RFM rules with thresholds learned from the data.
type SegmentRules struct {
	HighValueMonetary float64 // 80th percentile of spend among buyers
	NewTenureDays     float64
	AtRiskRecencyDays float64
	LoyalFrequency    float64
	LoyalRecencyDays  float64
}

// LearnSegmentRules sets the data-dependent thresholds.
func LearnSegmentRules(users []features.UserRow) SegmentRules {
	mon := features.Index("monetary")
	var spend []float64
	for _, u := range users {
		if u.Features[mon] > 0 {
			spend = append(spend, u.Features[mon])
		}
	}
	sort.Float64s(spend)
	hv := 0.0
	if len(spend) > 0 {
		hv = spend[int(0.8*float64(len(spend)-1))]
	}
	return SegmentRules{HighValueMonetary: hv, NewTenureDays: 30, AtRiskRecencyDays: 60, LoyalFrequency: 3, LoyalRecencyDays: 30}
}

// Definitions document the rules for the manifest and API users.
func (r SegmentRules) Definitions() []artifact.Segment {
	return []artifact.Segment{
		{Name: SegmentNew, Definition: fmt.Sprintf("first seen at most %.0f days ago and at most 1 purchase", r.NewTenureDays)},
		{Name: SegmentHighValue, Definition: fmt.Sprintf("total spend at least %.2f (80th percentile of buyers) and at least 2 purchases", r.HighValueMonetary)},
		{Name: SegmentAtRisk, Definition: fmt.Sprintf("at least 2 purchases but none in the last %.0f days", r.AtRiskRecencyDays)},
		{Name: SegmentLoyal, Definition: fmt.Sprintf("at least %.0f purchases and one in the last %.0f days", r.LoyalFrequency, r.LoyalRecencyDays)},
		{Name: SegmentOccasional, Definition: "everyone else"},
	}
}

// Assign applies the rules in order: the first that matches wins.
func (r SegmentRules) Assign(f []float64) string {
	get := func(n string) float64 { return f[features.Index(n)] }
	freq, rec, mon, tenure := get("frequency"), get("recency_days"), get("monetary"), get("tenure_days")
	switch {
	case tenure <= r.NewTenureDays && freq <= 1:
		return SegmentNew
	case mon >= r.HighValueMonetary && freq >= 2 && r.HighValueMonetary > 0:
		return SegmentHighValue
	case freq >= 2 && rec > r.AtRiskRecencyDays:
		return SegmentAtRisk
	case freq >= r.LoyalFrequency && rec <= r.LoyalRecencyDays:
		return SegmentLoyal
	}
	return SegmentOccasional
}

// auditOf is a shopper's audited attributes for the profiles snapshot.
func auditOf(u features.UserRow) map[string]string {
	out := map[string]string{}
	for k, v := range u.Audit {
		out[k] = v
	}
	if u.Gender != "" {
		out["gender"] = u.Gender
	}
	if band := campaign.AgeBand(u.Age); band != "" {
		out["age"] = band
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func buildProfiles(now *features.Dataset, _ Config) (*candidate, error) {
	if len(now.Users) == 0 {
		return nil, fmt.Errorf("no users to profile")
	}
	rules := LearnSegmentRules(now.Users)
	p := &artifact.Profiles{Features: now.Names, Segments: rules.Definitions(), Users: make([]artifact.UserProfile, 0, len(now.Users))}
	counts := map[string]int{}
	for _, u := range now.Users {
		seg := rules.Assign(u.Features)
		counts[seg]++
		up := artifact.UserProfile{ID: u.ID, Features: u.Features, Segment: seg, Audit: auditOf(u)}
		for _, it := range u.Recent {
			up.Recent = append(up.Recent, now.Items[it].ID)
		}
		for it := range u.Purchased {
			up.Purchased = append(up.Purchased, now.Items[it].ID)
		}
		sort.Strings(up.Purchased)
		p.Users = append(p.Users, up)
	}
	metrics := map[string]float64{"users": float64(len(p.Users))}
	params := map[string]string{"as_of": now.Cutoff.Format("2006-01-02T15:04:05Z")}
	clusterUsers(now, p, metrics, params)
	for _, s := range p.Segments {
		metrics["segment."+s.Name+".share"] = float64(counts[s.Name]) / float64(len(p.Users))
	}
	for _, s := range p.Segments {
		params["segment."+s.Name] = s.Definition
	}
	bars := Plot{File: "segments.png", Title: "User segments", YLabel: "share of users"}
	shares := Series{Name: "share"}
	for i, s := range p.Segments {
		bars.Bars = append(bars.Bars, s.Name)
		shares.X, shares.Y = append(shares.X, float64(i)), append(shares.Y, metrics["segment."+s.Name+".share"])
	}
	bars.Series = []Series{shares}
	return &candidate{model: artifact.ModelProfiles, art: p, metrics: metrics, params: params, schema: now.Names, plots: []Plot{bars}}, nil
}

// clusterUsers adds k-means clusters on standardized features, with k from
// 2 to 6 chosen by the silhouette of a sample, and documents each cluster
// by the mean of a few telling features.
func clusterUsers(now *features.Dataset, p *artifact.Profiles, metrics map[string]float64, params map[string]string) {
	X := make([][]float64, len(now.Users))
	for i, u := range now.Users {
		// Behaviour only: one-hot attribute columns would split the
		// clusters by attribute.
		X[i] = u.Features[:len(features.Names)]
	}
	if len(X) < 20 {
		return
	}
	scaler := fit.Standardize(X, logFlags(X, indexRange(len(features.Names))))
	Z := fit.Transform(scaler, X)
	sample := Z
	if len(Z) > 2000 { // silhouette is quadratic in rows
		step := len(Z) / 2000
		sample = nil
		for i := 0; i < len(Z); i += step {
			sample = append(sample, Z[i])
		}
	}
	var best [][]float64
	bestS, bestK := -2.0, 0
	for k := 2; k <= 6; k++ {
		cent, assign := fit.KMeans(sample, k, 42, 100)
		if s := fit.Silhouette(sample, assign, k); s > bestS {
			best, bestS, bestK = cent, s, k
		}
	}
	counts := make([]float64, bestK)
	sums := make([][]float64, bestK)
	for c := range sums {
		sums[c] = make([]float64, len(features.Names))
	}
	for i, z := range Z {
		c := fit.Nearest(z, best)
		p.Users[i].Cluster = c
		counts[c]++
		for j, v := range X[i] {
			sums[c][j] += v
		}
	}
	metrics["kmeans.k"], metrics["kmeans.silhouette"] = float64(bestK), bestS
	params["kmeans"] = "k-means on standardized features (log1p for counts and amounts), k chosen by silhouette on a sample"
	for c := 0; c < bestK; c++ {
		metrics[fmt.Sprintf("kmeans.cluster.%d.share", c)] = counts[c] / float64(len(Z))
		var desc []string
		for _, f := range []string{"frequency", "monetary", "recency_days", "tenure_days", "avg_viewed_price"} {
			desc = append(desc, fmt.Sprintf("%s %.1f", f, sums[c][features.Index(f)]/math.Max(counts[c], 1)))
		}
		params[fmt.Sprintf("kmeans.cluster.%d", c)] = "mean " + strings.Join(desc, ", ")
	}
}
