// Package shop generates a synthetic shop, deterministic by seed: users with
// latent tastes and attributes, items in categories with prices and margins,
// sessions with view → cart → purchase funnels, repeat-purchase cycles, and
// a randomized promotion experiment whose true effect differs by kind of
// user. The true effects are returned as ground truth, so tests can check
// that the models recover them.
//
// Generation streams: events are handed to a callback user by user, so
// memory holds the catalogue and one user, whatever the size.
package shop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// Params sizes the shop.
type Params struct {
	Seed       uint64
	Users      int
	Items      int
	Categories int
	Days       int
	Start      time.Time
	// SessionsPerWeek is the mean session rate of a user (heavy-tailed).
	SessionsPerWeek float64
	// ExperimentShare of the window (at its end) runs the promotion
	// experiment; ExposureRate is the chance a session gets a decision.
	ExperimentShare float64
	ExposureRate    float64
}

// Preset sizes.
func Tiny() Params {
	return Params{Seed: 1, Users: 300, Items: 120, Categories: 6, Days: 90, SessionsPerWeek: 2, ExperimentShare: 0.3, ExposureRate: 0.5}
}

// Small is the size `make run` uses.
func Small() Params {
	return Params{Seed: 7, Users: 3000, Items: 400, Categories: 10, Days: 120, SessionsPerWeek: 2, ExperimentShare: 0.3, ExposureRate: 0.5}
}

// Preset returns a named size: tiny, small, medium or large.
func Preset(name string) (Params, error) {
	switch name {
	case "tiny":
		return Tiny(), nil
	case "small":
		return Small(), nil
	case "ml100k":
		// The size of MovieLens 100K, for serving benchmarks.
		p := Small()
		p.Users, p.Items, p.Categories = 943, 1682, 19
		return p, nil
	case "medium":
		p := Small()
		p.Users, p.Items, p.Categories = 50_000, 5_000, 25
		return p, nil
	case "large":
		p := Small()
		p.Users, p.Items, p.Categories, p.Days = 1_000_000, 100_000, 50, 180
		p.SessionsPerWeek = 1.6
		return p, nil
	}
	return Params{}, fmt.Errorf("unknown shop size %q (want tiny, small, ml100k, medium or large)", name)
}

// Arms of the promotion experiment besides control (eventlog.ControlArm), which gets nothing.
const (
	ArmPercent   = "pct10"   // 10% off
	ArmAmount    = "amount5" // 5 off
	ArmThreshold = "spend50get10"
	ArmGift      = "gift"
)

// Arms lists the experiment arms, control first.
var Arms = []string{eventlog.ControlArm, ArmPercent, ArmAmount, ArmThreshold, ArmGift}

// Kind of user, which drives the true response to promotions.
const (
	KindBargain     = "bargain_hunter"
	KindLoyal       = "loyal"
	KindNew         = "new"
	KindSleepingDog = "sleeping_dog"
	KindOrdinary    = "ordinary"
)

// Truth is one user's true behaviour: their kind and the true increase in
// session conversion probability each offer arm causes.
type Truth struct {
	User   string
	Kind   string
	Uplift map[string]float64 // arm -> true uplift
	// Exposures are the user's offer decisions (randomized or not), in
	// time order, each with what every arm would have done in its session.
	Exposures []ExposureTruth
}

// ExposureTruth is one offer decision's session: its time (that of the
// promo_exposure event) and, per arm, the change in the session's purchase
// probability that arm causes. That is the user's Uplift for the arm unless
// the probability hits its floor (0.005) or ceiling (0.95): a shopper who
// rarely buys cannot buy 0.08 less. Purchase and Cart are the session's
// probabilities of a purchase and of an add-to-cart (or purchase) under
// the arm it got: what its outcomes are drawn from. Baseline is its
// purchase probability without an offer (before the floor and ceiling),
// and Outcome how far down the funnel it went.
type ExposureTruth struct {
	Time           time.Time
	Arm            string
	Effects        map[string]float64
	Purchase, Cart float64
	Baseline       float64
	Outcome        Outcome
}

// Outcome is how far a session went down the funnel.
type Outcome int

