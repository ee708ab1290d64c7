package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/cli"
	"github.com/promoai/promo/server/app"
)

// The campaign walk-through of docs/campaigns.md through a running server:
// promoctl -server and the REST calls create, list, show, pause, update and
// read the history of the page's example campaign; only an admin may
// change it, an invalid campaign is refused field by field, a stale edit
// with a conflict.
func TestCampaignsThroughTheAPI(t *testing.T) {
	s := startServer(t, false)
	doc, err := os.ReadFile("../../docs/campaigns.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```json\n")
	example, _, _ := strings.Cut(rest, "```")
	file := filepath.Join(t.TempDir(), "spring.json")
	os.WriteFile(file, []byte(example), 0o600)
	promoctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Main(context.Background(), append([]string{"-server", s.grpcAddr, "-token", adminToken}, args...), cli.Env{}, &out, &out)
		return out.String(), err
	}
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"campaigns", "create", "-file", file, "-reason", "spring plan"}, "campaign spring-sale is at revision 1 (active)"},
		{[]string{"campaigns", "list"}, "spring-sale  active  2027-03-01  2027-03-31  5000"},
		{[]string{"campaigns", "show", "spring-sale"}, `"revision": 1`},
		{[]string{"campaigns", "pause", "spring-sale", "-reason", "stock issue"}, "campaign spring-sale is paused (revision 2)"},
		{[]string{"campaigns", "history", "spring-sale"}, "ada"},
	} {
		out, err := promoctl(st.args...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("promoctl %s: %v\n%s\nwant %q", strings.Join(st.args, " "), err, out, st.want)
		}
	}

	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+s.httpAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The page's JSON is a valid REST body as it is.
	autumn := strings.Replace(example, `"spring-sale"`, `"autumn-sale"`, 1)
	if code, body := call("POST", "/v1/campaigns", userToken, `{"campaign":`+autumn+`,"reason":"x"}`); code != http.StatusForbidden {
		t.Fatalf("create with a user token: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/campaigns", adminToken, `{"campaign":`+autumn+`,"reason":"autumn plan"}`); code != http.StatusOK || !strings.Contains(body, `"revision":1`) {
		t.Fatalf("REST create: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/campaigns", "", ""); code != http.StatusOK || !strings.Contains(body, "autumn-sale") || !strings.Contains(body, "spring-sale") {
		t.Fatalf("REST list: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/campaigns/autumn-sale/pause", adminToken, `{"reason":"stock"}`); code != http.StatusOK || !strings.Contains(body, `"state":"paused"`) {
		t.Fatalf("REST pause: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/campaigns/autumn-sale/history", "", ""); code != http.StatusOK || !strings.Contains(body, `"action":"pause"`) || !strings.Contains(body, `"actor":"ada"`) {
		t.Fatalf("REST history: %d %s", code, body)
	}
	// A stale edit is a conflict; an invalid campaign names its fields.
	if code, body := call("PUT", "/v1/campaigns/autumn-sale", adminToken, `{"campaign":`+autumn+`,"revision":1,"reason":"late"}`); code != http.StatusConflict || !strings.Contains(body, "revision 2") {
		t.Fatalf("stale REST update: %d %s", code, body)
	}
	bad := strings.Replace(strings.Replace(autumn, `"budget": 5000`, `"budget": 0`, 1), `"kind": "threshold"`, `"kind": "bogo"`, 1)
	bad = strings.Replace(bad, `"autumn-sale"`, `"winter-sale"`, 1)
	code, body := call("POST", "/v1/campaigns", adminToken, `{"campaign":`+bad+`,"reason":"x"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"field":"budget"`) || !strings.Contains(body, `"field":"offers[1].kind"`) {
		t.Fatalf("invalid REST create: %d %s", code, body)
	}
	os.WriteFile(file, []byte(bad), 0o600)
	if _, err := promoctl("campaigns", "create", "-file", file, "-reason", "x"); err == nil || !strings.Contains(err.Error(), "budget: 0 must be positive") {
		t.Fatalf("invalid promoctl create: %v", err)
	}
	if code, _ := call("GET", "/v1/campaigns/nope", "", ""); code != http.StatusNotFound {
		t.Fatalf("a missing campaign: %d", code)
	}
	// The readout: none until the trainer publishes one.
	if code, body := call("GET", "/v1/campaigns/spring-sale/readout", "", ""); code != http.StatusNotFound || !strings.Contains(body, "promo-trainer readout") {
		t.Fatalf("readout before the trainer's: %d %s", code, body)
	}
	r := &campaign.Readout{Campaign: "spring-sale", OutcomeDays: 7, Verdict: campaign.VerdictGain,
		Groups:      []campaign.Group{{Name: "holdout", Shoppers: 900}, {Name: "campaign", Shoppers: 8100}},
		Comparisons: []campaign.Comparison{{Group: "campaign", Control: "holdout", Conversion: campaign.Effect{Diff: 0.05, Lo: 0.03, Hi: 0.07}, Verdict: campaign.VerdictGain}}}
	if err := campaign.PublishReadout(context.Background(), s.bucket, r); err != nil {
		t.Fatal(err)
	}
	if code, body := call("GET", "/v1/campaigns/spring-sale/readout", "", ""); code != http.StatusOK || !strings.Contains(body, `"verdict":"significant gain"`) || !strings.Contains(body, `"lo":0.03`) {
		t.Fatalf("readout: %d %s", code, body)
	}
}

// liveCampaign stores a campaign that runs from start to end with one
// 10%-off offer (the test uplift model's pct10 arm).
func liveCampaign(t *testing.T, s *testServer, id string, start, end time.Time, budget, holdout float64) {
	t.Helper()
	c := campaign.Campaign{ID: id, Name: id, Start: start, End: end, Budget: budget, HoldoutShare: holdout,
		Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}
	if _, err := campaign.NewStore(s.bucket).Create(context.Background(), c, "test", "setup"); err != nil {
		t.Fatal(err)
	}
}

// waitCampaign waits until every replica decides with campaign id.
func waitCampaign(t *testing.T, id string, clients ...promov1.PromotionServiceClient) {
	t.Helper()
	for _, c := range clients {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r, err := c.GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: "probe", Cart: &promov1.Cart{Value: 50}})
			if err != nil {
				t.Fatal(err)
			}
			if r.CampaignId == id && !strings.Contains(r.Reason, "rather than risk overspending") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a replica does not decide with campaign %s: %+v", id, r)
			}
		}
	}
}

