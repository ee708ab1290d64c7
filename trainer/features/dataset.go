package features

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// UserRow is one user's processed data.
type UserRow struct {
	ID       string
	Features []float64 // in the order of the Dataset's Names
	AsOf     time.Time // the features' cutoff
	// Protected attributes, for fairness audits only: age, gender and
	// the protected attributes the schema declares (Audit, by name).
	Age    int32
	Gender string
	Audit  map[string]string
	// Labels from the period after the cutoff.
	Buy   bool
	Spend float64
	// Interactions before the cutoff, for collaborative filtering, and in
	// the label period (the time-based holdout of the recommender).
	Items ItemWeights
	// Sessions before the cutoff with two or more items (the newest
	// Config.MaxSessionsPerUser), each its distinct items.
	Sessions  [][]int32
	After     map[int32]float64
	Purchased map[int32]struct{}
	Recent    []int32 // most recent last
	// Active before the cutoff at all.
	Active bool
}

// Exposure is one randomized promotion decision after the cutoff with its
// outcome.
type Exposure struct {
	User int // index into Dataset.Users
	Time time.Time
	Arm  string
	// Converted: the response (Config.Response; by default a purchase)
	// came within its window, before the next exposure.
	Converted bool
	Spend     float64 // what the purchases in that window were worth
	// Carted: added an item to the cart or bought in the exposure's
	// session (when the exposure names one; otherwise within the
	// conversion window), before the next exposure. More frequent than a
	// purchase and moved by the same offers, it helps the uplift model find
	// who responds; kept to the session, it is less diluted by carts the
	// offer had nothing to do with.
	Carted bool
	// Repurchased: bought again after the conversion window, within the
	// repurchase window; known only when FollowedUp (the repurchase window
	// ended before the data did).
	Repurchased, FollowedUp bool
}

// Dataset is the result of processing.
type Dataset struct {
	// Names of the features: Names, then the Columns' (see Config).
	Names     []string
	Cutoff    time.Time
	End       time.Time // of the label period: Cutoff + Horizon
	Users     []UserRow
	Items     []Item
	Exposures []Exposure
	Report    Report
}

// Index is the position of feature name in ds's rows, -1 if it has none.
func (ds *Dataset) Index(name string) int {
	return slices.Index(ds.Names, name)
}