// Outcomes of a session, in funnel order.
const (
	OutcomeNone     Outcome = iota // no add-to-cart
	OutcomeCart                    // an add-to-cart, no purchase
	OutcomePurchase                // a purchase
)

// SleepingDogEffect is what any offer does to a sleeping dog's session
// purchase probability.
const SleepingDogEffect = -0.08

// SleepingDogEvidence is the log-likelihood ratio of the session's outcome
// under "the shopper is a sleeping dog" against "the offer changed
// nothing", given the session's true baseline: what an observer who knew
// everything about the session but the shopper's kind would learn about it
// from this one outcome. It is 0 for a session without an offer. Summed
// over a shopper's offered sessions it is the best possible trace of
// offer aversion that outcomes can leave, a yardstick for features such as
// offer_lift.
func (e ExposureTruth) SleepingDogEvidence() float64 {
	if e.Arm == "" || e.Arm == eventlog.ControlArm {
		return 0
	}
	likelihood := func(q float64) float64 {
		purchase, cart := funnel(q)
		switch e.Outcome {
		case OutcomeNone:
			return 1 - cart
		case OutcomeCart:
			return cart - purchase
		}
		return purchase
	}
	return math.Log(likelihood(e.Baseline+SleepingDogEffect)) - math.Log(likelihood(e.Baseline))
}

type item struct {
	id       string
	category int
	price    float64
	cost     float64
	style    [4]float64
	pop      float64
}

// Catalogue is the generated item set, grouped for fast sampling.
type Catalogue struct {
	items      []item
	byCategory [][]int
	categories []string
}

func catalogue(p Params, r *rand.Rand) *Catalogue {
	c := &Catalogue{byCategory: make([][]int, p.Categories)}
	names := []string{"grocery", "electronics", "fashion", "home", "beauty", "sports", "toys", "books", "garden", "pets", "health", "auto", "music", "office", "baby", "outdoor", "kitchen", "jewelry", "shoes", "games"}
	for i := range p.Categories {
		n := names[i%len(names)]
		if i >= len(names) {
			n = fmt.Sprintf("%s-%d", n, i/len(names))
		}
		c.categories = append(c.categories, n)
	}
	catMu := make([]float64, p.Categories)
	for i := range catMu {
		catMu[i] = 2.3 + 2*r.Float64() // median prices ~10 to ~75
	}
	for i := range p.Items {
		cat := r.IntN(p.Categories)
		price := math.Round(math.Exp(catMu[cat]+0.5*r.NormFloat64())*100) / 100
		price = math.Max(price, 1)
		it := item{
			id: fmt.Sprintf("i%d", i), category: cat, price: price,
			cost: math.Round(price*(0.45+0.3*r.Float64())*100) / 100,
			pop:  math.Exp(1.2 * r.NormFloat64()),
		}
		for k := range it.style {
			it.style[k] = r.NormFloat64()
		}
		c.items = append(c.items, it)
		c.byCategory[cat] = append(c.byCategory[cat], i)
	}
	return c
}

type user struct {
	id        string
	age       int32
	gender    string
	location  string
	taste     []float64 // category weights, sum 1
	style     [4]float64
	rate      float64 // sessions per day
	base      float64 // session conversion base
	priceSens float64
	cycle     float64 // days
	joined    int     // day index
	kind      string
	uplift    map[string]float64
	exposures []ExposureTruth
	// views caches, per category, the weights this user views its items
	// with: they depend on the user and the items only, and a user comes
	// back to the same few categories session after session.
	views map[int][]float64
}

