package loadtest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// TrialOptions configure a canary-and-shadow run.
type TrialOptions struct {
	// Model is scored through Score, so a propensity model.
	Model string
	// Candidate becomes the canary (for Share of shoppers) and the
	// shadow, and is finally promoted; production must point at another
	// version at the start.
	Candidate string
	Share     float64
	// Rounds of Score latency without, then with, the shadow (default 5),
	// each lasting Round (default 1 s).
	Rounds int
	Round  time.Duration
	// Timeout is the longest a change may take to reach the server.
	Timeout time.Duration
}

// TrialResult reports a canary-and-shadow run.
type TrialResult struct {
	// Requests and Failed count every Score call of the run, through
	// every alias change.
	Requests, Failed int64
	// Canary is the check made while the canary was set, before it was
	// promoted.
	Canary CanaryResult
	// Switched counts shoppers answered by one version and later by
	// another while the canary was set.
	Switched int64
	// P99 of Score in each round, without and with the shadow.
	P99Without, P99With []time.Duration
	// Shadow is the server's account of the shadow's comparisons.
	Shadow *promov1.ShadowStats
	// Promoted says the candidate answered every shopper as production
	// after promote-canary.
	Promoted bool
}

// MedianP99s returns the median round's p99 without and with the shadow:
// the median keeps one slow round (another process on the machine) from
// deciding.
func (r TrialResult) MedianP99s() (without, with time.Duration) {
	med := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	return med(r.P99Without), med(r.P99With)
}

// Trials keeps Score under load from o.Concurrency clients while, through
// the admin API, it sets the candidate as a canary, measures who the
// canary answers, alternates rounds without and with the candidate as a
// shadow, then promotes the canary and clears the shadow.
func Trials(ctx context.Context, o Options, t TrialOptions) (TrialResult, error) {
	if t.Rounds == 0 {
		t.Rounds = 5
	}
	if t.Round == 0 {
		t.Round = time.Second
	}
	if t.Timeout == 0 {
		t.Timeout = 10 * time.Second
	}
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return TrialResult{}, err
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.Token)
	scoring := promov1.NewScoringServiceClient(conn)
	admin := promov1.NewRegistryServiceClient(conn)
	status := promov1.NewStatusServiceClient(conn)

	var res TrialResult
	var requests, failed, switched atomic.Int64
	// Latencies of the current round; first answers per shopper while
	// the canary is set.
	var mu sync.Mutex
	var lat []time.Duration
	var tracking bool
	first := map[string]string{}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range max(1, o.Concurrency) {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 13))
			for loadCtx.Err() == nil {
				user := o.Users[r.IntN(len(o.Users))]
				t0 := time.Now()
				resp, err := scoring.Score(ctx, &promov1.ScoreRequest{UserId: user})
				took := time.Since(t0)
				if loadCtx.Err() != nil && err != nil {
					return
				}
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				answered := resp.GetModel().GetAlias() + "/" + resp.GetModel().GetVersion()
				mu.Lock()
				lat = append(lat, took)
				if tracking {
					if was, ok := first[user]; !ok {
						first[user] = answered
					} else if was != answered {
						switched.Add(1)
						first[user] = answered
					}
				}
				mu.Unlock()
			}
		})
	}
	defer func() { stopLoad(); wg.Wait() }()

	// waitStatus polls /v1/status until ok says the server has the change.
	waitStatus := func(what string, ok func(*promov1.GetStatusResponse) bool) error {
		deadline := time.Now().Add(t.Timeout)
		for {
			st, err := status.GetStatus(ctx, &promov1.GetStatusRequest{})
			if err == nil && ok(st) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the server did not show %s within %s (last error: %v)", what, t.Timeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	loaded := func(alias string) func(*promov1.GetStatusResponse) bool {
		return func(st *promov1.GetStatusResponse) bool {
			for _, m := range st.GetModels() {
				if m.GetName() == t.Model && m.GetAlias() == alias && m.GetVersion() == t.Candidate {
					return true
				}
			}
			return false
		}
	}
	gone := func(alias string) func(*promov1.GetStatusResponse) bool {
		is := loaded(alias)
		return func(st *promov1.GetStatusResponse) bool { return !is(st) }
	}
	round := func() time.Duration {
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		time.Sleep(t.Round)
		mu.Lock()
		defer mu.Unlock()
		return percentile(lat, 0.99)
	}
	reason := func(what string) string { return "canary and shadow load test: " + what }

	// The alias production answers under: the one the server follows.
	production := ""
	st, err := status.GetStatus(ctx, &promov1.GetStatusRequest{})
	if err != nil {
		return res, err
	}
	for _, m := range st.GetModels() {
		if m.GetName() == t.Model && m.GetAlias() != "canary" && m.GetAlias() != "shadow" {
			production = m.GetAlias()
		}
	}
	if production == "" {
		return res, fmt.Errorf("the server does not serve model %s", t.Model)
	}
	time.Sleep(300 * time.Millisecond) // load running before the first change
	if _, err := admin.SetCanary(actx, &promov1.SetCanaryRequest{Model: t.Model, Version: t.Candidate, Share: t.Share, Reason: reason("set")}); err != nil {
		return res, fmt.Errorf("set the canary: %w", err)
	}
	if err := waitStatus("the canary", loaded("canary")); err != nil {
		return res, err
	}
	mu.Lock()
	tracking = true
	mu.Unlock()
	// Rounds without and with the shadow, under the canary.
	for i := range t.Rounds {
		res.P99Without = append(res.P99Without, round())
		if _, err := admin.SetShadow(actx, &promov1.SetShadowRequest{Model: t.Model, Version: t.Candidate, Reason: reason(fmt.Sprintf("round %d", i))}); err != nil {
			return res, fmt.Errorf("set the shadow: %w", err)
		}
		if err := waitStatus("the shadow", loaded("shadow")); err != nil {
			return res, err
		}
		res.P99With = append(res.P99With, round())
		if i == t.Rounds-1 {
			break // the shadow stays for promote-canary
		}
		if err := readShadow(ctx, status, t, &res); err != nil {
			return res, err
		}
		if _, err := admin.ClearAlias(actx, &promov1.ClearAliasRequest{Model: t.Model, Alias: "shadow", Reason: reason("round over")}); err != nil {
			return res, fmt.Errorf("clear the shadow: %w", err)
		}
		if err := waitStatus("the shadow cleared", gone("shadow")); err != nil {
			return res, err
		}
	}
	if err := readShadow(ctx, status, t, &res); err != nil {
		return res, err
	}
	canary, err := CanaryCheck(ctx, o)
	if err != nil {
		return res, fmt.Errorf("canary check: %w", err)
	}
	res.Canary = canary
	mu.Lock()
	tracking = false
	mu.Unlock()
	res.Switched = switched.Load()

	// Promote the canary and clear the shadow, still under load.
	if _, err := admin.PromoteCanary(actx, &promov1.PromoteCanaryRequest{Model: t.Model, Reason: reason("promote")}); err != nil {
		return res, fmt.Errorf("promote the canary: %w", err)
	}
	if _, err := admin.ClearAlias(actx, &promov1.ClearAliasRequest{Model: t.Model, Alias: "shadow", Reason: reason("done")}); err != nil {
		return res, fmt.Errorf("clear the shadow: %w", err)
	}
	if err := waitStatus("production on the candidate, no canary, no shadow", func(st *promov1.GetStatusResponse) bool {
		return loaded(production)(st) && gone("canary")(st) && gone("shadow")(st)
	}); err != nil {
		return res, err
	}
	after, err := CanaryCheck(ctx, Options{GRPCAddr: o.GRPCAddr, Concurrency: o.Concurrency, Users: o.Users[:min(len(o.Users), 500)]})
	if err != nil {
		return res, err
	}
	res.Promoted = len(after.Versions) == 1 && after.Versions[production+"/"+t.Candidate] > 0 && after.Failed == 0
	stopLoad()
	wg.Wait()
	res.Requests, res.Failed = requests.Load(), failed.Load()
	return res, nil
}

