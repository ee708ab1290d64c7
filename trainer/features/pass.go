package features

import (
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// Pass folds one read of the event log into several builders, as a
// training run does: its training data, its profiles and one dataset per
// experiment period come from a single read. Each event is validated once,
// not once per builder, and the builders that follow only some shoppers
// (Config.Shoppers) find out whether they follow an event's shopper from
// one lookup for all of them: with daily experiment periods a pass holds
// ninety builders, each following the few shoppers exposed that day, and
// per-builder validation and lookups were most of the pass's time.
//
// Every builder ends up exactly as if it had been given each event with
// Builder.Add.
type Pass struct {
	builders []*Builder
	// followers maps a shopper to the builders, by ascending index, whose
	// Shoppers include them.
	followers map[string][]int32
}

// NewPass starts one builder per config.
func NewPass(cfgs ...Config) *Pass {
	p := &Pass{followers: map[string][]int32{}}
	for i, c := range cfgs {
		p.builders = append(p.builders, NewBuilder(c))
		for u := range c.Shoppers {
			p.followers[u] = append(p.followers[u], int32(i))
		}
	}
	return p
}

// Add folds one event into every builder.
func (p *Pass) Add(e *eventlog.Event) {
	invalid := e.Validate(time.Now())
	followers := p.followers[e.User]
	for i, b := range p.builders {
		followed := b.cfg.Shoppers == nil
		if len(followers) > 0 && followers[0] == int32(i) {
			followed, followers = true, followers[1:]
		}
		if b.screen(e, invalid) {
			b.fold(e, followed)
		}
	}
}

// Finish finishes every builder, in the order of their configs.
func (p *Pass) Finish() []*Dataset {
	out := make([]*Dataset, len(p.builders))
	for i, b := range p.builders {
		out[i] = b.Finish()
	}
	return out
}