// A live campaign decides offers on every replica within the check
// interval. A shopper keeps their arm across 1,000 calls alternating
// between two replicas; shoppers in the campaign's holdout never get an
// offer and are logged as control with the holdout share as propensity.
func TestCampaignArmsAreStickyAcrossReplicas(t *testing.T) {
	explore := func(o *app.Options) { o.Exploration = 0.3 }
	a := startServer(t, true, explore)
	b := startServer(t, true, explore, func(o *app.Options) { o.Store.Dir = filepath.Join(a.dir, "registry") })
	now := time.Now()
	liveCampaign(t, a, "spring", now.Add(-time.Hour), now.Add(30*24*time.Hour), 1e6, 0.2)
	clients := []promov1.PromotionServiceClient{promov1.NewPromotionServiceClient(a.conn), promov1.NewPromotionServiceClient(b.conn)}
	waitCampaign(t, "spring", clients...)
	arms := map[string]int{}
	users := []string{"alice"}
	for i := range 100 {
		users = append(users, fmt.Sprintf("shopper-%d", i))
	}
	for _, user := range users {
		calls := 10
		if user == "alice" {
			calls = 1000
		}
		first := ""
		for i := range calls {
			r, err := clients[i%2].GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: user, Cart: &promov1.Cart{Value: 50}})
			if err != nil {
				t.Fatal(err)
			}
			if r.CampaignId != "spring" {
				t.Fatalf("%s: decided by %q: %+v", user, r.CampaignId, r)
			}
			arm := r.ExperimentArm
			if arm == "" {
				arm = "(targeted)"
			}
			if i == 0 {
				first = arm
				arms[arm]++
			} else if arm != first {
				t.Fatalf("%s: arm %s on call %d (replica %d), %s on the first", user, arm, i, i%2, first)
			}
			if arm == "control" && (len(r.Offers) != 0 || (strings.Contains(r.Reason, "persistent control") && r.Propensity != 0.2)) {
				t.Fatalf("%s is in control: %+v", user, r)
			}
			for _, o := range r.Offers {
				if o.CampaignId != "spring" {
					t.Fatalf("%s: an offer without its campaign: %+v", user, o)
				}
			}
		}
	}
	// 20% held out, 30% of the rest in the experiment (a fifth of those
	// in its own control arm).
	if arms["control"] < 15 || arms["control"] > 45 || arms["(targeted)"] < 40 {
		t.Errorf("arms of 101 shoppers: %v", arms)
	}
}

