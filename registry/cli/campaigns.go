package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
)

const campaignsUsage = `campaigns list                      campaigns, their state, dates, budget and revision
campaigns show ID                   a campaign's settings and offers
campaigns create -file F            a new campaign from its JSON (docs/campaigns.md; needs -reason)
campaigns update -file F -revision N  replace a campaign's settings; N is the revision the edit was made on
campaigns pause|resume|end ID       change a campaign's state (needs -reason; an ended campaign stays ended)
campaigns history ID                every change, newest first, with who, when and why`

// campaignArgs are the flags the campaign commands read.
type campaignArgs struct {
	file     string
	revision int
	reason   string
}

// campaignBackend is what the campaign commands need: the store, or a
// server's campaign API.
type campaignBackend interface {
	List(ctx context.Context) ([]campaign.Campaign, error)
	Get(ctx context.Context, id string) (*campaign.Campaign, error)
	Create(ctx context.Context, c campaign.Campaign, reason string) (*campaign.Campaign, error)
	Update(ctx context.Context, c campaign.Campaign, revision int, reason string) (*campaign.Campaign, error)
	SetState(ctx context.Context, id, action, reason string) (*campaign.Campaign, error)
	History(ctx context.Context, id string) ([]campaign.Change, error)
}

// campaigns runs "promoctl campaigns ...": rest is what follows "campaigns".
func campaigns(ctx context.Context, s campaignBackend, rest []string, a campaignArgs, out *printer) error {
	if len(rest) == 0 {
		return fmt.Errorf("campaigns: want a subcommand:\n%s", campaignsUsage)
	}
	needID := func() (string, error) {
		if len(rest) != 2 {
			return "", fmt.Errorf("campaigns %s: want ID", rest[0])
		}
		return rest[1], nil
	}
	needReason := func() error {
		if a.reason == "" {
			return fmt.Errorf("campaigns %s: give a -reason; it is recorded in the campaign's history", rest[0])
		}
		return nil
	}
	switch rest[0] {
	case "list":
		cs, err := s.List(ctx)
		if err != nil {
			return err
		}
		return out.campaigns(cs)
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		c, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		return out.emit(c)
	case "create", "update":
		if len(rest) != 1 || a.file == "" {
			return fmt.Errorf("campaigns %s: want -file CAMPAIGN.json", rest[0])
		}
		if err := needReason(); err != nil {
			return err
		}
		c, err := readCampaign(a.file)
		if err != nil {
			return err
		}
		var saved *campaign.Campaign
		if rest[0] == "create" {
			saved, err = s.Create(ctx, c, a.reason)
		} else {
			if a.revision < 1 {
				return errors.New("campaigns update: give -revision, the revision your edit was made on (campaigns show ID prints it)")
			}
			saved, err = s.Update(ctx, c, a.revision, a.reason)
		}
		if err != nil {
			return explain(err)
		}
		fmt.Fprintf(out.w, "campaign %s is at revision %d (%s)\n", saved.ID, saved.Revision, saved.State)
		return nil
	case "pause", "resume", "end":
		id, err := needID()
		if err != nil {
			return err
		}
		if err := needReason(); err != nil {
			return err
		}
		c, err := s.SetState(ctx, id, rest[0], a.reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(out.w, "campaign %s is %s (revision %d)\n", c.ID, c.State, c.Revision)
		return nil
	case "history":
		id, err := needID()
		if err != nil {
			return err
		}
		h, err := s.History(ctx, id)
		if err != nil {
			return err
		}
		if out.json {
			return out.emit(h)
		}
		t := out.table()
		fmt.Fprintln(t, "REV\tTIME\tACTION\tACTOR\tREASON\tSTATE\tBUDGET")
		for _, ch := range h {
			fmt.Fprintf(t, "%d\t%s\t%s\t%s\t%s\t%s\t%g\n", ch.Revision, ch.Time.Format(time.DateTime), ch.Action, ch.Actor, ch.Reason, ch.Campaign.State, ch.Campaign.Budget)
		}
		return t.Flush()
	}
	return fmt.Errorf("campaigns: unknown subcommand %q; want:\n%s", rest[0], campaignsUsage)
}

// readCampaign reads a campaign's JSON, refusing unknown fields.
func readCampaign(path string) (campaign.Campaign, error) {
	var c campaign.Campaign
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// explain lists a refused campaign's problems one field per line, from
// the store's field errors or the API's google.rpc.BadRequest detail.
func explain(err error) error {
	fes := campaign.FieldErrors(err)
	if st, ok := status.FromError(err); ok && len(fes) == 0 {
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.GetFieldViolations() {
					fes = append(fes, campaign.FieldError{Field: v.GetField(), Problem: v.GetDescription()})
				}
			}
		}
	}
	if len(fes) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString("the campaign is not valid:")
	for _, fe := range fes {
		b.WriteString("\n  " + fe.Error())
	}
	return fmt.Errorf("%s: %w", b.String(), registry.ErrInvalid)
}

