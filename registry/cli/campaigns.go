package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

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
	actor    string
}

// campaigns runs "promoctl campaigns ...": rest is what follows "campaigns".
func campaigns(ctx context.Context, s *campaign.Store, rest []string, a campaignArgs, out *printer) error {
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
			saved, err = s.Create(ctx, c, a.actor, a.reason)
		} else {
			if a.revision < 1 {
				return errors.New("campaigns update: give -revision, the revision your edit was made on (campaigns show ID prints it)")
			}
			saved, err = s.Update(ctx, c, a.revision, a.actor, a.reason)
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
		c, err := s.SetState(ctx, id, rest[0], a.actor, a.reason)
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

// explain lists a refused campaign's problems one field per line.
func explain(err error) error {
	fes := campaign.FieldErrors(err)
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