// readShadow keeps the server's account of the shadow's comparisons.
func readShadow(ctx context.Context, status promov1.StatusServiceClient, t TrialOptions, res *TrialResult) error {
	st, err := status.GetStatus(ctx, &promov1.GetStatusRequest{})
	if err != nil {
		return err
	}
	for _, m := range st.GetModels() {
		if m.GetName() == t.Model && m.GetAlias() == "shadow" && m.GetShadow() != nil {
			// The server's figures cover the version's whole time as the
			// shadow on it, every round so far: the latest reading.
			res.Shadow = m.GetShadow()
		}
	}
	return nil
}

// PrintTrials writes a canary-and-shadow run's figures.
func PrintTrials(w io.Writer, r TrialResult, t TrialOptions) {
	without, with := r.MedianP99s()
	fmt.Fprintf(w, "canary and shadow under Score load: %d requests, %d failed (through canary set, %d shadow sets and clears, promote-canary)\n",
		r.Requests, r.Failed, t.Rounds)
	PrintCanary(w, r.Canary)
	fmt.Fprintf(w, "shoppers who switched version while the canary was set: %d; promoted canary answers everyone: %v\n", r.Switched, r.Promoted)
	fmt.Fprintf(w, "Score p99 by round without the shadow %v, with %v; medians %v and %v (%.2f×)\n",
		r.P99Without, r.P99With, without, with, float64(with)/float64(max(1, without)))
	if s := r.Shadow; s != nil {
		fmt.Fprintf(w, "shadow: %d comparisons, %d dropped, mean |Δp| %.4f, mean shadow time %.0f µs\n",
			s.GetComparisons(), s.GetDropped(), s.GetMeanScoreAbsDiff(), 1e6*s.GetMeanSeconds())
	}
}