// Finish computes features and labels. Bot-like users are dropped.
func (b *Builder) Finish() *Dataset {
	ds := &Dataset{Names: append(slices.Clone(Names), b.plan.names...), Cutoff: b.cfg.Cutoff, End: b.cfg.Cutoff.Add(b.cfg.Horizon), Items: b.items}
	windowDays := b.cfg.Cutoff.Sub(b.Report.FirstEvent).Hours() / 24
	if windowDays <= 0 {
		windowDays = 1
	}
	// Outcomes are followed past the label period for outcomeTail only,
	// so the data ends at whichever comes first.
	dataEnd := b.cfg.Cutoff.Add(b.cfg.Horizon + b.outcomeTail())
	if b.Report.LastEvent.Before(dataEnd) {
		dataEnd = b.Report.LastEvent
	}
	ids := make([]string, 0, len(b.users))
	for id := range b.users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		u := b.users[id]
		if u.bot {
			b.Report.BotUsers++
			continue
		}
		days := func(t time.Time) float64 {
			if t.IsZero() {
				return windowDays
			}
			return math.Min(windowDays, math.Max(0, b.cfg.Cutoff.Sub(t).Hours()/24))
		}
		// The last session has no successor to close it.
		u.closeSession(b.cfg.MaxSessionsPerUser)
		u.endSession()
		cycle := windowDays
		if u.purchases >= 2 {
			cycle = u.lastPurchase.Sub(u.firstPurchase).Hours() / 24 / float64(u.purchases-1)
		}
		basket := 0.0
		if u.orders > 0 {
			basket = u.monetary / float64(u.orders)
		}
		f := []float64{
			days(u.lastPurchase),
			float64(u.purchases),
			u.monetary,
			basket,
			float64(u.views),
			float64(u.carts),
			float64(u.sessions),
			ratio(u.purchases, u.views),
			ratio(u.purchases, u.carts),
			cycle,
			days(u.first),
			days(u.last),
			ratio(u.redeems, u.exposuresBefore),
			float64(len(u.categories)),
			float64(u.searches),
			float64(u.recentViews),
			safeDiv(u.viewedPriceSum, float64(u.pricedViews)),
			safeDiv(float64(u.views), float64(u.sessions)),
			u.topCategoryShare(),
			b.priceIndex(u),
			u.offerLift(),
		}
		f = append(f, b.columns(u)...)
		u.trimRecent(b.cfg.RecentItems)
		recent := make([]int32, len(u.recent))
		for i, r := range u.recent {
			recent[i] = r.item
		}
		row := UserRow{ID: id, Features: f, AsOf: b.cfg.Cutoff, Age: u.age, Gender: u.gender, Buy: u.labelBuy, Spend: u.labelSpend,
			Items: u.items, Sessions: u.sessionsCF, After: u.after, Purchased: u.purchasedItems, Recent: recent, Active: !u.last.IsZero(), Audit: b.audit(u)}
		idx := len(ds.Users)
		ds.Users = append(ds.Users, row)
		// Attribute each purchase after an exposure (within the window and
		// before the next exposure) to that exposure.
		sort.Slice(u.expAfter, func(i, j int) bool { return u.expAfter[i].t.Before(u.expAfter[j].t) })
		for i, ex := range u.expAfter {
			if ex.boundary {
				continue
			}
			end := ex.t.Add(b.cfg.Response.Window)
			if i+1 < len(u.expAfter) && u.expAfter[i+1].t.Before(end) {
				end = u.expAfter[i+1].t
			} else if end.After(dataEnd) {
				// Its outcome is not known yet: counting it as "no" would
				// bias every arm's rate down, most for long windows.
				b.Report.IncompleteExposures++
				continue
			}
			later := ex.t.Add(b.cfg.Response.Window)
			followUp := later.Add(b.cfg.RepurchaseWindow)
			out := Exposure{User: idx, Time: ex.t, Arm: ex.arm, FollowedUp: !followUp.After(dataEnd)}
			in := func(t time.Time, session string) bool {
				return !t.Before(ex.t) && t.Before(end) && (ex.session == "" || session == ex.session)
			}
			for _, p := range u.buysAfter {
				if !p.t.Before(ex.t) && p.t.Before(end) {
					out.Spend += p.value
					out.Converted = out.Converted || b.cfg.Response.Event != OutcomeVisit
				}
				if out.FollowedUp && !p.t.Before(later) && p.t.Before(followUp) {
					out.Repurchased = true
				}
			}
			switch b.cfg.Response.Event {
			case OutcomeVisit:
				out.Converted = slices.ContainsFunc(u.viewsAfter, func(t int64) bool { return t >= ex.t.Unix() && t < end.Unix() })
			case OutcomeCart:
				out.Converted = out.Converted || slices.ContainsFunc(u.cartsAfter, func(c cart) bool { return !c.t.Before(ex.t) && c.t.Before(end) })
			}
			// Carted (see Exposure): in the exposure's session, if it has one.
			out.Carted = slices.ContainsFunc(u.cartsAfter, func(c cart) bool { return in(c.t, c.session) }) ||
				slices.ContainsFunc(u.buysAfter, func(p purchase) bool { return in(p.t, p.session) })
			ds.Exposures = append(ds.Exposures, out)
		}
	}
	for _, it := range b.items {
		if !it.Described {
			b.Report.UnknownItems++
		}
	}
	b.Report.UsersSeen = len(b.users)
	b.Report.ItemsSeen = len(b.items)
	ds.Report = b.Report
	return ds
}

// Stack joins the randomized exposures of datasets built over consecutive
// label periods (say, a month each, features as of each month's start), so
// the uplift model and the experiment readout get more experiment data
// than one label period holds while no exposure sees features older than
// its period's start, nor any from after it. Users holds one row per
// shopper and period with exposures, so an ID can recur; Cutoff is the
// earliest and End the latest; Items and Report come from the first
// dataset, with the exposure counts of all.
func Stack(sets ...*Dataset) *Dataset {
	if len(sets) == 0 {
		return &Dataset{Report: Report{Dropped: map[string]int{}}}
	}
	out := &Dataset{Names: sets[0].Names, Cutoff: sets[0].Cutoff, End: sets[0].End, Items: sets[0].Items, Report: sets[0].Report}
	out.Report.ExposuresAfter, out.Report.TargetedExposures, out.Report.IncompleteExposures = 0, 0, 0
	for _, ds := range sets {
		if ds.Cutoff.Before(out.Cutoff) {
			out.Cutoff = ds.Cutoff
		}
		if ds.End.After(out.End) {
			out.End = ds.End
		}
		out.Report.ExposuresAfter += ds.Report.ExposuresAfter
		out.Report.TargetedExposures += ds.Report.TargetedExposures
		out.Report.IncompleteExposures += ds.Report.IncompleteExposures
		if offers := countOffers(ds.Exposures); offers == len(ds.Exposures) && offers > 0 {
			out.Report.UncontrolledPeriods++
			out.Report.UncontrolledExposures += offers
		}
		row := map[int]int{} // index in ds.Users -> index in out.Users
		for _, e := range ds.Exposures {
			i, ok := row[e.User]
			if !ok {
				i = len(out.Users)
				row[e.User] = i
				out.Users = append(out.Users, ds.Users[e.User])
			}
			e.User = i
			out.Exposures = append(out.Exposures, e)
		}
	}
	return out
}

func countOffers(es []Exposure) int {
	n := 0
	for _, e := range es {
		if e.Arm != eventlog.ControlArm {
			n++
		}
	}
	return n
}
