package campaign

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// ToProto converts a campaign for the API.
func ToProto(c *Campaign) *promov1.Campaign {
	out := &promov1.Campaign{
		Id: c.ID, Name: c.Name, State: c.State, Start: stamp(c.Start), End: stamp(c.End), Budget: c.Budget, DailyCap: c.DailyCap,
		FrequencyCap: &promov1.FrequencyCap{Max: int32(c.FrequencyCap.Max), PerHours: int32(c.FrequencyCap.PerHours)},
		HoldoutShare: c.HoldoutShare, Priority: int32(c.Priority), AuditedAttributes: c.AuditedAttributes,
		Salt: c.Salt, Revision: int32(c.Revision), UpdatedAt: stamp(c.UpdatedAt), UpdatedBy: c.UpdatedBy, FairnessFloor: c.FairnessFloor,
	}
	for _, o := range c.Offers {
		out.Offers = append(out.Offers, &promov1.CampaignOffer{
			Id: o.ID, Kind: o.Kind, Arm: o.Arm, Threshold: o.Threshold, AmountOff: o.AmountOff, PercentOff: o.PercentOff,
			GiftItemId: o.GiftItemID, GiftCost: o.GiftCost, Segments: o.Segments, Categories: o.Categories,
			MinCartValue: o.MinCartValue, ValidForHours: int32(o.ValidForHours),
		})
	}
	return out
}

// FromProto converts an API campaign. The fields the store sets (state
// aside, which Create honours as "paused") are taken as given and
// overwritten by the store.
func FromProto(p *promov1.Campaign) Campaign {
	c := Campaign{
		ID: p.GetId(), Name: p.GetName(), State: p.GetState(), Start: timeOf(p.GetStart()), End: timeOf(p.GetEnd()),
		Budget: p.GetBudget(), DailyCap: p.GetDailyCap(),
		FrequencyCap: FrequencyCap{Max: int(p.GetFrequencyCap().GetMax()), PerHours: int(p.GetFrequencyCap().GetPerHours())},
		HoldoutShare: p.GetHoldoutShare(), Priority: int(p.GetPriority()), AuditedAttributes: p.GetAuditedAttributes(),
		FairnessFloor: p.GetFairnessFloor(), Salt: p.GetSalt(), Revision: int(p.GetRevision()), UpdatedAt: timeOf(p.GetUpdatedAt()), UpdatedBy: p.GetUpdatedBy(),
	}
	for _, o := range p.GetOffers() {
		c.Offers = append(c.Offers, Offer{
			ID: o.GetId(), Kind: o.GetKind(), Arm: o.GetArm(), Threshold: o.GetThreshold(), AmountOff: o.GetAmountOff(),
			PercentOff: o.GetPercentOff(), GiftItemID: o.GetGiftItemId(), GiftCost: o.GetGiftCost(), Segments: o.GetSegments(),
			Categories: o.GetCategories(), MinCartValue: o.GetMinCartValue(), ValidForHours: int(o.GetValidForHours()),
		})
	}
	return c
}

// ChangeToProto converts a history entry.
func ChangeToProto(ch *Change) *promov1.CampaignChange {
	return &promov1.CampaignChange{Revision: int32(ch.Revision), Action: ch.Action, Actor: ch.Actor, Reason: ch.Reason,
		Time: stamp(ch.Time), Campaign: ToProto(&ch.Campaign)}
}

// ChangeFromProto converts an API history entry.
func ChangeFromProto(p *promov1.CampaignChange) Change {
	return Change{Revision: int(p.GetRevision()), Action: p.GetAction(), Actor: p.GetActor(), Reason: p.GetReason(),
		Time: timeOf(p.GetTime()), Campaign: FromProto(p.GetCampaign())}
}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// ReadoutToProto converts a readout for the API.
func ReadoutToProto(r *Readout) *promov1.CampaignReadout {
	effect := func(e Effect) *promov1.ReadoutEffect { return &promov1.ReadoutEffect{Diff: e.Diff, Lo: e.Lo, Hi: e.Hi} }
	out := &promov1.CampaignReadout{Campaign: r.Campaign, ComputedAt: stamp(r.ComputedAt), From: stamp(r.From), To: stamp(r.To),
		OutcomeDays: int32(r.OutcomeDays), MarginRate: r.MarginRate, Spend: r.Spend, Budget: r.Budget, Verdict: r.Verdict, Note: r.Note,
		FairnessGivenUp: r.FairnessGivenUp, Redemptions: int32(r.Redemptions), RedeemedCost: r.RedeemedCost}
	for _, g := range r.Groups {
		out.Groups = append(out.Groups, &promov1.ReadoutGroup{Name: g.Name, Shoppers: int32(g.Shoppers), Conversion: g.Conversion,
			RevenuePerShopper: g.RevenuePerShopper, Aov: g.AOV, Repurchase: g.Repurchase})
	}
	for _, f := range r.Fairness {
		pf := &promov1.ReadoutFairness{Attribute: f.Attribute, Di: f.DI, BelowFloor: f.BelowFloor}
		for _, g := range f.Groups {
			pf.Groups = append(pf.Groups, &promov1.ReadoutFairnessGroup{Value: g.Value, Shoppers: int32(g.Shoppers), OfferRate: g.OfferRate})
		}
		out.Fairness = append(out.Fairness, pf)
	}
	for _, c := range r.Comparisons {
		out.Comparisons = append(out.Comparisons, &promov1.ReadoutComparison{Group: c.Group, Control: c.Control,
			Conversion: effect(c.Conversion), Revenue: effect(c.Revenue), Repurchase: effect(c.Repurchase),
			IncrementalConversions: effect(c.IncrementalConversions), IncrementalProfit: effect(c.IncrementalProfit), Verdict: c.Verdict, Test: c.Test})
	}
	return out
}
