// Package campaigns follows the promotion campaigns for a server: it
// reloads the campaigns that changed in the store at every check, keeps
// the live ones in priority order, and keeps this replica's part of the
// shared spend ledger (campaign.WriteSpend) while reading every other
// replica's, so that each campaign's pacing price and budget checks see
// the whole campaign's spend.
//
// A replica knows the others' spend as of its last check: between two
// checks it spends at most its share (one over the replicas that wrote
// the ledger lately) of what was left at the last one
// (campaign.Affordable), so replicas together stay within the budget
// without talking to each other. A replica spends on a campaign only from
// its second check on, one interval after it first wrote its spend: by
// then every other replica has counted it in their shares. When the ledger cannot be read for three checks in a row,
// campaigns make no offers (offers.Budget's State fails) rather than
// spend blind.
package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/server/offers"
)

// Set is the campaigns a server follows.
type Set struct {
	store    *campaign.Store
	bucket   registry.Bucket
	replica  string
	interval time.Duration
	log      *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// Synced, when set, is told each campaign's whole spend, budget,
	// pacing price and fairness (disparate impact by audited attribute,
	// on this replica) after every check (metrics).
	Synced func(id string, spent, budget, price float64, di map[string]float64)

	mu       sync.Mutex
	loaded   map[string]*followed // by id
	live     []*campaign.Campaign
	lastSync time.Time
}

type followed struct {
	c    *campaign.Campaign
	etag string
	// own is this replica's spend, ownAtCheck what it was at the last
	// check; all is every replica's at the last check (own included), by
	// total and by day.
	own        campaign.ReplicaSpend
	ownAtCheck campaign.ReplicaSpend
	all        campaign.ReplicaSpend
	replicas   int
	pacer      campaign.Pacer
	// joined is when this replica first wrote its spend.
	joined time.Time
	// guard keeps the offers fair on the audited attributes.
	guard *campaign.Guard
	// shown holds, per shopper, the times of this replica's last offers
	// (at most the frequency cap's max), for the cap.
	shown map[string][]time.Time
}

func cloneSpend(s campaign.ReplicaSpend) campaign.ReplicaSpend {
	out := s
	out.Days = make(map[string]float64, len(s.Days))
	for k, v := range s.Days {
		out.Days[k] = v
	}
	return out
}

// New returns a set reading campaigns and the ledger from b every
// interval.
func New(b registry.Bucket, interval time.Duration, log *slog.Logger) *Set {
	host, _ := os.Hostname()
	var r [4]byte
	_, _ = rand.Read(r[:])
	replica := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '-'
	}, host) + "-" + hex.EncodeToString(r[:])
	return &Set{store: campaign.NewStore(b), bucket: b, replica: replica, interval: interval, log: log, Now: time.Now, loaded: map[string]*followed{}}
}

// Live returns the campaigns that make offers now, highest priority first
// (equal priorities by id).
func (s *Set) Live() []*campaign.Campaign {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	out := make([]*campaign.Campaign, 0, len(s.live))
	for _, c := range s.live {
		if c.Live(now) {
			out = append(out, c)
		}
	}
	return out
}

// State implements offers.Budget.
func (s *Set) State(id string) (offers.BudgetState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.loaded[id]
	now := s.Now()
	switch {
	case f == nil:
		return offers.BudgetState{}, fmt.Errorf("campaign %s is not loaded", id)
	case now.Sub(s.lastSync) > 3*s.interval:
		return offers.BudgetState{}, fmt.Errorf("its spend ledger could not be read since %s (is the store reachable?)", s.lastSync.UTC().Format(time.RFC3339))
	case f.joined.IsZero() || s.lastSync.Sub(f.joined) < s.interval:
		// The other replicas count this one in their shares from their
		// next look at the ledger after its first write.
		return offers.BudgetState{}, errors.New("this replica joined its spend ledger less than one check ago")
	}
	day := campaign.DayKey(now)
	return offers.BudgetState{Pacer: f.pacer, Guard: f.guard, Spend: campaign.Spend{
		Total: f.all.Total, Today: f.all.Days[day],
		Since: f.own.Total - f.ownAtCheck.Total, SinceToday: f.own.Days[day] - f.ownAtCheck.Days[day],
		Replicas: f.replicas,
	}}, nil
}

// Record implements offers.Budget.
func (s *Set) Record(id, unit string, cost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.loaded[id]
	if f == nil {
		return
	}
	now := s.Now()
	f.own.Total += cost
	f.own.Days[campaign.DayKey(now)] += cost
	if unit != "" && f.c.FrequencyCap.Max > 0 {
		if f.shown == nil {
			f.shown = map[string][]time.Time{}
		}
		// Only the last Max offers can decide the cap.
		times := append(f.shown[unit], now)
		f.shown[unit] = times[max(0, len(times)-f.c.FrequencyCap.Max):]
	}
}

