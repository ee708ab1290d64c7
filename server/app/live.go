package app

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/promoai/promo/gateway/console"
)

// liveFigures summarises this process's serving metrics for the console:
// per RPC the calls, errors, mean and p99 latency since start (p99 as the
// upper bound of its histogram bucket), calls in flight, and offer
// decisions by traffic.
func liveFigures(g prometheus.Gatherer) func() []console.Figure {
	return func() []console.Figure {
		fams, err := g.Gather()
		if err != nil {
			return []console.Figure{{Name: "metrics", Value: err.Error()}}
		}
		calls, errs := map[string]float64{}, map[string]float64{}
		var out []console.Figure
		var latency, decisions []console.Figure
		for _, f := range fams {
			switch f.GetName() {
			case "promo_grpc_requests_total":
				for _, m := range f.GetMetric() {
					method := shortMethod(label(m, "method"))
					calls[method] += m.GetCounter().GetValue()
					if label(m, "code") != "OK" {
						errs[method] += m.GetCounter().GetValue()
					}
				}
			case "promo_grpc_request_duration_seconds":
				for _, m := range f.GetMetric() {
					h := m.GetHistogram()
					if h.GetSampleCount() == 0 {
						continue
					}
					latency = append(latency, console.Figure{Name: shortMethod(label(m, "method")) + " latency mean / p99",
						Value: fmt.Sprintf("%s / ≤ %s", ms(h.GetSampleSum()/float64(h.GetSampleCount())), ms(bucketQuantile(h, 0.99)))})
				}
			case "promo_grpc_inflight_requests":
				for _, m := range f.GetMetric() {
					out = append(out, console.Figure{Name: "calls in flight", Value: fmt.Sprint(m.GetGauge().GetValue())})
				}
			case "promo_offer_decisions_total":
				byTraffic := map[string]float64{}
				for _, m := range f.GetMetric() {
					byTraffic[label(m, "traffic")] += m.GetCounter().GetValue()
				}
				for _, t := range slices.Sorted(maps.Keys(byTraffic)) {
					decisions = append(decisions, console.Figure{Name: "offer decisions, " + t, Value: fmt.Sprint(byTraffic[t])})
				}
			}
		}
		for _, method := range slices.Sorted(maps.Keys(calls)) {
			out = append(out, console.Figure{Name: method + " calls (errors)", Value: fmt.Sprintf("%.0f (%.0f)", calls[method], errs[method])})
		}
		slices.SortFunc(latency, func(a, b console.Figure) int { return strings.Compare(a.Name, b.Name) })
		return append(append(out, latency...), decisions...)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// shortMethod turns "/promo.v1.ScoringService/Score" into "Score".
func shortMethod(full string) string {
	return full[strings.LastIndex(full, "/")+1:]
}

func ms(seconds float64) string {
	if math.IsInf(seconds, 1) {
		return "∞"
	}
	return fmt.Sprintf("%.2f ms", 1e3*seconds)
}

// bucketQuantile is the upper bound of the bucket holding the q-quantile.
func bucketQuantile(h *dto.Histogram, q float64) float64 {
	want := q * float64(h.GetSampleCount())
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= want {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}
