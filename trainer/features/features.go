// Package features turns a stream of behaviour events into training data:
// it cleans the stream (with a report of what was dropped and why), builds
// per-user features as of a cutoff time (recency, frequency, monetary value,
// conversion, basket, purchase cycle, promotion sensitivity, browsing),
// labels from the period after the cutoff, user-item interactions for
// collaborative filtering, and promotion-experiment outcomes for uplift.
//
// Memory is bounded by users × features and items, not by the number of
// events: events are folded into per-user aggregates as they stream by.
//
// Protected attributes (by default gender, age, race/ethnicity) are never
// features; they are kept aside for fairness audits only.
package features

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// Names of the user features, in the order of every feature vector.
var Names = []string{
	"recency_days",        // days since last purchase (capped at the window)
	"frequency",           // purchases before cutoff
	"monetary",            // total spend before cutoff
	"avg_basket",          // mean order value
	"views",               // product views
	"carts",               // add-to-cart events
	"sessions",            // distinct sessions
	"view_to_purchase",    // purchases / views
	"cart_to_purchase",    // purchases / carts
	"purchase_cycle_days", // mean days between purchases (window when < 2)
	"tenure_days",         // days since first seen
	"days_since_active",   // days since any event
	"promo_redeem_rate",   // redeems / exposures
	"category_breadth",    // distinct categories interacted with
	"searches",            // search events
	"recent_views_14d",    // views in the last 14 days before cutoff
	"avg_viewed_price",    // mean price of viewed items (price sensitivity)
	"views_per_session",   // browsing depth
	"top_category_share",  // share of interactions in the favourite category (affinity)
	"price_index",         // mean log price of viewed items relative to what shoppers view in their category (price sensitivity)
	"offer_lift",          // response rate (cart or purchase) of sessions with an offer minus without, shrunk to 0
}

// Index of a feature name in Names, -1 if unknown.
func Index(name string) int {
	for i, n := range Names {
		if n == name {
			return i
		}
	}
	return -1
}

// DefaultProtected attributes never become model inputs.
var DefaultProtected = []string{"gender", "age", "race", "ethnicity"}

// DefaultRepurchaseWindow is Config.RepurchaseWindow's default.
const DefaultRepurchaseWindow = 14 * 24 * time.Hour

// Config controls processing.
type Config struct {
	// Cutoff splits the window: features from before, labels from after.
	Cutoff time.Time
	// Horizon is the label period after Cutoff, its end included (default
	// 30 days): a run puts the cutoff one horizon before the last event,
	// which must count.
	Horizon time.Duration
	// Label is the propensity model's label: whether the shopper does
	// Label.Event within Label.Window of the cutoff (default a purchase
	// within the Horizon; the window at most the Horizon).
	Label Outcome
	// Response is a promotion exposure's outcome: whether the shopper does
	// Response.Event within Response.Window of it, before the next
	// exposure (default a purchase within 24h).
	Response Outcome
	// Columns are the feature columns past Names (see Discovery); nil
	// for none.
	Columns *Columns
	// RepurchaseWindow is how long after an exposure's conversion window a
	// later purchase counts as the shopper coming back (default
	// DefaultRepurchaseWindow).
	RepurchaseWindow time.Duration
	// MaxEventsPerUserDay flags bot-like users (default 2000).
	MaxEventsPerUserDay int
	// MaxUnitPrice drops purchases with absurd prices (default 1e6).
	MaxUnitPrice float64
	// InteractionWeights per event type for collaborative filtering
	// (default view 1, add_to_cart 3, purchase 5).
	InteractionWeights map[string]float64
	// HalfLife, when positive, decays interaction weights with age: an
	// interaction HalfLife before the cutoff counts half.
	HalfLife time.Duration
	// RecentItems kept per user for the profile (default 20).
	RecentItems int
	// MaxItemsPerUser bounds each user's collaborative-filtering row: past
	// it, the least-weighted items are forgotten (default 256), so memory
	// is bounded by users × this, not by how much history there is.
	MaxItemsPerUser int
	// MaxSessionsPerUser bounds the sessions kept per user for
	// collaborative filtering, the newest (default 64).
	MaxSessionsPerUser int
	// ExposuresOnly skips what only collaborative filtering and profiles
	// use (item rows, sessions, recent and purchased items, label-period
	// interactions): for builders whose only use is their exposures and
	// the features next to them (see Stack).
	ExposuresOnly bool
	// Shoppers, when not nil, are the only users rows are built for (say,
	// those with a randomized exposure in the label period, when only
	// exposures are wanted): other users' events cost a lookup, and only
	// their exposures after the cutoff are counted in the report.
	Shoppers map[string]bool
}