func (p *printer) campaigns(cs []campaign.Campaign) error {
	if p.json {
		return p.emit(cs)
	}
	t := p.table()
	fmt.Fprintln(t, "ID\tSTATE\tSTART\tEND\tBUDGET\tDAILY CAP\tHOLDOUT\tOFFERS\tREV\tUPDATED BY")
	for _, c := range cs {
		ids := make([]string, len(c.Offers))
		for i, o := range c.Offers {
			ids[i] = o.ID
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%g\t%g\t%g\t%s\t%d\t%s\n", c.ID, c.State, c.Start.Format(time.DateOnly), c.End.Format(time.DateOnly),
			c.Budget, c.DailyCap, c.HoldoutShare, strings.Join(ids, ","), c.Revision, c.UpdatedBy)
	}
	return t.Flush()
}

// storeCampaigns works on the store directly, as actor.
type storeCampaigns struct {
	*campaign.Store
	actor string
}

func (s storeCampaigns) Create(ctx context.Context, c campaign.Campaign, reason string) (*campaign.Campaign, error) {
	return s.Store.Create(ctx, c, s.actor, reason)
}

func (s storeCampaigns) Update(ctx context.Context, c campaign.Campaign, revision int, reason string) (*campaign.Campaign, error) {
	return s.Store.Update(ctx, c, revision, s.actor, reason)
}

func (s storeCampaigns) SetState(ctx context.Context, id, action, reason string) (*campaign.Campaign, error) {
	return s.Store.SetState(ctx, id, action, s.actor, reason)
}

// serverCampaigns works through a server's campaign API: the server
// records the token's name as the actor.
type serverCampaigns struct{ *serverBackend }

func (s serverCampaigns) client() promov1.CampaignServiceClient {
	return promov1.NewCampaignServiceClient(s.conn)
}

func (s serverCampaigns) List(ctx context.Context) ([]campaign.Campaign, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.client().ListCampaigns(ctx, &promov1.ListCampaignsRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]campaign.Campaign, 0, len(resp.GetCampaigns()))
	for _, c := range resp.GetCampaigns() {
		out = append(out, campaign.FromProto(c))
	}
	return out, nil
}

func (s serverCampaigns) one(c *promov1.Campaign, err error) (*campaign.Campaign, error) {
	if err != nil {
		return nil, err
	}
	out := campaign.FromProto(c)
	return &out, nil
}

func (s serverCampaigns) Get(ctx context.Context, id string) (*campaign.Campaign, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.one(s.client().GetCampaign(ctx, &promov1.GetCampaignRequest{Id: id}))
}

func (s serverCampaigns) Create(ctx context.Context, c campaign.Campaign, reason string) (*campaign.Campaign, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.one(s.client().CreateCampaign(ctx, &promov1.CreateCampaignRequest{Campaign: campaign.ToProto(&c), Reason: reason}))
}

func (s serverCampaigns) Update(ctx context.Context, c campaign.Campaign, revision int, reason string) (*campaign.Campaign, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.one(s.client().UpdateCampaign(ctx, &promov1.UpdateCampaignRequest{Id: c.ID, Campaign: campaign.ToProto(&c), Revision: int32(revision), Reason: reason}))
}

func (s serverCampaigns) SetState(ctx context.Context, id, action, reason string) (*campaign.Campaign, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.one(s.client().SetCampaignState(ctx, &promov1.SetCampaignStateRequest{Id: id, Action: action, Reason: reason}))
}

func (s serverCampaigns) History(ctx context.Context, id string) ([]campaign.Change, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.client().CampaignHistory(ctx, &promov1.CampaignHistoryRequest{Id: id})
	if err != nil {
		return nil, err
	}
	out := make([]campaign.Change, 0, len(resp.GetChanges()))
	for _, ch := range resp.GetChanges() {
		out = append(out, campaign.ChangeFromProto(ch))
	}
	return out, nil
}
