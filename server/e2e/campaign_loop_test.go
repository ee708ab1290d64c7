package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
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
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/providers/fs"
)

// TestCampaignLoop runs a campaign through the real binaries: the server
// decides offers under a live campaign with a 30% holdout (no model yet,
// so every other shopper is in its randomized experiment); a simulated
// shop logs each decision's exposure with its campaign id, and its
// shoppers buy more often when shown pct10 (+0.30); then promo-trainer
// readout reads the campaign out of the log, and the API serves it: the
// campaign beats its holdout, and pct10 beats the experiment's control.
func TestCampaignLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	bin := buildBinaries(t, "./trainer/cmd/promo-trainer", "./server/cmd/promo-server")
	storeDir := filepath.Join(bin, "registry")
	bkt, err := fs.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	if _, err := campaign.NewStore(bkt).Create(context.Background(), campaign.Campaign{ID: "spring", Name: "Spring", Start: now.Add(-30 * day),
		End: now.Add(30 * day), Budget: 1e6, HoldoutShare: 0.3, AuditedAttributes: []string{"gender"},
		Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}, "e2e", "spring plan"); err != nil {
		t.Fatal(err)
	}
	token := "loop-3c7e1a9d5b2f4086c1e7a3d9b5f20417"
	s := startServer(t, bin, os.Environ(), token, "-store.dir="+storeDir, "-offers.exploration=1", "-ingest.max-delay=20ms", "-models.check-interval=200ms")
	waitOK(t, "http://"+s.httpAddr+"/healthz")
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	promos, events := promov1.NewPromotionServiceClient(conn), promov1.NewEventServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	in := &ingester{t: t, ctx: ctx, client: events, prefix: "camp"}
	send, flush := in.send, in.flush
	r := rand.New(rand.NewPCG(9, 9))
	groups := map[string]int{}
	for i, deadline := 0, time.Now().Add(10*time.Second); ; i++ {
		resp, err := promos.GetOffers(ctx, &promov1.GetOffersRequest{UserId: fmt.Sprintf("probe-%d", i), Cart: &promov1.Cart{Value: 30}})
		if err != nil {
			t.Fatal(err)
		}
		// An offer of the campaign: it has joined its spend ledger.
		if resp.CampaignId == "spring" && len(resp.Offers) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
		if time.Now().After(deadline) {
			t.Fatalf("the server never decided with the campaign: %+v", resp)
		}
	}
	const users = 2000
	for u := range users {
		user := fmt.Sprintf("s%d", u)
		at := now.Add(-20*day + time.Duration(r.IntN(10*24*60))*time.Minute)
		send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_USER_UPSERT, Time: timestamppb.New(now.Add(-40 * day)), UserId: user,
			User: &promov1.UserAttributes{Gender: []string{"f", "m"}[u%2]}})
		resp, err := promos.GetOffers(ctx, &promov1.GetOffersRequest{UserId: user, Cart: &promov1.Cart{Value: 30}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.CampaignId != "spring" || resp.ExperimentArm == "" {
			t.Fatalf("%s: %+v", user, resp)
		}
		exp := &promov1.Event{Type: promov1.EventType_EVENT_TYPE_PROMO_EXPOSURE, Time: timestamppb.New(at), UserId: user,
			ExperimentArm: resp.ExperimentArm, Propensity: resp.Propensity, DecisionId: resp.DecisionId, CampaignId: resp.CampaignId}
		p := 0.2
		if len(resp.Offers) > 0 {
			exp.OfferId = resp.Offers[0].OfferId
			p += 0.3
		}
		switch {
		case strings.Contains(resp.Reason, "persistent control"):
			groups["holdout"]++
		case len(resp.Offers) > 0:
			groups["pct10"]++
		case resp.ExperimentArm == "pct10":
			groups["pct10 not shown"]++
			if groups["pct10 not shown"] == 1 {
				t.Logf("pct10 drawn, not shown: %s", resp.Reason)
			}
		default:
			groups["experiment control"]++
		}
		send(exp)
		if r.Float64() < p {
			send(&promov1.Event{Type: promov1.EventType_EVENT_TYPE_PURCHASE, Time: timestamppb.New(at.Add(2 * time.Hour)), UserId: user,
				ItemId: "i1", Quantity: 1, UnitPrice: 30, OrderId: "o-" + resp.DecisionId})
		}
	}
	flush()
	time.Sleep(200 * time.Millisecond) // past the group commit

	out, err := exec.Command(filepath.Join(bin, "promo-trainer"), "readout", "-store.dir="+storeDir, "-campaign", "spring").CombinedOutput()
	if err != nil {
		t.Fatalf("promo-trainer readout: %v\n%s", err, out)
	}
	t.Logf("shop's groups %v; readout:\n%s", groups, out)
	for _, want := range []string{"campaign spring: significant gain", "pct10 vs control", "fairness by gender"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the readout lacks %q", want)
		}
	}
	resp, err := http.Get("http://" + s.httpAddr + "/v1/campaigns/spring/readout")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Verdict string
		Groups  []struct {
			Name     string
			Shoppers int
		}
		Comparisons []struct {
			Group, Verdict string
			Conversion     struct{ Diff, Lo, Hi float64 }
		}
	}
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET readout: %d %s", resp.StatusCode, body)
	}
	if got.Verdict != campaign.VerdictGain || got.Groups[0].Name != "holdout" || got.Groups[0].Shoppers != groups["holdout"] {
		t.Fatalf("readout over the API: %s", body)
	}
	// pct10 against the experiment's control: a true lift of 0.30, within
	// four standard errors (the 95% interval would miss it one run in
	// twenty: the server's draws differ from run to run).
	for _, c := range got.Comparisons {
		se := (c.Conversion.Hi - c.Conversion.Lo) / (2 * 1.96)
		if c.Group == "pct10" && (c.Verdict != campaign.VerdictGain || math.Abs(c.Conversion.Diff-0.3) > 4*se) {
			t.Errorf("pct10 vs control: %+v, true lift 0.30", c)
		}
	}
}