// Shown implements offers.Budget: the offers this replica made.
func (s *Set) Shown(id, unit string, since time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if f := s.loaded[id]; f != nil {
		for _, t := range f.shown[unit] {
			if !t.Before(since) {
				n++
			}
		}
	}
	return n
}

// Run checks now and then every interval until ctx ends.
func (s *Set) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("campaigns check failed; campaigns stop making offers after three in a row", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check reloads changed campaigns, writes this replica's spend, reads the
// others' and moves each campaign's pacing price.
func (s *Set) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.interval, 5*time.Second))
	defer cancel()
	ids, err := s.store.IDs(ctx)
	if err != nil {
		return err
	}
	etags := make(map[string]string, len(ids))
	for _, id := range ids {
		if etags[id], err = s.store.ETag(ctx, id); err != nil && !errors.Is(err, registry.ErrNotFound) {
			return err
		}
	}
	s.mu.Lock()
	var reload []string
	for id, etag := range etags {
		if f := s.loaded[id]; f == nil || f.etag != etag {
			reload = append(reload, id)
		}
	}
	s.mu.Unlock()
	fresh := map[string]*campaign.Campaign{}
	for _, id := range reload {
		c, err := s.store.Get(ctx, id)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		fresh[id] = c
	}
	now := s.Now()
	s.mu.Lock()
	for id, c := range fresh {
		f := s.loaded[id]
		if f == nil {
			f = &followed{own: campaign.ReplicaSpend{Replica: s.replica, Days: map[string]float64{}}, guard: &campaign.Guard{}}
			s.loaded[id] = f
			s.log.Info("campaign loaded", "campaign", id, "revision", c.Revision, "state", c.State)
		} else {
			s.log.Info("campaign changed", "campaign", id, "from_revision", f.c.Revision, "to_revision", c.Revision, "state", c.State)
		}
		f.c, f.etag = c, etags[id]
		f.guard.SetFloor(c.Floor() + campaign.GuardMargin)
	}
	for id := range s.loaded {
		if _, ok := etags[id]; !ok {
			delete(s.loaded, id)
		}
	}
	// The ledger of every campaign but those long over: spend of a paused
	// campaign still counts when it resumes.
	type work struct {
		id  string
		own campaign.ReplicaSpend
	}
	var todo []work
	for id, f := range s.loaded {
		if f.c.State == campaign.StateEnded && now.After(f.c.End) && f.own.Total == f.ownAtCheck.Total && f.replicas > 0 {
			continue
		}
		own := cloneSpend(f.own)
		own.UpdatedAt, own.FairnessGivenUp = now, f.guard.GivenUp()
		todo = append(todo, work{id, own})
	}
	s.mu.Unlock()

	type read struct {
		own, all campaign.ReplicaSpend
		replicas int
	}
	results := map[string]read{}
	for _, w := range todo {
		if err := campaign.WriteSpend(ctx, s.bucket, w.id, w.own); err != nil {
			return err
		}
		ledger, err := campaign.ReadSpend(ctx, s.bucket, w.id)
		if err != nil {
			return err
		}
		r := read{own: w.own, all: cloneSpend(w.own), replicas: 1}
		for _, rs := range ledger {
			if rs.Replica == s.replica {
				continue
			}
			r.all.Total += rs.Total
			for d, v := range rs.Days {
				r.all.Days[d] += v
			}
			// A replica that wrote within three checks is spending (the
			// trainer's reconciliation is not a replica).
			if now.Sub(rs.UpdatedAt) < 3*s.interval && rs.Replica != campaign.ReconciledReplica {
				r.replicas++
			}
		}
		results[w.id] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSync = now
	for id, r := range results {
		f := s.loaded[id]
		if f == nil {
			continue
		}
		f.ownAtCheck, f.all, f.replicas = r.own, r.all, r.replicas
		if f.joined.IsZero() {
			f.joined = now
		}
		// Own spend since the snapshot counts as well.
		spent := f.all.Total + f.own.Total - f.ownAtCheck.Total
		if f.c.Live(now) {
			f.pacer.Update(f.c, spent, now)
		}
		if s.Synced != nil {
			s.Synced(id, spent, f.c.Budget, f.pacer.Price, f.guard.DI())
		}
	}
	// Forget shoppers whose offers are all outside their campaign's
	// frequency window: memory follows the shoppers who could be capped.
	for _, f := range s.loaded {
		window := time.Duration(f.c.FrequencyCap.PerHours) * time.Hour
		for u, times := range f.shown {
			if len(times) == 0 || now.Sub(times[len(times)-1]) > window {
				delete(f.shown, u)
			}
		}
	}
	s.live = s.live[:0]
	for _, f := range s.loaded {
		if f.c.State == campaign.StateActive {
			s.live = append(s.live, f.c)
		}
	}
	slices.SortFunc(s.live, func(a, b *campaign.Campaign) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return strings.Compare(a.ID, b.ID)
	})
	return nil
}