func (c *Catalogue) newUser(p Params, r *rand.Rand, idx int) *user {
	u := &user{
		id:       fmt.Sprintf("u%d", idx),
		age:      int32(18 + r.IntN(58)),
		gender:   []string{"f", "m", "x"}[weightedIndex(r, []float64{0.49, 0.49, 0.02})],
		location: fmt.Sprintf("region-%d", r.IntN(8)),
		taste:    make([]float64, p.Categories),
		rate:     p.SessionsPerWeek / 7 * math.Exp(0.7*r.NormFloat64()-0.245),
		base:     0.05 + 0.35*r.Float64()*r.Float64(),
		cycle:    7 + 40*r.Float64(),
	}
	sum := 0.0
	for i := range u.taste {
		u.taste[i] = math.Pow(r.Float64(), 4) // a few favourite categories
		sum += u.taste[i]
	}
	for i := range u.taste {
		u.taste[i] /= sum
	}
	for k := range u.style {
		u.style[k] = r.NormFloat64()
	}
	// Most users exist from the start; some join during the window, and are
	// new when the experiment runs.
	if r.Float64() < 0.2 {
		u.joined = int(float64(p.Days) * (0.6 + 0.35*r.Float64()))
	} else {
		u.joined = r.IntN(max(1, p.Days/3))
	}
	u.priceSens = r.Float64()
	switch x := r.Float64(); {
	case u.joined > int(float64(p.Days)*0.6):
		u.kind = KindNew
	case x < 0.1:
		u.kind = KindSleepingDog
	case x < 0.3:
		u.kind, u.base, u.rate = KindLoyal, u.base+0.25, u.rate*2
	case x < 0.55:
		u.kind, u.priceSens = KindBargain, 0.7+0.3*u.priceSens
	default:
		u.kind, u.priceSens = KindOrdinary, 0.5*u.priceSens
	}
	// True effects on session conversion, additive.
	ps := u.priceSens
	u.uplift = map[string]float64{eventlog.ControlArm: 0}
	switch u.kind {
	case KindSleepingDog:
		for _, a := range Arms[1:] {
			u.uplift[a] = SleepingDogEffect
		}
	case KindLoyal:
		u.uplift[ArmPercent], u.uplift[ArmAmount], u.uplift[ArmThreshold], u.uplift[ArmGift] = 0.01, 0.005, 0.04, 0.0
	case KindNew:
		u.uplift[ArmPercent], u.uplift[ArmAmount], u.uplift[ArmThreshold], u.uplift[ArmGift] = 0.08*ps, 0.05*ps, 0.02, 0.22
	default:
		u.uplift[ArmPercent], u.uplift[ArmAmount], u.uplift[ArmThreshold], u.uplift[ArmGift] = 0.3*ps, 0.18*ps, 0.12*ps, 0.02
	}
	return u
}

// clipConversion keeps a session's purchase probability in [0.005, 0.95].
func clipConversion(q float64) float64 {
	return math.Min(0.95, math.Max(0.005, q))
}

// funnel returns a session's probabilities of a purchase and of an
// add-to-cart (a purchase needs one) for an unclipped purchase
// probability q.
func funnel(q float64) (purchase, cart float64) {
	purchase = clipConversion(q)
	return purchase, math.Min(1, purchase*1.6+0.05)
}

func weightedIndex(r *rand.Rand, w []float64) int {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	t := r.Float64() * sum
	for i, x := range w {
		t -= x
		if t < 0 {
			return i
		}
	}
	return len(w) - 1
}

// Stats summarises a generated shop.
type Stats struct {
	Users, Items, Events, Sessions, Purchases, Exposures int
	Start, End                                           time.Time
}