func (c *Config) defaults() {
	if c.Horizon == 0 {
		c.Horizon = 30 * 24 * time.Hour
	}
	if c.Label.Event == "" {
		c.Label.Event = OutcomePurchase
	}
	if c.Label.Window == 0 || c.Label.Window > c.Horizon {
		c.Label.Window = c.Horizon
	}
	if c.Response.Event == "" {
		c.Response.Event = OutcomePurchase
	}
	if c.Response.Window == 0 {
		c.Response.Window = DefaultResponseWindow
	}
	if c.RepurchaseWindow == 0 {
		c.RepurchaseWindow = DefaultRepurchaseWindow
	}
	if c.MaxEventsPerUserDay == 0 {
		c.MaxEventsPerUserDay = 2000
	}
	if c.MaxUnitPrice == 0 {
		c.MaxUnitPrice = 1e6
	}
	if c.InteractionWeights == nil {
		c.InteractionWeights = DefaultInteractionWeights()
	}
	if c.RecentItems == 0 {
		c.RecentItems = 20
	}
	if c.MaxItemsPerUser == 0 {
		c.MaxItemsPerUser = 256
	}
	if c.MaxSessionsPerUser == 0 {
		c.MaxSessionsPerUser = 64
	}
}

// Report says what cleaning dropped and why.
type Report struct {
	Events   int            `json:"events"`
	Used     int            `json:"used"`
	Dropped  map[string]int `json:"dropped"` // reason -> count
	BotUsers int            `json:"bot_users"`
	// UnknownItems counts items that behaviour events name but no
	// item_upsert describes; their interactions are kept (they still say
	// what goes together), but they have no category or price.
	UnknownItems   int       `json:"unknown_items"`
	FirstEvent     time.Time `json:"first_event"`
	LastEvent      time.Time `json:"last_event"`
	UsersSeen      int       `json:"users_seen"`
	ItemsSeen      int       `json:"items_seen"`
	ExposuresAfter int       `json:"exposures_after_cutoff"`
	// TargetedExposures counts those of them with propensity 1: targeted
	// decisions, left out of the uplift model and the experiment readout.
	TargetedExposures int `json:"targeted_exposures_after_cutoff"`
	// UncontrolledPeriods counts the periods Stack joined that have offer
	// exposures but no control exposure (UncontrolledExposures offers): a
	// sign of exposures logged as randomized that were not.
	UncontrolledPeriods   int `json:"uncontrolled_periods,omitempty"`
	UncontrolledExposures int `json:"uncontrolled_exposures,omitempty"`
	// IncompleteExposures counts the randomized exposures of the label
	// period whose response window had not ended by the last event: they
	// are left out until it has.
	IncompleteExposures int `json:"incomplete_exposures,omitempty"`
	// PrunedUsers counts how often a user's item row hit MaxItemsPerUser.
	PrunedUsers int `json:"pruned_item_rows"`
}

func (r *Report) drop(reason string) {
	r.Dropped[reason]++
}

// Item is what processing knows of an item.
type Item struct {
	Described bool // an item_upsert was seen
	ID        string
	Category  string
	Price     float64
	Cost      float64
	// Interactions before cutoff (weighted) — popularity.
	Popularity float64
	// Found once, at the upsert, for the views that read them: the
	// category's index (when Category is set) and log(Price) (when Price > 0).
	catIndex int32
	logPrice float64
	attrs    []itemAttr // its declared attributes' accumulators
}

