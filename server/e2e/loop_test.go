package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/fs"
)

// TestOffersMeasurementLoop runs the promotion loop through the real
// binaries: a server with no models yet randomizes every offer decision;
// a simulated shop shows what it is told, its shoppers respond (pct10
// lifts conversion by 0.30, the other offers do nothing), and it logs
// exposures and purchases through Ingest as the API asks, plus some
// targeted exposures; then a training run reads them back. Its experiment
// readout must count exactly the randomized exposures of each arm, leave
// the targeted ones out, and find pct10's effect.
func TestOffersMeasurementLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	bin := buildBinaries(t, "./trainer/cmd/promo-trainer", "./server/cmd/promo-server")
	storeDir := filepath.Join(bin, "registry")
	store := []string{"-store.dir=" + storeDir}
	token := "loop-8d2b5f9a1e4c7036b8e1d4a7c2f5b906"
	s := startServer(t, bin, os.Environ(), token, append(store, "-offers.exploration=1", "-ingest.max-delay=20ms")...)
	grpcAddr, httpAddr := s.grpcAddr, s.httpAddr
	// No models yet, so the server is alive but not ready: wait for liveness.
	waitOK(t, "http://"+httpAddr+"/healthz")
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	promos, events := promov1.NewPromotionServiceClient(conn), promov1.NewEventServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)

	in := &ingester{t: t, ctx: ctx, client: events, prefix: "loop"}
	send, flush := in.send, in.flush

	const users, decisionsPerUser = 400, 4
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	r := rand.New(rand.NewPCG(5, 5))
	for i := range 10 {
		send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_ITEM_UPSERT, Time: timestamppb.New(now.Add(-80 * day)), ItemId: fmt.Sprintf("i%d", i),
			Item: &promov1.ItemAttributes{Category: "c", Price: 30}})
	}
	randomized := map[string]int{} // arm -> randomized exposures logged
	targeted := 0
	for u := range users {
		user := fmt.Sprintf("s%d", u)
		// History well before the label period: a few visits and a purchase.
		for k := range 3 {
			at := now.Add(-time.Duration(45+r.IntN(30))*day - time.Duration(k)*time.Hour)
			send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_VIEW, Time: timestamppb.New(at), UserId: user, ItemId: fmt.Sprintf("i%d", r.IntN(10))})
		}
		send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_PURCHASE, Time: timestamppb.New(now.Add(-time.Duration(45+r.IntN(30)) * day)), UserId: user,
			ItemId: "i0", Quantity: 1, UnitPrice: 30, OrderId: fmt.Sprintf("h-%d", u)})
		base := 0.1 + 0.2*r.Float64()
		for k := range decisionsPerUser {
			at := now.Add(-time.Duration(25-6*k)*day + time.Duration(r.IntN(600))*time.Minute)
			resp, err := promos.GetOffers(ctx, &promov1.GetOffersRequest{UserId: user,
				Cart: &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "i1", Quantity: 1, UnitPrice: 30}}}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.ExperimentArm == "" || resp.Propensity != 0.2 {
				t.Fatalf("with every decision randomized: %+v", resp)
			}
			// Log the decision as the API asks: always, with its arm and
			// propensity, whether or not an offer was shown.
			exp := &promov1.Event{Type: promov1.EventType_EVENT_TYPE_PROMO_EXPOSURE, Time: timestamppb.New(at), UserId: user,
				ExperimentArm: resp.ExperimentArm, Propensity: resp.Propensity, DecisionId: resp.DecisionId}
			if len(resp.Offers) > 0 {
				exp.OfferId = resp.Offers[0].OfferId
			}
			send(exp)
			randomized[resp.ExperimentArm]++
			p := base
			if len(resp.Offers) > 0 && resp.Offers[0].OfferId == "pct10" {
				p += 0.3
			}
			if r.Float64() < p {
				send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_PURCHASE, Time: timestamppb.New(at.Add(30 * time.Minute)), UserId: user,
					ItemId: "i1", Quantity: 1, UnitPrice: 30, OrderId: fmt.Sprintf("o-%s", resp.DecisionId)})
			}
		}
		// Every tenth shopper also got a targeted pct10 offer, and bought:
		// counted in, these would inflate pct10's effect.
		if u%10 == 0 {
			at := now.Add(-2*day + time.Duration(u)*time.Minute)
			send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_PROMO_EXPOSURE, Time: timestamppb.New(at), UserId: user,
				ExperimentArm: "pct10", OfferId: "pct10", Propensity: 1, DecisionId: fmt.Sprintf("t-%d", u)})
			send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_PURCHASE, Time: timestamppb.New(at.Add(10 * time.Minute)), UserId: user,
				ItemId: "i1", Quantity: 1, UnitPrice: 30, OrderId: fmt.Sprintf("t-%d", u)})
			targeted++
		}
	}
	flush()
	time.Sleep(200 * time.Millisecond) // past the group commit

	train := exec.Command(filepath.Join(bin, "promo-trainer"), append(store, "-once", "-models=uplift")...)
	out, err := train.CombinedOutput()
	if err != nil {
		t.Fatalf("trainer: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("targeted_exposures=%d", targeted)) {
		t.Fatalf("the run did not count %d targeted exposures:\n%s", targeted, out)
	}
	bkt, err := fs.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := registry.New(bkt).Versions(context.Background(), "uplift")
	if err != nil || len(versions) != 1 {
		t.Fatalf("uplift versions: %v %v\ntrainer output:\n%s", versions, err, out)
	}
	m := versions[0].Metrics
	for arm, k := range randomized {
		if arm == "control" {
			continue
		}
		if got := m["experiment."+arm+".exposures"]; got != float64(k) {
			t.Errorf("%s: the readout counts %v exposures, the shop logged %d randomized ones", arm, got, k)
		}
	}
	// The server's draws differ from run to run (decision ids are random),
	// so the effects are checked within four standard errors, not by the
	// 95% interval, which would miss the truth in one run out of twenty.
	for arm, truth := range map[string]float64{"pct10": 0.3, "amount5": 0, "spend50get10": 0} {
		p := "experiment." + arm + ".conversion_lift"
		lift, lo, hi := m[p], m[p+"_ci_lo"], m[p+"_ci_hi"]
		se := (hi - lo) / (2 * 1.96)
		if math.IsNaN(lift) || !(se > 0) || math.Abs(lift-truth) > 4*se {
			t.Errorf("%s: lift %.3f [%.3f, %.3f], true effect %.2f", arm, lift, lo, hi, truth)
		}
		t.Logf("%s: lift %.3f [%.3f, %.3f], true %.2f", arm, lift, lo, hi, truth)
	}
	if lo := m["experiment.pct10.conversion_lift_ci_lo"]; lo <= 0 {
		t.Errorf("pct10's lift of 0.30 is not significant: interval from %.3f", lo)
	}
	t.Logf("randomized exposures per arm %v, %d targeted left out", randomized, targeted)
}