// Generate emits the shop's events: item upserts, then for each user a
// user upsert and their sessions in time order. truth, when not nil,
// receives each user's ground truth after their events (it holds their
// offer decisions' session effects).
func Generate(p Params, emit func(*eventlog.Event) error, truth func(Truth) error) (Stats, error) {
	if p.Users <= 0 || p.Items <= 0 || p.Categories <= 0 || p.Days <= 0 {
		return Stats{}, fmt.Errorf("shop: users, items, categories and days must be positive")
	}
	if p.Start.IsZero() {
		p.Start = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -p.Days)
	}
	r := rand.New(rand.NewPCG(p.Seed, 0x5eed))
	cat := catalogue(p, r)
	st := Stats{Users: p.Users, Items: p.Items, Start: p.Start, End: p.Start.AddDate(0, 0, p.Days)}
	var seq int64
	send := func(e *eventlog.Event) error {
		seq++
		e.ID = fmt.Sprintf("s%d-e%d", p.Seed, seq)
		st.Events++
		return emit(e)
	}
	for _, it := range cat.items {
		err := send(&eventlog.Event{Type: eventlog.TypeItemUpsert, Time: p.Start, Item: it.id,
			ItemAttrs: &eventlog.ItemAttrs{Category: cat.categories[it.category], Price: it.price, Cost: it.cost, Title: "Item " + it.id}})
		if err != nil {
			return st, err
		}
	}
	expStart := int(float64(p.Days) * (1 - p.ExperimentShare))
	// Each user gets their own random stream, so that a user's behaviour
	// does not depend on how many users came before, and users can be
	// simulated in parallel: a chunk at a time, their events then emitted
	// in user order, the same shop whatever the number of cores.
	type simulated struct {
		events                         []*eventlog.Event
		sessions, purchases, exposures int
		truth                          Truth
	}
	simulate := func(ui int) simulated {
		var out simulated
		keep := func(e *eventlog.Event) error { out.events = append(out.events, e); return nil }
		ur := rand.New(rand.NewPCG(p.Seed, uint64(ui)+1))
		u := cat.newUser(p, ur, ui)
		joinedAt := p.Start.AddDate(0, 0, u.joined).Add(time.Duration(ur.IntN(86400)) * time.Second)
		_ = keep(&eventlog.Event{Type: eventlog.TypeUserUpsert, Time: joinedAt, User: u.id,
			UserAttrs: &eventlog.UserAttrs{Age: u.age, Gender: u.gender, Location: u.location}})
		var ust Stats
		lastBuy := -1000.0
		for day := u.joined; day < p.Days; day++ {
			n := poisson(ur, u.rate)
			for s := 0; s < n; s++ {
				t := p.Start.AddDate(0, 0, day).Add(time.Duration(ur.IntN(86400-3600)) * time.Second)
				dayF := float64(day) + float64(t.Sub(p.Start.AddDate(0, 0, day)))/float64(24*time.Hour)
				if bought, _ := cat.session(p, ur, u, t, dayF-lastBuy, day >= expStart, keep, &ust); bought {
					lastBuy = dayF
				}
			}
		}
		out.sessions, out.purchases, out.exposures = ust.Sessions, ust.Purchases, ust.Exposures
		out.truth = Truth{User: u.id, Kind: u.kind, Uplift: u.uplift, Exposures: u.exposures}
		return out
	}
	const chunk = 256
	workers := runtime.GOMAXPROCS(0)
	outs := make([]simulated, chunk)
	for first := 0; first < p.Users; first += chunk {
		n := min(chunk, p.Users-first)
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					outs[i] = simulate(first + i)
				}
			})
		}
		wg.Wait()
		for i := range n {
			o := &outs[i]
			for _, e := range o.events {
				if err := send(e); err != nil {
					return st, err
				}
			}
			st.Sessions += o.sessions
			st.Purchases += o.purchases
			st.Exposures += o.exposures
			if truth != nil {
				if err := truth(o.truth); err != nil {
					return st, err
				}
			}
			*o = simulated{}
		}
	}
	return st, nil
}

func poisson(r *rand.Rand, lambda float64) int {
	l, k, prod := math.Exp(-lambda), 0, r.Float64()
	for prod > l {
		k++
		prod *= r.Float64()
	}
	return k
}