type exposure struct {
	t       time.Time
	arm     string
	session string
	// past the label period: it only ends the conversion window of the
	// exposure before it
	boundary bool
}

type purchase struct {
	t       time.Time
	value   float64
	session string
}

// cart is an add-to-cart after the cutoff.
type cart struct {
	t       time.Time
	session string
}

type userAgg struct {
	id                        string
	age                       int32
	gender                    string
	first, last, lastPurchase time.Time
	firstPurchase             time.Time
	purchases, views, carts   int
	searches, recentViews     int
	viewedPriceSum            float64
	pricedViews               int
	monetary                  float64
	// Counted by change of id: events of one session or order arrive
	// together, and a set of every id would grow with the event count.
	orders, sessions         int
	lastOrder, lastSession   string
	categories               []categoryCount // interactions and priced views per category; few per user, so a slice beats a map
	exposuresBefore, redeems int
	// Sessions with and without an offer, and how many of each led to an
	// add-to-cart or a purchase: how this user has responded to earlier
	// campaigns. Carts count too: more frequent than purchases, they make a
	// handful of sessions say more.
	offerSessions, offerResponses, plainSessions, plainResponses int
	sessionOffer, sessionResponded                               bool
	items                                                        ItemWeights // CF weights before cutoff
	// Items of the current session and of earlier sessions with two or
	// more items (their co-occurrence is what collaborative filtering uses).
	sessionItems   []int32
	sessionsCF     [][]int32
	purchasedItems map[int32]struct{}
	recent         []recentItem
	// After cutoff.
	labelBuy       bool
	labelSpend     float64
	after          map[int32]float64 // CF weights in the label period
	expAfter       []exposure
	buysAfter      []purchase
	cartsAfter     []cart // for Exposure.Carted
	day, dayEvents int32  // events on the current day, for bot detection
	bot            bool
	upsertCount    int
	// Declared attributes (see Builder.setAttrs), and the accumulators of
	// the category and item-attribute columns (see columnPlan).
	attrs      []string
	attrAt     time.Time
	attrBefore bool
	acc        []float64
	viewsAfter []int64 // Unix seconds, kept when the response is a visit
}

type recentItem struct {
	item int32
	t    time.Time
}

// Builder folds events into aggregates.
type Builder struct {
	cfg     Config
	users   map[string]*userAgg
	items   []Item
	itemIdx map[string]int32
	// Sum of log prices and count of the priced views of every shopper
	// before the cutoff, per category index: what shoppers typically look
	// at in a category, which a shopper's own views are compared with.
	catViewLogPrice [][2]float64
	catIdx          map[string]int32
	plan            columnPlan
	Report          Report
}

// NewBuilder starts processing with cfg.
func NewBuilder(cfg Config) *Builder {
	cfg.defaults()
	return &Builder{cfg: cfg, users: map[string]*userAgg{}, itemIdx: map[string]int32{}, catIdx: map[string]int32{}, plan: newColumnPlan(cfg.Columns),
		Report: Report{Dropped: map[string]int{}}}
}

func (b *Builder) item(id string) int32 {
	if i, ok := b.itemIdx[id]; ok {
		return i
	}
	i := int32(len(b.items))
	b.items = append(b.items, Item{ID: id})
	b.itemIdx[id] = i
	return i
}

func (b *Builder) user(id string) *userAgg {
	u := b.users[id]
	if u == nil {
		u = &userAgg{id: id}
		b.users[id] = u
	}
	return u
}

// Add folds one event in. Invalid events are dropped and counted.
func (b *Builder) Add(e *eventlog.Event) {
	if b.screen(e, e.Validate(time.Now())) {
		b.fold(e, b.follows(e))
	}
}

