// Package loadtest drives a running server with the generated gRPC client
// (and plain HTTP for the REST gateway) and reports QPS and latency per RPC,
// each as a ratio to the same server's gRPC Health/Check measured in the
// same run, so numbers from noisy machines stay comparable.
//
// It can also promote and roll back a model while Score is under load, and
// report failed requests, responses without a version, and how long each
// new version took to be served.
package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// Options of a load run.
type Options struct {
	GRPCAddr    string
	HTTPAddr    string // REST gateway; empty skips the REST row
	Concurrency int
	Duration    time.Duration // per RPC, split over Rounds
	Rounds      int           // turns each RPC takes (default 5)
	Users       []string      // user ids to score and recommend for
	Items       []string      // item ids for session context
	Token       string
	// Only, when set, runs just the RPCs whose names contain it (plus the
	// Health/Check baseline).
	Only string
}

// Result of one RPC's load.
type Result struct {
	Name     string
	Requests int64
	Errors   int64
	QPS      float64
	P50, P99 time.Duration
	// Ratios to Health/Check in the same run.
	QPSRatio, P99Ratio float64
}

type call func(ctx context.Context, r *rand.Rand) error

// Run measures Health/Check, Score, Recommend, SimilarItems (when Items
// are given) and REST Score (when HTTPAddr is set), in turns.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if len(o.Users) == 0 {
		return nil, fmt.Errorf("loadtest: no user ids given")
	}
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if o.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.Token)
	}
	health := healthpb.NewHealthClient(conn)
	scoring := promov1.NewScoringServiceClient(conn)
	recs := promov1.NewRecommendationServiceClient(conn)
	user := func(r *rand.Rand) string { return o.Users[r.IntN(len(o.Users))] }
	session := func(r *rand.Rand) []string {
		if len(o.Items) == 0 {
			return nil
		}
		return []string{o.Items[r.IntN(len(o.Items))], o.Items[r.IntN(len(o.Items))]}
	}
	calls := []struct {
		name string
		fn   call
	}{
		{"grpc Health/Check", func(ctx context.Context, r *rand.Rand) error {
			_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
		{"grpc Score", func(ctx context.Context, r *rand.Rand) error {
			_, err := scoring.Score(ctx, &promov1.ScoreRequest{UserId: user(r), Explain: true})
			return err
		}},
		{"grpc Recommend k=10", func(ctx context.Context, r *rand.Rand) error {
			_, err := recs.Recommend(ctx, &promov1.RecommendRequest{UserId: user(r), K: 10, SessionItemIds: session(r), ExcludePurchased: true})
			return err
		}},
	}
	if len(o.Items) > 0 {
		calls = append(calls, struct {
			name string
			fn   call
		}{"grpc SimilarItems k=10", func(ctx context.Context, r *rand.Rand) error {
			_, err := recs.SimilarItems(ctx, &promov1.SimilarItemsRequest{ItemId: o.Items[r.IntN(len(o.Items))], K: 10})
			return err
		}})
	}
	if o.HTTPAddr != "" {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2}}
		url := "http://" + o.HTTPAddr + "/v1/score"
		calls = append(calls, struct {
			name string
			fn   call
		}{"rest Score", func(ctx context.Context, r *rand.Rand) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(fmt.Appendf(nil, `{"userId":%q,"explain":true}`, user(r))))
			if o.Token != "" {
				req.Header.Set("Authorization", "Bearer "+o.Token)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 {
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil
		}})
	}
	if o.Only != "" {
		kept := calls[:1]
		for _, c := range calls[1:] {
			if strings.Contains(c.name, o.Only) {
				kept = append(kept, c)
			}
		}
		calls = kept
	}
	// Warm-up opens connections and fills caches. Then the RPCs take turns
	// in short rounds, so a change in machine speed during the run (a busy
	// neighbour on a shared host) hits every RPC alike instead of whichever
	// happened to run at that moment.
	for _, c := range calls {
		driveRaw(ctx, c.fn, o.Concurrency, 300*time.Millisecond)
	}
	rounds := o.Rounds
	if rounds <= 0 {
		rounds = 5
	}
	lats := make([][]time.Duration, len(calls))
	out := make([]Result, len(calls))
	var elapsed = make([]time.Duration, len(calls))
	for r := 0; r < rounds; r++ {
		for i, c := range calls {
			res, lat, took := driveRaw(ctx, c.fn, o.Concurrency, o.Duration/time.Duration(rounds))
			out[i].Name = c.name
			out[i].Errors += res.Errors
			lats[i] = append(lats[i], lat...)
			elapsed[i] += took
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	for i := range out {
		all := lats[i]
		out[i].Requests = int64(len(all))
		out[i].QPS = float64(len(all)) / elapsed[i].Seconds()
		out[i].P99 = percentile(all, 0.99)
		out[i].P50 = percentile(all, 0.5)
	}
	base := out[0]
	for i := range out {
		out[i].QPSRatio = out[i].QPS / base.QPS
		out[i].P99Ratio = float64(out[i].P99) / float64(base.P99)
	}
	return out, nil
}

// driveRaw runs fn from n goroutines for d and returns the error count,
// every latency and the wall time taken.
func driveRaw(ctx context.Context, fn call, n int, d time.Duration) (Result, []time.Duration, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var errs atomic.Int64
	lat := make([][]time.Duration, n)
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			buf := make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				t0 := time.Now()
				err := fn(context.Background(), r)
				if ctx.Err() != nil {
					break // the call straddled the end of the window
				}
				if err != nil {
					errs.Add(1)
				}
				buf = append(buf, time.Since(t0))
			}
			lat[w] = buf
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return Result{Errors: errs.Load()}, all, elapsed
}

// Print writes the results table.
func Print(w io.Writer, rs []Result, o Options) {
	fmt.Fprintf(w, "load: concurrency %d, %s per RPC in interleaved rounds, %d users\n", o.Concurrency, o.Duration, len(o.Users))
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "RPC\tREQUESTS\tERRORS\tQPS\tP50\tP99\tQPS / HEALTH\tP99 / HEALTH")
	for _, r := range rs {
		fmt.Fprintf(t, "%s\t%d\t%d\t%.0f\t%s\t%s\t%.2f\t%.2f\n", r.Name, r.Requests, r.Errors, r.QPS,
			r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.QPSRatio, r.P99Ratio)
	}
	t.Flush()
}

// percentile returns the q-quantile of lat, which it sorts; 0 for none.
func percentile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(float64(len(lat))*q))]
}
