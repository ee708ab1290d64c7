package protocols

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

// UpliftResult compares the uplift model with the truth on a synthetic shop.
type UpliftResult struct {
	Arms []TruthComparison
	// Ratio is the N-weighted model Qini over the N-weighted oracle Qini.
	Ratio float64
	// Ceiling is the same ratio for ranking by the true effect with the
	// sleeping dogs hidden (given the average effect of everyone else). It
	// is not an upper bound: that average includes the new shoppers'
	// effects, and a model can tell that a sleeping dog is not new.
	Ceiling float64
	// CeilingWithTrace is the ratio for a ranking that also makes the best
	// use of offer_lift, the trace earlier campaigns leave: each user's
	// effect mixed with the sleeping dogs' in the proportion of sleeping
	// dogs among users with a similar offer_lift (estimated from the truth).
	CeilingWithTrace float64
	// SleepingDogAUC is how well -offer_lift picks out the sleeping dogs
	// among the users (0.5 = not at all).
	SleepingDogAUC float64
	// Correlation is the N-weighted correlation of the model's predicted
	// effect with the true effect on the holdout rows.
	Correlation float64
	// FromTruth and FromTruthCorrelation are Ratio and Correlation for
	// trees of the model's shape fitted to the true effects of the
	// training rows instead of their outcomes: what the features allow
	// when outcome noise is taken away.
	FromTruth, FromTruthCorrelation float64
	// Expected, CeilingExpected, CeilingWithTraceExpected and
	// FromTruthExpected are Ratio, Ceiling, CeilingWithTrace and FromTruth
	// without outcome noise (N-weighted over the arms; see
	// TruthComparison.Expected): what the realized ratios
	// estimate, from each holdout session's true change in purchase
	// probability instead of its outcome.
	Expected, CeilingExpected, CeilingWithTraceExpected, FromTruthExpected float64
	// BaselineExpected is Expected for the T-learner baseline a run
	// fits beside the learner (and serves unless the learner is
	// significantly better).
	BaselineExpected float64
	// Served and ServedCorrelation are Ratio and Correlation with each
	// holdout row scored on the features a server rebuilding its profiles
	// every ServedEvery would have read (zero when ServedEvery is).
	Served, ServedCorrelation float64
	ServedEvery               time.Duration
	// OnProbabilities, OnProbabilitiesExpected and
	// OnProbabilitiesCorrelation are Ratio, Expected and Correlation for
	// the model fitted to the training sessions' true purchase and
	// add-to-cart probabilities instead of their outcomes
	// (TruthComparison.OnProbabilities), when
	// UpliftOptions.OnProbabilities asked for it.
	OnProbabilities, OnProbabilitiesExpected, OnProbabilitiesCorrelation float64
	FittedOnProbabilities                                                bool
	// OracleTrace says the model and the with-trace ranking read the
	// oracle trace in place of offer_lift (UpliftOptions.OracleTrace).
	OracleTrace bool
}

// UpliftOptions are the uplift protocol's own settings.
type UpliftOptions struct {
	// ServedEvery, when not zero, also scores the model on features as of
	// the start of each exposure's period of this length (a server whose
	// profiles are rebuilt that often, e.g. daily), next to those as of the
	// start of its training period. It costs two more reads of the log (its
	// window, then one pass for all its periods).
	ServedEvery time.Duration
	// OnProbabilities also fits the model with its pseudo-outcomes built
	// from each training session's true purchase and add-to-cart
	// probabilities instead of its outcomes, and scores it on the same
	// holdout: how far the learner gets without the outcomes' coin flips.
	// It doubles the time spent fitting.
	OnProbabilities bool
	// OracleTrace replaces each row's offer_lift with the best trace of
	// offer aversion that outcomes can leave: minus the shopper's summed
	// shop.ExposureTruth.SleepingDogEvidence over the offered sessions
	// before the row's cutoff, which needs each session's true baseline.
	// The model, the with-trace ranking and the sleeping-dog AUC then say
	// what finding the sleeping dogs from outcomes is worth at best. The
	// as-served comparison is skipped (ServedEvery is ignored): a server
	// has no oracle.
	OracleTrace bool
}

