package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/status"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

func (c *Console) campaignList(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	resp, err := c.campaigns.ListCampaigns(ctx, &promov1.ListCampaignsRequest{})
	if err != nil {
		c.fail(w, r, "campaigns", err)
		return
	}
	c.render(w, r, http.StatusOK, "campaigns.html", page{Title: "Campaigns", Data: resp.GetCampaigns()})
}

type campaignData struct {
	Campaign *promov1.Campaign
	History  []*promov1.CampaignChange
	// Readout is the campaign's latest; NoReadout says why there is none.
	Readout   *promov1.CampaignReadout
	NoReadout string
}

func (c *Console) campaign(w http.ResponseWriter, r *http.Request) {
	c.campaignPage(w, r, http.StatusOK, "")
}

// campaignPage shows a campaign's settings, offers and history; code and
// problem come from a refused action.
func (c *Console) campaignPage(w http.ResponseWriter, r *http.Request, code int, problem string) {
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	id := r.PathValue("id")
	cp, err := c.campaigns.GetCampaign(ctx, &promov1.GetCampaignRequest{Id: id})
	if err == nil {
		var h *promov1.CampaignHistoryResponse
		if h, err = c.campaigns.CampaignHistory(ctx, &promov1.CampaignHistoryRequest{Id: id}); err == nil {
			d := campaignData{Campaign: cp, History: h.GetChanges()}
			if d.Readout, err = c.campaigns.GetCampaignReadout(ctx, &promov1.GetCampaignReadoutRequest{Id: id}); err != nil {
				d.NoReadout = status.Convert(err).Message()
			}
			c.render(w, r, code, "campaign.html", page{Title: cp.GetName(), Error: problem, Data: d})
			return
		}
	}
	if problem != "" {
		c.render(w, r, code, "error.html", page{Title: "Error", Error: problem})
		return
	}
	c.fail(w, r, "campaign", err)
}

// campaignAct pauses, resumes or ends a campaign.
func (c *Console) campaignAct(w http.ResponseWriter, r *http.Request) {
	if !c.formOK(w, r) {
		return
	}
	id, action := r.PathValue("id"), r.PostFormValue("action")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		c.campaignPage(w, r, http.StatusBadRequest, "give a reason: it is recorded in the campaign's history")
		return
	}
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	cp, err := c.campaigns.SetCampaignState(ctx, &promov1.SetCampaignStateRequest{Id: id, Action: action, Reason: reason})
	if err != nil {
		code, msg := refusal(err, "changing a campaign")
		c.campaignPage(w, r, code, msg)
		return
	}
	done := fmt.Sprintf("campaign %s is %s (revision %d)", cp.GetId(), cp.GetState(), cp.GetRevision())
	http.Redirect(w, r, Prefix+"campaigns/"+url.PathEscape(id)+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}
