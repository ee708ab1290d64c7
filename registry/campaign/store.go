package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/promoai/promo/registry"
)

// Actions recorded in a campaign's history.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionPause  = "pause"
	ActionResume = "resume"
	ActionEnd    = "end"
)

// Change is one entry of a campaign's history: who did what, when, why,
// and the campaign as it became.
type Change struct {
	Revision int       `json:"revision"`
	Action   string    `json:"action"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
	Campaign Campaign  `json:"campaign"`
}

// stored is a campaign's object: the current revision and its history in
// one object, so that one conditional write changes both and they never
// disagree.
type stored struct {
	Campaign Campaign `json:"campaign"`
	History  []Change `json:"history"` // oldest first
}

// Dir is where campaigns live in the bucket.
const Dir = "campaigns/"

// MaxReasonLen bounds a change's actor and reason.
const MaxReasonLen = 1024

func path(id string) string { return Dir + id + ".json" }

// Store keeps campaigns in a registry bucket.
type Store struct {
	bucket registry.Bucket
	now    func() time.Time
}

// NewStore returns a store on b.
func NewStore(b registry.Bucket) *Store { return &Store{bucket: b, now: time.Now} }

// read returns a campaign's object and ETag.
func (s *Store) read(ctx context.Context, id string) (*stored, string, error) {
	if err := ValidateID(id); err != nil {
		return nil, "", err
	}
	data, etag, err := s.bucket.GetWithETag(ctx, path(id))
	if errors.Is(err, registry.ErrNotFound) {
		return nil, "", fmt.Errorf("campaign %s: %w", id, registry.ErrNotFound)
	}
	if err != nil {
		return nil, "", err
	}
	var st stored
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, "", fmt.Errorf("campaign %s: stored object is not valid JSON (%v): %w", id, err, registry.ErrCorrupt)
	}
	return &st, etag, nil
}

// Get returns a campaign's current revision.
func (s *Store) Get(ctx context.Context, id string) (*Campaign, error) {
	st, _, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	return &st.Campaign, nil
}

// ETag changes whenever the campaign does: a cheap check for servers
// that poll.
func (s *Store) ETag(ctx context.Context, id string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	a, err := s.bucket.Attributes(ctx, path(id))
	return a.ETag, err
}

// IDs lists the campaigns' ids, sorted.
func (s *Store) IDs(ctx context.Context) ([]string, error) {
	names, err := s.bucket.List(ctx, Dir, false)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range names {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(n, Dir), ".json"); ok && ValidateID(id) == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// List returns every campaign's current revision, by id.
func (s *Store) List(ctx context.Context) ([]Campaign, error) {
	ids, err := s.IDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Campaign, 0, len(ids))
	for _, id := range ids {
		c, err := s.Get(ctx, id)
		if errors.Is(err, registry.ErrNotFound) {
			continue // deleted between the listing and the read
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

// History returns a campaign's changes, newest first.
func (s *Store) History(ctx context.Context, id string) ([]Change, error) {
	st, _, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(st.History)
	slices.Reverse(out)
	return out, nil
}

func checkActor(actor, reason string) error {
	if actor == "" || len(actor) > MaxReasonLen || len(reason) > MaxReasonLen {
		return fmt.Errorf("%w: a change needs an actor, and the actor and the reason may have at most %d bytes each", registry.ErrInvalid, MaxReasonLen)
	}
	return nil
}

// Create stores a new campaign as revision 1, active unless c says
// paused, with a fresh salt. registry.ErrConflict when the id is taken.
func (s *Store) Create(ctx context.Context, c Campaign, actor, reason string) (*Campaign, error) {
	if err := checkActor(actor, reason); err != nil {
		return nil, err
	}
	if c.State == "" {
		c.State = StateActive
	}
	if c.State == StateEnded {
		return nil, fmt.Errorf("%w: a campaign cannot be created ended", registry.ErrInvalid)
	}
	c.Salt, c.Revision, c.UpdatedAt, c.UpdatedBy = newSalt(), 1, s.now().UTC(), actor
	if err := c.Validate(); err != nil {
		return nil, err
	}
	st := stored{Campaign: c, History: []Change{{Revision: 1, Action: ActionCreate, Actor: actor, Reason: reason, Time: c.UpdatedAt, Campaign: c}}}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if _, err := s.bucket.PutIf(ctx, path(c.ID), data, ""); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			return nil, fmt.Errorf("campaign %s already exists (update it instead): %w", c.ID, registry.ErrConflict)
		}
		return nil, err
	}
	return &c, nil
}

// Update replaces a campaign's settings with c's. revision is the one the
// edit was made on: when the campaign has changed since, the edit is
// refused with registry.ErrConflict, so that nobody's change is lost
// unseen. The salt, state and id cannot be changed this way, nor can an
// ended campaign.
func (s *Store) Update(ctx context.Context, c Campaign, revision int, actor, reason string) (*Campaign, error) {
	if err := checkActor(actor, reason); err != nil {
		return nil, err
	}
	return s.change(ctx, c.ID, actor, reason, ActionUpdate, false, func(cur *Campaign) (Campaign, error) {
		if cur.State == StateEnded {
			return Campaign{}, fmt.Errorf("campaign %s has ended; create a new one: %w", c.ID, registry.ErrPrecondition)
		}
		if cur.Revision != revision {
			return Campaign{}, fmt.Errorf("campaign %s is at revision %d, and this edit was made on revision %d: someone else changed it since; read it again and reapply the edit: %w",
				c.ID, cur.Revision, revision, registry.ErrConflict)
		}
		next := c
		next.Salt, next.State = cur.Salt, cur.State
		return next, nil
	})
}

// SetState pauses, resumes or ends a campaign (action ActionPause,
// ActionResume or ActionEnd). It applies to whatever the current revision
// is, retrying when it loses a race.
func (s *Store) SetState(ctx context.Context, id, action, actor, reason string) (*Campaign, error) {
	if err := checkActor(actor, reason); err != nil {
		return nil, err
	}
	to := map[string]string{ActionPause: StatePaused, ActionResume: StateActive, ActionEnd: StateEnded}[action]
	if to == "" {
		return nil, fmt.Errorf("%w: unknown action %q (want %s, %s or %s)", registry.ErrInvalid, action, ActionPause, ActionResume, ActionEnd)
	}
	return s.change(ctx, id, actor, reason, action, true, func(cur *Campaign) (Campaign, error) {
		if cur.State == StateEnded {
			return Campaign{}, fmt.Errorf("campaign %s has ended: %w", id, registry.ErrPrecondition)
		}
		next := *cur
		next.State = to
		return next, nil
	})
}

// change writes next(current) as a new revision with a conditional write.
// With retry, a lost race re-reads and applies next again.
func (s *Store) change(ctx context.Context, id, actor, reason, action string, retry bool, next func(*Campaign) (Campaign, error)) (*Campaign, error) {
	retries := 0
	if retry {
		retries = 8
	}
	var c Campaign
	err := registry.RetryOnConflict(ctx, retries, func() error {
		st, etag, err := s.read(ctx, id)
		if err != nil {
			return err
		}
		if c, err = next(&st.Campaign); err != nil {
			return err
		}
		c.ID = id
		c.Revision, c.UpdatedAt, c.UpdatedBy = st.Campaign.Revision+1, s.now().UTC(), actor
		if err := c.Validate(); err != nil {
			return err
		}
		st.Campaign = c
		st.History = append(st.History, Change{Revision: c.Revision, Action: action, Actor: actor, Reason: reason, Time: c.UpdatedAt, Campaign: c})
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if _, err := s.bucket.PutIf(ctx, path(id), data, etag); errors.Is(err, registry.ErrConflict) {
			return fmt.Errorf("campaign %s changed while this edit was written; read it again and reapply the edit: %w", id, err)
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}