// Uplift generates a synthetic shop with known effects, trains the uplift
// model as a training run does, and compares its holdout Qini with ranking
// by the true effect. cfg sets the bootstrap rounds and the uplift model's
// penalties; the rest is as a training run has it.
func Uplift(ctx context.Context, p shop.Params, cfg pipeline.Config, opt UpliftOptions) (*UpliftResult, error) {
	if opt.OracleTrace {
		opt.ServedEvery = 0
	}
	b := inmem.New()
	truth := map[string]map[string]float64{}
	var exposures map[string][]shop.ExposureTruth // only for the oracle trace
	if opt.OracleTrace {
		exposures = map[string][]shop.ExposureTruth{}
	}
	sleeping := map[string]bool{}
	kinds := map[string]string{}
	sessions := map[string]map[int64]map[string]float64{}
	var probabilities map[string]map[int64]SessionProbabilities // only when asked for: one per exposure
	if opt.OnProbabilities {
		probabilities = map[string]map[int64]SessionProbabilities{}
	}
	if _, err := shop.WriteTo(ctx, b, p, func(t shop.Truth) error {
		truth[t.User] = t.Uplift
		sleeping[t.User] = t.Kind == shop.KindSleepingDog
		kinds[t.User] = t.Kind
		sessions[t.User] = make(map[int64]map[string]float64, len(t.Exposures))
		for _, e := range t.Exposures {
			sessions[t.User][e.Time.UnixNano()] = e.Effects
		}
		if exposures != nil {
			exposures[t.User] = t.Exposures
		}
		if probabilities != nil {
			probabilities[t.User] = make(map[int64]SessionProbabilities, len(t.Exposures))
			for _, e := range t.Exposures {
				probabilities[t.User][e.Time.UnixNano()] = SessionProbabilities{Purchase: e.Purchase, Cart: e.Cart}
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	partial := hideUsers(truth, sleeping)
	ds, err := pipeline.ExperimentData(ctx, b, cfg)
	if err != nil {
		return nil, err
	}
	lift := features.Index("offer_lift")
	if opt.OracleTrace {
		for i := range ds.Users {
			u := &ds.Users[i]
			evidence := 0.0
			for _, e := range exposures[u.ID] {
				if e.Time.Before(u.AsOf) {
					evidence += e.SleepingDogEvidence()
				}
			}
			u.Features[lift] = -evidence // like offer_lift, low for the sleeping dogs
		}
	}
	trace := map[string]float64{}
	var score, isDog []float64
	// A shopper has a row per experiment period: the trace is their
	// offer_lift as of the latest cutoff up to the evaluation window's
	// start, so the ceiling sees no outcome it is scored on.
	from := pipeline.UpliftHoldoutStart(ds, cfg)
	asOf := map[string]time.Time{}
	for _, u := range ds.Users {
		if _, ok := truth[u.ID]; ok && !u.AsOf.After(from) && u.AsOf.After(asOf[u.ID]) {
			asOf[u.ID] = u.AsOf
		}
	}
	for _, u := range ds.Users {
		if a, ok := asOf[u.ID]; !ok || !u.AsOf.Equal(a) {
			continue
		}
		dog := 0.0
		if sleeping[u.ID] {
			dog = 1
		}
		trace[u.ID] = u.Features[lift]
		score, isDog = append(score, -u.Features[lift]), append(isDog, dog)
	}
	withTrace := mixByTrace(truth, partial, sleeping, trace, 20)
	var served *features.Dataset
	if opt.ServedEvery > 0 {
		if served, err = ServedExperimentData(ctx, b, cfg, opt.ServedEvery); err != nil {
			return nil, err
		}
	}
	arms, err := CompareWithTruth(ds, ShopTruth{Effects: truth, Sessions: sessions,
		Partial: []map[string]map[string]float64{partial, withTrace}, Groups: kinds, Probabilities: probabilities}, served, cfg)
	if err != nil {
		return nil, err
	}
	// sum is the N-weighted sum of one figure over the arms.
	sum := func(figure func(a TruthComparison) float64) float64 {
		s := 0.0
		for _, a := range arms {
			s += figure(a) * float64(a.N)
		}
		return s
	}
	o := sum(func(a TruthComparison) float64 { return a.Oracle })
	n := sum(func(TruthComparison) float64 { return 1 })
	r := &UpliftResult{Arms: arms,
		Ratio:                    sum(func(a TruthComparison) float64 { return a.Model }) / o,
		Ceiling:                  sum(func(a TruthComparison) float64 { return a.Partial[0] }) / o,
		CeilingWithTrace:         sum(func(a TruthComparison) float64 { return a.Partial[1] }) / o,
		FromTruth:                sum(func(a TruthComparison) float64 { return a.FromTruth }) / o,
		Served:                   sum(func(a TruthComparison) float64 { return a.Served }) / o,
		Correlation:              sum(func(a TruthComparison) float64 { return a.Correlation }) / n,
		FromTruthCorrelation:     sum(func(a TruthComparison) float64 { return a.FromTruthCorrelation }) / n,
		ServedCorrelation:        sum(func(a TruthComparison) float64 { return a.ServedCorrelation }) / n,
		Expected:                 sum(func(a TruthComparison) float64 { return a.Expected }) / n,
		CeilingExpected:          sum(func(a TruthComparison) float64 { return a.PartialExpected[0] }) / n,
		CeilingWithTraceExpected: sum(func(a TruthComparison) float64 { return a.PartialExpected[1] }) / n,
		FromTruthExpected:        sum(func(a TruthComparison) float64 { return a.FromTruthExpected }) / n,
		BaselineExpected:         sum(func(a TruthComparison) float64 { return a.BaselineExpected }) / n,
		SleepingDogAUC:           eval.AUC(score, isDog), ServedEvery: opt.ServedEvery, OracleTrace: opt.OracleTrace}
	if opt.OnProbabilities {
		r.FittedOnProbabilities = true
		r.OnProbabilities = sum(func(a TruthComparison) float64 { return a.OnProbabilities }) / o
		r.OnProbabilitiesExpected = sum(func(a TruthComparison) float64 { return a.OnProbabilitiesExpected }) / n
		r.OnProbabilitiesCorrelation = sum(func(a TruthComparison) float64 { return a.OnProbabilitiesCorrelation }) / n
	}
	return r, nil
}

// mixByTrace returns the best ranking for someone who knows every effect
// but the hidden users' (partial, from hideUsers) and sees, per user, a
// noisy trace of being hidden. Users are put in bins of similar trace
// (about len/bins users each; equal traces share a bin), and each user's
// effect becomes s × (the hidden users' average effect) + (1 − s) ×
// partial, where s is the share of hidden users in their bin: the expected
// effect given what that person knows.
func mixByTrace(truth, partial map[string]map[string]float64, hidden map[string]bool, trace map[string]float64, bins int) map[string]map[string]float64 {
	hiddenAvg, nHidden := map[string]float64{}, 0.0
	for _, id := range slices.Sorted(maps.Keys(truth)) { // a fixed order: the same sums every run
		if hidden[id] {
			nHidden++
			for a, v := range truth[id] {
				hiddenAvg[a] += v
			}
		}
	}
	for a := range hiddenAvg {
		hiddenAvg[a] /= nHidden
	}
	ids := make([]string, 0, len(trace))
	for id := range trace {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if trace[ids[i]] != trace[ids[j]] {
			return trace[ids[i]] < trace[ids[j]]
		}
		return ids[i] < ids[j]
	})
	out := make(map[string]map[string]float64, len(partial))
	for id, arms := range partial {
		out[id] = arms // users without a trace keep the partial truth
	}
	size := max(1, len(ids)/bins)
	for lo := 0; lo < len(ids); {
		hi := min(len(ids), lo+size)
		for hi < len(ids) && trace[ids[hi]] == trace[ids[hi-1]] {
			hi++
		}
		share := 0.0
		for _, id := range ids[lo:hi] {
			if hidden[id] {
				share++
			}
		}
		share /= float64(hi - lo)
		for _, id := range ids[lo:hi] {
			mixed := make(map[string]float64, len(partial[id]))
			for a, v := range partial[id] {
				mixed[a] = share*hiddenAvg[a] + (1-share)*v
			}
			out[id] = mixed
		}
		lo = hi
	}
	return out
}

// hideUsers returns truth with the hidden users' effects replaced by the
// average effect of everyone else, arm by arm: the best ranking for someone
// who cannot tell the hidden users apart (sleeping dogs behave like everyone
// else until treated).
func hideUsers(truth map[string]map[string]float64, hidden map[string]bool) map[string]map[string]float64 {
	sum, n := map[string]float64{}, 0.0
	for _, id := range slices.Sorted(maps.Keys(truth)) { // a fixed order: the same sums every run
		if !hidden[id] {
			n++
			for a, v := range truth[id] {
				sum[a] += v
			}
		}
	}
	out := make(map[string]map[string]float64, len(truth))
	for id, arms := range truth {
		out[id] = arms
		if hidden[id] {
			avg := make(map[string]float64, len(arms))
			for a := range arms {
				avg[a] = sum[a] / max(n, 1)
			}
			out[id] = avg
		}
	}
	return out
}

// PrintUplift writes the comparison table.
func PrintUplift(w io.Writer, r *UpliftResult) {
	traceName := "offer_lift"
	if r.OracleTrace {
		traceName = "the oracle trace"
		fmt.Fprintln(w, "offer_lift replaced by the oracle trace: minus each shopper's summed sleeping-dog evidence (the log-likelihood ratio of each offered session's outcome given its true baseline) before the row's cutoff")
	}
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "ARM\tHOLDOUT ROWS\tMODEL QINI [95% CI]\tTRUE-EFFECT QINI [95% CI]\tMODEL / TRUTH\tCEILING / TRUTH\tWITH TRACE / TRUTH\tFROM TRUTH / TRUTH\tCORRELATION WITH TRUTH: MODEL, FROM TRUTH\tNOISE-FREE: MODEL, CEILING, WITH TRACE, FROM TRUTH\tAS SERVED: MODEL / TRUTH, CORRELATION")
	served := func(ratio, corr float64) string {
		if r.ServedEvery == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f, %.3f", ratio, corr)
	}
	for _, a := range r.Arms {
		fmt.Fprintf(t, "%s\t%d\t%.3f [%.3f, %.3f]\t%.3f [%.3f, %.3f]\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f, %.3f\t%.3f, %.3f, %.3f, %.3f\t%s\n", a.Arm, a.N, a.Model, a.ModelCI.Lo, a.ModelCI.Hi, a.Oracle, a.OracleCI.Lo, a.OracleCI.Hi,
			a.Model/a.Oracle, a.Partial[0]/a.Oracle, a.Partial[1]/a.Oracle, a.FromTruth/a.Oracle, a.Correlation, a.FromTruthCorrelation,
			a.Expected, a.PartialExpected[0], a.PartialExpected[1], a.FromTruthExpected, served(a.Served/a.Oracle, a.ServedCorrelation))
	}
	fmt.Fprintf(t, "all arms (weighted)\t\t\t\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f, %.3f\t%.3f, %.3f, %.3f, %.3f\t%s\n", r.Ratio, r.Ceiling, r.CeilingWithTrace, r.FromTruth, r.Correlation, r.FromTruthCorrelation,
		r.Expected, r.CeilingExpected, r.CeilingWithTraceExpected, r.FromTruthExpected, served(r.Served, r.ServedCorrelation))
	fmt.Fprintln(t, "(ceiling: ranking by the true effect with the sleeping dogs, who look like everyone else until treated, given everyone else's average effect;")
	fmt.Fprintf(t, " with trace: the same, each user's effect mixed with the sleeping dogs' by the share of sleeping dogs among users with a similar %s;\n", traceName)
	fmt.Fprintln(t, " from truth: the model's trees fitted to the training rows' true effects instead of their outcomes, i.e. the features without outcome noise;")
	fmt.Fprintln(t, " noise-free: each ranking's Qini drawn from the sessions' true changes in purchase probability instead of their outcomes, over the true-effect ranking's)")
	if r.ServedEvery > 0 {
		fmt.Fprintf(t, "(as served: the same model and rows, each row scored on its shopper's features as of the start of its %s period, as a server whose profiles a run rebuilds that often read them)\n", PeriodText(r.ServedEvery))
	}
	fmt.Fprintf(t, "AUC of minus %s for finding the sleeping dogs: %.3f\n", traceName, r.SleepingDogAUC)
	t.Flush()
	if r.FittedOnProbabilities {
		fmt.Fprintln(w, "\nThe model fitted to each training session's true purchase and add-to-cart probabilities instead of its outcomes (no coin flips; each exposure still shows one arm)")
		t = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t, "ARM\tMODEL / TRUTH\tNOISE-FREE\tCORRELATION WITH TRUTH")
		for _, a := range r.Arms {
			fmt.Fprintf(t, "%s\t%.2f\t%.3f\t%.3f\n", a.Arm, a.OnProbabilities/a.Oracle, a.OnProbabilitiesExpected, a.OnProbabilitiesCorrelation)
		}
		fmt.Fprintf(t, "all arms (weighted)\t%.2f\t%.3f\t%.3f\n", r.OnProbabilities, r.OnProbabilitiesExpected, r.OnProbabilitiesCorrelation)
		t.Flush()
	}
	fmt.Fprintln(w, "\nBy kind of shopper (holdout rows of each arm and control): mean effect predicted by the model and by the from-truth trees, the true one, and the one the outcomes show")
	t = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "ARM\tKIND\tROWS\tPREDICTED\tFROM TRUTH\tTRUE\tREALIZED")
	for _, a := range r.Arms {
		for _, g := range a.Groups {
			realized := "-" // no treated or no control row
			if g.Treated > 0 && g.Control > 0 {
				realized = fmt.Sprintf("%+.3f", g.Realized)
			}
			fmt.Fprintf(t, "%s\t%s\t%d\t%+.3f\t%+.3f\t%+.3f\t%s\n", a.Arm, g.Group, g.N, g.Predicted, g.FromTruth, g.True, realized)
		}
	}
	t.Flush()
}

// PeriodText names a period length for people: "1-day", "7-day", or the
// duration itself when it is not whole days.
func PeriodText(d time.Duration) string {
	if day := 24 * time.Hour; d > 0 && d%day == 0 {
		return fmt.Sprintf("%d-day", d/day)
	}
	return d.String()
}
