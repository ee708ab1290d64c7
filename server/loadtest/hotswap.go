package loadtest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// SwapOptions configure a hot-swap run.
type SwapOptions struct {
	Model, Alias string
	// Candidate is promoted and rolled back in turn; the alias must point at
	// another version at the start.
	Candidate string
	Changes   int           // promotions + rollbacks (default 20)
	Timeout   time.Duration // longest a change may take to be served
	Pause     time.Duration // between a change being served and the next change
}

// SwapResult reports a hot-swap run.
type SwapResult struct {
	Requests, Failed, Unversioned int64
	Changes                       int
	// Time from each alias change to the first response naming the new version.
	ServedAfter []time.Duration
	Max         time.Duration
	NotServed   int // changes not served within the timeout
}

// HotSwap keeps Score under load while promoting and rolling back a model
// through the admin API.
func HotSwap(ctx context.Context, o Options, s SwapOptions) (SwapResult, error) {
	if s.Changes == 0 {
		s.Changes = 20
	}
	if s.Pause == 0 {
		s.Pause = 200 * time.Millisecond
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return SwapResult{}, err
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.Token)
	scoring := promov1.NewScoringServiceClient(conn)
	admin := promov1.NewRegistryServiceClient(conn)

	var res SwapResult
	var requests, failed, unversioned atomic.Int64
	type seen struct {
		version string
		at      time.Time
	}
	var mu sync.Mutex
	var observations []seen
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for loadCtx.Err() == nil {
				resp, err := scoring.Score(actx, &promov1.ScoreRequest{UserId: o.Users[r.IntN(len(o.Users))]})
				if loadCtx.Err() != nil && err != nil {
					return
				}
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				v := resp.GetModel().GetVersion()
				if v == "" {
					unversioned.Add(1)
					continue
				}
				mu.Lock()
				if n := len(observations); n == 0 || observations[n-1].version != v {
					observations = append(observations, seen{v, time.Now()})
				}
				mu.Unlock()
			}
		}(w)
	}
	servedSince := func(version string, since time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		for i := len(observations) - 1; i >= 0 && !observations[i].at.Before(since); i-- {
			if observations[i].version == version {
				return true
			}
		}
		return false
	}
	time.Sleep(500 * time.Millisecond) // load running before the first change
	var runErr error
	for i := 0; i < s.Changes && ctx.Err() == nil; i++ {
		var target string
		var err error
		start := time.Now()
		if i%2 == 0 {
			var r *promov1.PromoteResponse
			r, err = admin.Promote(actx, &promov1.PromoteRequest{Model: s.Model, Alias: s.Alias, Version: s.Candidate, Reason: fmt.Sprintf("hot-swap test %d", i)})
			target = r.GetChange().GetToVersion()
		} else {
			var r *promov1.RollbackResponse
			r, err = admin.Rollback(actx, &promov1.RollbackRequest{Model: s.Model, Alias: s.Alias, Reason: fmt.Sprintf("hot-swap test %d", i)})
			target = r.GetChange().GetToVersion()
		}
		if err != nil {
			runErr = fmt.Errorf("change %d: %w", i, err)
			break
		}
		res.Changes++
		served := false
		for time.Since(start) < s.Timeout {
			if servedSince(target, start) {
				served = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		d := time.Since(start)
		if !served {
			res.NotServed++
		}
		res.ServedAfter = append(res.ServedAfter, d)
		res.Max = max(res.Max, d)
		time.Sleep(s.Pause)
	}
	stopLoad()
	wg.Wait()
	res.Requests, res.Failed, res.Unversioned = requests.Load(), failed.Load(), unversioned.Load()
	return res, runErr
}

// PrintSwap writes the hot-swap summary.
func PrintSwap(w io.Writer, r SwapResult, s SwapOptions) {
	fmt.Fprintf(w, "hot swap: %d alias changes under Score load: %d requests, %d failed, %d without a version; "+
		"new version served after at most %s (timeout %s), %d not served in time\n",
		r.Changes, r.Requests, r.Failed, r.Unversioned, r.Max.Round(time.Millisecond), s.Timeout, r.NotServed)
}
