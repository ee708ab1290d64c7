package campaign_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/providers/inmem"
)

func spring() campaign.Campaign {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	return campaign.Campaign{
		ID: "spring-sale", Name: "Spring sale", Start: start, End: start.AddDate(0, 0, 30),
		Budget: 5000, DailyCap: 300, FrequencyCap: campaign.FrequencyCap{Max: 3, PerHours: 24}, HoldoutShare: 0.1,
		Offers: []campaign.Offer{
			{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10},
			{ID: "spend50get10", Kind: campaign.KindThreshold, Arm: "spend50get10", Threshold: 50, AmountOff: 10, Categories: []string{"fashion"}},
		},
		AuditedAttributes: []string{"gender"},
	}
}

// An invalid campaign is refused with one field error per problem, each
// naming its field.
func TestValidateNamesEveryField(t *testing.T) {
	c := spring()
	c.Salt, c.State = "s", campaign.StateActive
	if err := c.Validate(); err != nil {
		t.Fatalf("valid campaign refused: %v", err)
	}
	c.Budget = 0
	c.End = c.Start.Add(-time.Hour)
	c.HoldoutShare = 1
	c.Offers = append(c.Offers, campaign.Offer{ID: "pct10", Kind: "bogo", Arm: "x"}, campaign.Offer{ID: "p", Kind: campaign.KindPercent, Arm: "control", PercentOff: 120})
	err := c.Validate()
	if !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	var fields []string
	for _, fe := range campaign.FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	for _, want := range []string{"budget", "end", "holdout_share", "offers[2].id", "offers[2].kind", "offers[3].arm", "offers[3].percent_off"} {
		if !slices.Contains(fields, want) {
			t.Errorf("no error for %s; got %v (%v)", want, fields, err)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	s := campaign.NewStore(inmem.New())
	c, err := s.Create(ctx, spring(), "ada", "spring plan")
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != 1 || c.State != campaign.StateActive || c.Salt == "" {
		t.Fatalf("created: %+v", c)
	}
	if _, err := s.Create(ctx, spring(), "bob", "again"); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("a second create of the same id: %v", err)
	}
	// An edit keeps the salt, whatever it says, so shoppers keep their arms.
	edit := *c
	edit.Budget, edit.Salt = 8000, "other"
	c2, err := s.Update(ctx, edit, 1, "ada", "more budget")
	if err != nil || c2.Revision != 2 || c2.Budget != 8000 || c2.Salt != c.Salt {
		t.Fatalf("update: %+v, %v", c2, err)
	}
	// An edit made on revision 1 is now stale.
	if _, err := s.Update(ctx, edit, 1, "bob", "stale"); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("stale edit: %v", err)
	}
	bad := *c2
	bad.Budget = -1
	if _, err := s.Update(ctx, bad, 2, "ada", "oops"); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("invalid edit: %v", err)
	}
	for _, a := range []string{campaign.ActionPause, campaign.ActionResume, campaign.ActionEnd} {
		if _, err := s.SetState(ctx, "spring-sale", a, "ada", a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if _, err := s.SetState(ctx, "spring-sale", campaign.ActionResume, "ada", "again"); !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("resume an ended campaign: %v", err)
	}
	got, _ := s.Get(ctx, "spring-sale")
	if _, err := s.Update(ctx, *got, got.Revision, "ada", "late edit"); !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("edit an ended campaign: %v", err)
	}
	h, err := s.History(ctx, "spring-sale")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ch := range h {
		actions = append(actions, ch.Action)
	}
	if want := []string{"end", "resume", "pause", "update", "create"}; !slices.Equal(actions, want) || h[3].Campaign.Budget != 8000 || h[3].Reason != "more budget" {
		t.Fatalf("history %v, want %v (%+v)", actions, want, h[3])
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("missing campaign: %v", err)
	}
	if all, err := s.List(ctx); err != nil || len(all) != 1 {
		t.Fatalf("list: %v, %v", all, err)
	}
}

// Two admins edit the same revision at once: exactly one wins, the other
// is told to re-read.
func TestConcurrentEditsOneWins(t *testing.T) {
	ctx := context.Background()
	s := campaign.NewStore(inmem.New())
	c, err := s.Create(ctx, spring(), "ada", "plan")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			e := *c
			e.DailyCap = float64(100 + i)
			_, errs[i] = s.Update(ctx, e, c.Revision, "admin", "cap")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, registry.ErrConflict):
			t.Fatalf("lost edit: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d edits of one revision won", won)
	}
	if got, _ := s.Get(ctx, c.ID); got.Revision != 2 {
		t.Fatalf("revision %d after one winning edit", got.Revision)
	}
}