// screen counts e in the report and says whether to fold it in: it is
// valid (invalid is its validation error) and not an outlier.
func (b *Builder) screen(e *eventlog.Event, invalid error) bool {
	b.Report.Events++
	if invalid != nil {
		b.Report.drop("invalid")
		return false
	}
	if e.Type == eventlog.TypePurchase && e.UnitPrice > b.cfg.MaxUnitPrice {
		b.Report.drop("price_outlier")
		return false
	}
	if b.Report.FirstEvent.IsZero() || e.Time.Before(b.Report.FirstEvent) {
		b.Report.FirstEvent = e.Time
	}
	if e.Time.After(b.Report.LastEvent) {
		b.Report.LastEvent = e.Time
	}
	return true
}

// follows says whether the builder builds a row for e's user (see
// Config.Shoppers).
func (b *Builder) follows(e *eventlog.Event) bool {
	return b.cfg.Shoppers == nil || b.cfg.Shoppers[e.User]
}

// fold folds in a screened event; followed says whether the builder
// follows its user (item events are folded in either way).
func (b *Builder) fold(e *eventlog.Event, followed bool) {
	if e.Type == eventlog.TypeItemUpsert {
		it := &b.items[b.item(e.Item)]
		it.Category, it.Price, it.Cost, it.Described = e.ItemAttrs.Category, e.ItemAttrs.Price, e.ItemAttrs.Cost, true
		if it.Category != "" {
			it.catIndex = b.category(it.Category)
			for int(it.catIndex) >= len(b.catViewLogPrice) {
				b.catViewLogPrice = append(b.catViewLogPrice, [2]float64{})
			}
		}
		if it.Price > 0 {
			it.logPrice = math.Log(it.Price)
		}
		it.attrs = b.plan.itemAttrs(e.ItemAttrs)
		b.Report.Used++
		return
	}
	var viewCat int32 // a priced view's category and log price, found once
	var viewLogPrice float64
	viewPriced := false
	if e.Type == eventlog.TypeView && e.Time.Before(b.cfg.Cutoff) {
		// Every shopper's views, followed or not, make the reference.
		if viewCat, viewLogPrice, viewPriced = b.viewPrice(e.Item); viewPriced {
			b.catViewLogPrice[viewCat][0] += viewLogPrice
			b.catViewLogPrice[viewCat][1]++
		}
	}
	if !followed {
		if e.Type == eventlog.TypePromoExposure && !e.Time.Before(b.cfg.Cutoff) && e.Time.Sub(b.cfg.Cutoff) <= b.cfg.Horizon {
			b.countExposure(e)
		}
		return
	}
	u := b.user(e.User)
	if day := int32(e.Time.Unix() / 86400); day != u.day {
		u.day, u.dayEvents = day, 0
	}
	u.dayEvents++
	if int(u.dayEvents) > b.cfg.MaxEventsPerUserDay {
		u.bot = true
	}
	if e.Type == eventlog.TypeUserUpsert {
		b.setAttrs(u, e.UserAttrs, e.Time)
		if u.first.IsZero() || e.Time.Before(u.first) {
			u.first = e.Time
		}
		b.Report.Used++
		return
	}
	b.Report.Used++
	after := !e.Time.Before(b.cfg.Cutoff)
	if after {
		if since := e.Time.Sub(b.cfg.Cutoff); since > b.cfg.Horizon {
			// Past the label period, but the outcomes of its last
			// exposures are still being decided.
			if since <= b.cfg.Horizon+b.outcomeTail() {
				switch {
				case e.Type == eventlog.TypePurchase:
					u.buysAfter = append(u.buysAfter, purchase{e.Time, float64(e.Quantity) * e.UnitPrice, e.Session})
				case e.Type == eventlog.TypeAddToCart:
					u.cartsAfter = append(u.cartsAfter, cart{e.Time, e.Session})
				case e.Type == eventlog.TypeView && b.cfg.Response.Event == OutcomeVisit:
					u.viewsAfter = append(u.viewsAfter, e.Time.Unix())
				case e.Type == eventlog.TypePromoExposure && e.Propensity < 1:
					u.expAfter = append(u.expAfter, exposure{t: e.Time, boundary: true})
				}
			}
			b.Report.drop("after_label_horizon")
			b.Report.Used--
			return
		}
		if e.Item != "" && !b.cfg.ExposuresOnly {
			if w := b.cfg.InteractionWeights[e.Type]; w > 0 {
				if u.after == nil {
					u.after = map[int32]float64{}
				}
				u.after[b.item(e.Item)] += w
			}
		}
		if b.cfg.Label.counts(e.Type) && e.Time.Sub(b.cfg.Cutoff) <= b.cfg.Label.Window {
			u.labelBuy = true
		}
		switch e.Type {
		case eventlog.TypeView:
			if b.cfg.Response.Event == OutcomeVisit {
				u.viewsAfter = append(u.viewsAfter, e.Time.Unix())
			}
		case eventlog.TypePurchase:
			v := float64(e.Quantity) * e.UnitPrice
			u.labelSpend += v
			u.buysAfter = append(u.buysAfter, purchase{e.Time, v, e.Session})
		case eventlog.TypeAddToCart:
			u.cartsAfter = append(u.cartsAfter, cart{e.Time, e.Session})
		case eventlog.TypePromoExposure:
			if b.countExposure(e) {
				u.expAfter = append(u.expAfter, exposure{t: e.Time, arm: armOf(e), session: e.Session})
			}
		}
		return
	}
	if u.first.IsZero() || e.Time.Before(u.first) {
		u.first = e.Time
	}
	if e.Time.After(u.last) {
		u.last = e.Time
	}
	if e.Session != "" && e.Session != u.lastSession {
		u.endSession()
		u.sessions++
		u.lastSession = e.Session
		u.closeSession(b.cfg.MaxSessionsPerUser)
	}
	var it int32 = -1
	if e.Item != "" {
		it = b.item(e.Item)
		if b.items[it].Category != "" {
			u.countCategory(b.items[it].catIndex)
		}
		if w := b.cfg.InteractionWeights[e.Type]; w > 0 && !b.cfg.ExposuresOnly {
			if b.cfg.HalfLife > 0 { // older interactions count less
				w *= math.Exp2(-float64(b.cfg.Cutoff.Sub(e.Time)) / float64(b.cfg.HalfLife))
			}
			u.items.Add(it, w)
			if e.Session != "" && !slices.Contains(u.sessionItems, it) {
				u.sessionItems = append(u.sessionItems, it)
			}
			if len(u.items) > b.cfg.MaxItemsPerUser*3/2 {
				u.items.Prune(b.cfg.MaxItemsPerUser)
				b.Report.PrunedUsers++
			}
			b.items[it].Popularity += w
			u.recent = append(u.recent, recentItem{it, e.Time})
			if len(u.recent) > 4*b.cfg.RecentItems {
				u.trimRecent(b.cfg.RecentItems)
			}
		}
	}
	switch e.Type {
	case eventlog.TypeView:
		u.views++
		if it >= 0 && b.items[it].Price > 0 {
			u.viewedPriceSum += b.items[it].Price
			u.pricedViews++
		}
		if viewPriced {
			u.addViewPrice(viewCat, viewLogPrice)
		}
		if b.cfg.Cutoff.Sub(e.Time) <= 14*24*time.Hour {
			u.recentViews++
		}
	case eventlog.TypeSearch:
		u.searches++
	case eventlog.TypeAddToCart:
		u.carts++
		if e.Session != "" {
			u.sessionResponded = true
		}
	case eventlog.TypePurchase:
		v := float64(e.Quantity) * e.UnitPrice
		u.purchases++
		u.monetary += v
		order := e.Order
		if order == "" {
			order = e.ID
		}
		if order != u.lastOrder {
			u.orders++
			u.lastOrder = order
		}
		if u.purchases == 1 || e.Time.Before(u.firstPurchase) {
			u.firstPurchase = e.Time
		}
		if e.Time.After(u.lastPurchase) {
			u.lastPurchase = e.Time
		}
		if it >= 0 {
			b.addPurchase(u, &b.items[it])
		}
		if it >= 0 && !b.cfg.ExposuresOnly {
			if u.purchasedItems == nil {
				u.purchasedItems = map[int32]struct{}{}
			}
			u.purchasedItems[it] = struct{}{}
		}
		if e.Session != "" {
			u.sessionResponded = true
		}
	case eventlog.TypePromoExposure:
		u.exposuresBefore++
		if e.Session != "" && armOf(e) != eventlog.ControlArm {
			u.sessionOffer = true
		}
	case eventlog.TypePromoRedeem:
		u.redeems++
	}
}