// Two replicas spending on one campaign stay within its budget together,
// and say so when it is spent; when the spend ledger cannot be written,
// the campaign makes no offers.
func TestCampaignBudgetHoldsAcrossReplicas(t *testing.T) {
	now := time.Now().UTC()
	start, end := now.Truncate(24*time.Hour), now.Add(40*time.Second)
	if !end.Before(start.Add(24 * time.Hour)) {
		t.Skip("within a minute of UTC midnight: the campaign would span two days")
	}
	targeted := func(o *app.Options) { o.Exploration = 0 }
	a := startServer(t, true, targeted)
	b := startServer(t, true, targeted, func(o *app.Options) { o.Store.Dir = filepath.Join(a.dir, "registry") })
	const budget = 10.0
	liveCampaign(t, a, "flash", start, end, budget, 0)
	clients := []promov1.PromotionServiceClient{promov1.NewPromotionServiceClient(a.conn), promov1.NewPromotionServiceClient(b.conn)}
	waitCampaign(t, "flash", clients...)
	offers, spentReason := 0, ""
	for i := range 600 {
		r, err := clients[i%2].GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: fmt.Sprintf("shopper-%d", i), Cart: &promov1.Cart{Value: 50}})
		if err != nil {
			t.Fatal(err)
		}
		offers += len(r.Offers)
		if strings.Contains(r.Reason, campaign.ReasonBudgetSpent) {
			spentReason = r.Reason
		}
		if i%20 == 0 {
			time.Sleep(60 * time.Millisecond) // let the replicas look at the ledger now and then
		}
	}
	time.Sleep(300 * time.Millisecond)
	ledger, err := campaign.ReadSpend(context.Background(), a.bucket, "flash")
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, r := range ledger {
		total += r.Total
	}
	if len(ledger) != 2 || total > budget+1e-9 || total < budget/2 || offers == 0 || spentReason == "" {
		t.Fatalf("%d replicas spent %.3f of a budget of %.0f on %d offers; the budget-spent reason: %q", len(ledger), total, budget, offers, spentReason)
	}
	got, err := promov1.NewCampaignServiceClient(b.conn).GetCampaign(context.Background(), &promov1.GetCampaignRequest{Id: "flash"})
	if err != nil || got.GetSpend().GetReplicas() != 2 || math.Abs(got.GetSpend().GetTotal()-total) > 1e-9 {
		t.Fatalf("GetCampaign's spend %+v (ledger total %v): %v", got.GetSpend(), total, err)
	}

	// The ledger cannot be written: no offers, and the reason says why.
	if err := os.RemoveAll(filepath.Join(a.dir, "registry", campaign.SpendDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "registry", strings.TrimSuffix(campaign.SpendDir, "/")), []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := clients[0].GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: "bob", Cart: &promov1.Cart{Value: 50}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Reason, "spend ledger could not be read") {
			if len(r.Offers) != 0 {
				t.Fatalf("offers without a ledger: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still deciding without a ledger: %+v", r)
		}
	}
}

// A shopper is shown at most the frequency cap's offers in its window.
func TestCampaignFrequencyCap(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.Exploration = 0 })
	now := time.Now()
	c := campaign.Campaign{ID: "capped", Name: "capped", Start: now.Add(-time.Hour), End: now.Add(30 * 24 * time.Hour), Budget: 1e6,
		FrequencyCap: campaign.FrequencyCap{Max: 2, PerHours: 24},
		Offers:       []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}
	if _, err := campaign.NewStore(s.bucket).Create(context.Background(), c, "test", "setup"); err != nil {
		t.Fatal(err)
	}
	client := promov1.NewPromotionServiceClient(s.conn)
	waitCampaign(t, "capped", client)
	var got []int
	for range 4 {
		r, err := client.GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: "bob", Cart: &promov1.Cart{Value: 50}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, len(r.Offers))
		if len(r.Offers) == 0 && !strings.Contains(r.Reason, "frequency cap") {
			t.Fatalf("no offer, but not for the cap: %s", r.Reason)
		}
	}
	if fmt.Sprint(got) != "[1 1 0 0]" {
		t.Fatalf("offers on four calls: %v, want two then none", got)
	}
}

// Of two live campaigns, the one with the higher priority decides; paused,
// it stops deciding within the check interval and the other takes over.
func TestCampaignPriorityAndPause(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.Exploration = 0 })
	now := time.Now()
	store := campaign.NewStore(s.bucket)
	for _, c := range []campaign.Campaign{
		{ID: "low", Name: "low", Priority: 1, Start: now.Add(-time.Hour), End: now.Add(24 * time.Hour), Budget: 1e6,
			Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}},
		{ID: "high", Name: "high", Priority: 5, Start: now.Add(-time.Hour), End: now.Add(24 * time.Hour), Budget: 1e6,
			Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}},
	} {
		if _, err := store.Create(context.Background(), c, "test", "setup"); err != nil {
			t.Fatal(err)
		}
	}
	client := promov1.NewPromotionServiceClient(s.conn)
	waitCampaign(t, "high", client)
	if _, err := store.SetState(context.Background(), "high", campaign.ActionPause, "test", "stock issue"); err != nil {
		t.Fatal(err)
	}
	waitCampaign(t, "low", client)
}