// session simulates one visit. It returns whether the user bought.
func (c *Catalogue) session(p Params, r *rand.Rand, u *user, t time.Time, sinceBuy float64, experiment bool, send func(*eventlog.Event) error, st *Stats) (bool, error) {
	st.Sessions++
	sid := fmt.Sprintf("%s-%d", u.id, t.Unix())
	arm, propensity := "", 1.0
	switch {
	case experiment && r.Float64() < p.ExposureRate:
		arm, propensity = Arms[r.IntN(len(Arms))], 1/float64(len(Arms))
	case !experiment && r.Float64() < 0.15:
		// Earlier campaigns leave a trace of how a user responds to offers
		// in their history. With no control group they are not an
		// experiment, and are logged as such (propensity 1).
		arm = Arms[1+r.IntN(len(Arms)-1)]
	}
	if arm != "" {
		st.Exposures++
		if err := send(&eventlog.Event{Type: eventlog.TypePromoExposure, Time: t, User: u.id, Session: sid, Arm: arm, Offer: arm,
			Propensity: propensity, Decision: "d-" + sid}); err != nil {
			return false, err
		}
	}
	var effects map[string]float64 // of this session's offer decision, if any
	if arm != "" {
		effects = make(map[string]float64, len(Arms))
		for _, a := range Arms {
			effects[a] = 0
		}
		u.exposures = append(u.exposures, ExposureTruth{Time: t, Arm: arm, Effects: effects})
	}
	var exposed *ExposureTruth // its probabilities are set once the item is chosen
	if arm != "" {
		exposed = &u.exposures[len(u.exposures)-1]
	}
	catIdx := weightedIndex(r, u.taste)
	items := c.byCategory[catIdx]
	if len(items) == 0 {
		return false, nil // no item to buy: every arm's effect is 0
	}
	if r.Float64() < 0.3 {
		t = t.Add(5 * time.Second)
		if err := send(&eventlog.Event{Type: eventlog.TypeSearch, Time: t, User: u.id, Session: sid, Query: c.categories[catIdx]}); err != nil {
			return false, err
		}
	}
	// Views: items of the category weighted by popularity and style match.
	w, ok := u.views[catIdx]
	if !ok {
		w = make([]float64, len(items))
		for i, ix := range items {
			it := &c.items[ix]
			dot := 0.0
			for k := range it.style {
				dot += it.style[k] * u.style[k]
			}
			w[i] = it.pop * math.Exp(0.8*dot) * math.Pow(it.price, -1.5*u.priceSens)
		}
		if u.views == nil {
			u.views = map[int][]float64{}
		}
		u.views[catIdx] = w
	}
	nViews := 1 + r.IntN(5)
	if u.kind == KindBargain {
		nViews += r.IntN(4) // bargain hunters compare more
	}
	viewed := make([]int, 0, nViews)
	for range nViews {
		ix := items[weightedIndex(r, w)]
		viewed = append(viewed, ix)
		t = t.Add(time.Duration(20+r.IntN(120)) * time.Second)
		if err := send(&eventlog.Event{Type: eventlog.TypeView, Time: t, User: u.id, Item: c.items[ix].id, Session: sid}); err != nil {
			return false, err
		}
	}
	// Conversion: base rate, repeat-purchase cycle, price sensitivity, offer effect.
	cycle := math.Min(1, 0.3+sinceBuy/u.cycle)
	pick := viewed[len(viewed)-1]
	priceNorm := math.Min(1, c.items[pick].price/100)
	q := u.base * cycle * (1 - 0.5*u.priceSens*priceNorm)
	for a := range effects {
		effects[a] = clipConversion(q+u.uplift[a]) - clipConversion(q)
	}
	if exposed != nil {
		exposed.Baseline = q
	}
	if arm != "" {
		q += u.uplift[arm]
	}
	q, addP := funnel(q)
	if exposed != nil {
		exposed.Purchase, exposed.Cart = q, addP
	}
	if r.Float64() >= addP {
		return false, nil
	}
	if exposed != nil {
		exposed.Outcome = OutcomeCart
	}
	t = t.Add(30 * time.Second)
	qty := int32(1 + r.IntN(2))
	if err := send(&eventlog.Event{Type: eventlog.TypeAddToCart, Time: t, User: u.id, Item: c.items[pick].id, Session: sid, Quantity: qty}); err != nil {
		return false, err
	}
	if r.Float64() >= q/addP {
		return false, nil
	}
	if exposed != nil {
		exposed.Outcome = OutcomePurchase
	}
	t = t.Add(90 * time.Second)
	order := "o-" + sid
	price := c.items[pick].price
	if err := send(&eventlog.Event{Type: eventlog.TypePurchase, Time: t, User: u.id, Item: c.items[pick].id, Session: sid, Quantity: qty, UnitPrice: price, Order: order}); err != nil {
		return false, err
	}
	st.Purchases++
	if arm != "" && arm != eventlog.ControlArm {
		if err := send(&eventlog.Event{Type: eventlog.TypePromoRedeem, Time: t, User: u.id, Session: sid, Arm: arm, Offer: arm, Decision: "d-" + sid, Order: order}); err != nil {
			return false, err
		}
	}
	return true, nil
}