// countExposure counts a promotion exposure of the label period in the
// report and says whether it was randomized. A targeted decision
// (propensity 1): who got which offer depended on the shopper, so comparing
// arms would measure the targeting. Only randomized exposures (propensity
// below 1, or not recorded) measure effects.
func (b *Builder) countExposure(e *eventlog.Event) (randomized bool) {
	b.Report.ExposuresAfter++
	if e.Propensity >= 1 {
		b.Report.TargetedExposures++
		return false
	}
	return true
}

// outcomeTail is how long after an exposure its outcomes keep coming in.
func (b *Builder) outcomeTail() time.Duration {
	return b.cfg.Response.Window + b.cfg.RepurchaseWindow
}

// endSession counts the session that just ended by offer and outcome.
func (u *userAgg) endSession() {
	if u.lastSession == "" {
		return
	}
	switch {
	case u.sessionOffer:
		u.offerSessions++
		if u.sessionResponded {
			u.offerResponses++
		}
	default:
		u.plainSessions++
		if u.sessionResponded {
			u.plainResponses++
		}
	}
	u.sessionOffer, u.sessionResponded = false, false
}

// offerLift is the user's response rate (add to cart or purchase) in
// sessions with an offer minus that in sessions without. Both rates are smoothed, and the offer rate is
// shrunk towards the plain one by two pseudo-sessions, so a user with one
// or two exposures gets a small lift rather than ±1.
func (u *userAgg) offerLift() float64 {
	plain := (float64(u.plainResponses) + 1) / (float64(u.plainSessions) + 2)
	offer := (float64(u.offerResponses) + 2*plain) / (float64(u.offerSessions) + 2)
	return offer - plain
}

