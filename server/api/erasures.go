package api

import (
	"context"
	"sync"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
)

// Erasures is the set of (pseudonymized) user ids that asked to be
// forgotten. Serving treats them as unknown at once, without waiting for
// the next profile snapshot; replicas pick up each other's erasures on
// Reload.
type Erasures struct {
	mu  sync.RWMutex
	ids map[string]bool
}

// NewErasures returns an empty set.
func NewErasures() *Erasures { return &Erasures{ids: map[string]bool{}} }

// Has reports whether id was erased.
func (e *Erasures) Has(id string) bool {
	if e == nil {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.ids[id]
}

// Add marks id as erased.
func (e *Erasures) Add(id string) {
	e.mu.Lock()
	e.ids[id] = true
	e.mu.Unlock()
}

// Reload reads the erasure records from storage.
func (e *Erasures) Reload(ctx context.Context, b registry.Bucket) error {
	ids, err := eventlog.ErasedUsers(ctx, b)
	if err != nil {
		return err
	}
	e.mu.Lock()
	for id := range ids {
		e.ids[id] = true
	}
	e.mu.Unlock()
	return nil
}
