package loadtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// CanaryResult is what a canary check saw: how many shoppers the canary
// answered, and how many were answered by one version on one call and
// another on the next.
type CanaryResult struct {
	Shoppers, Canary, Changed, Failed int64
	Versions                          map[string]int64 // alias/version -> shoppers
}

// CanaryCheck scores every user of o twice, from o.Concurrency clients,
// and counts who the canary answered and who changed version.
func CanaryCheck(ctx context.Context, o Options) (CanaryResult, error) {
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return CanaryResult{}, err
	}
	defer conn.Close()
	c := promov1.NewScoringServiceClient(conn)
	r := CanaryResult{Shoppers: int64(len(o.Users)), Versions: map[string]int64{}}
	var next, canary, changed, failed atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(1, o.Concurrency) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(o.Users) && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				var seen [2]string
				for call := range seen {
					resp, err := c.Score(ctx, &promov1.ScoreRequest{UserId: o.Users[i]})
					if err != nil {
						failed.Add(1)
						continue
					}
					seen[call] = resp.GetModel().GetAlias() + "/" + resp.GetModel().GetVersion()
				}
				if seen[0] != seen[1] {
					changed.Add(1)
				}
				if strings.HasPrefix(seen[0], "canary/") {
					canary.Add(1)
				}
				mu.Lock()
				r.Versions[seen[0]]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.Canary, r.Changed, r.Failed = canary.Load(), changed.Load(), failed.Load()
	return r, ctx.Err()
}

// PrintCanary writes a canary check's figures.
func PrintCanary(w io.Writer, r CanaryResult) {
	fmt.Fprintf(w, "canary: answered %d of %d shoppers (%.1f%%), %d answered by two versions on two calls, %d failed calls\n",
		r.Canary, r.Shoppers, 100*float64(r.Canary)/float64(max(1, r.Shoppers)), r.Changed, r.Failed)
}