// closeSession keeps the finished session for collaborative filtering if
// it has two or more items, and at most max sessions, the newest.
func (u *userAgg) closeSession(max int) {
	if len(u.sessionItems) < 2 {
		u.sessionItems = u.sessionItems[:0]
		return
	}
	if len(u.sessionsCF) >= max {
		u.sessionsCF = append(u.sessionsCF[:0], u.sessionsCF[1:]...)
	}
	u.sessionsCF = append(u.sessionsCF, u.sessionItems)
	u.sessionItems = nil // kept in sessionsCF; the next session starts afresh
}

func armOf(e *eventlog.Event) string {
	if e.Arm != "" {
		return e.Arm
	}
	return e.Offer
}

func (u *userAgg) trimRecent(n int) {
	sort.SliceStable(u.recent, func(i, j int) bool { return u.recent[i].t.Before(u.recent[j].t) })
	// Keep the last n distinct items.
	seen := map[int32]bool{}
	var keep []recentItem
	for i := len(u.recent) - 1; i >= 0 && len(keep) < n; i-- {
		if !seen[u.recent[i].item] {
			seen[u.recent[i].item] = true
			keep = append(keep, u.recent[i])
		}
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	u.recent = keep
}

// DefaultInteractionWeights are Config.InteractionWeights' defaults: a
// purchase says more about a shopper's taste than a cart, a cart more than
// a view.
func DefaultInteractionWeights() map[string]float64 {
	return map[string]float64{eventlog.TypeView: 1, eventlog.TypeAddToCart: 3, eventlog.TypePurchase: 5}
}
