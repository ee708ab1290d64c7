// Package models keeps the server's current model set and hot-reloads it.
//
// For each model the server follows an alias (default "production"). A
// watcher checks the alias object's ETag every few seconds (one small read,
// no listing); when it changes, the new version is loaded in the
// background, its checksums verified by the registry, decoded and validated
// by the shared codec, warmed up, and swapped in with one atomic pointer
// store. A failed load keeps the old model and is retried with backoff; a
// storage outage never unloads a serving model.
package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

// Source is what the server needs from the registry.
type Source interface {
	AliasETag(ctx context.Context, model, alias string) (string, error)
	Alias(ctx context.Context, model, alias string) (*registry.AliasState, error)
	Load(ctx context.Context, model, version string) (*registry.Manifest, map[string][]byte, error)
}

// Loaded is one model version in memory.
type Loaded struct {
	Name     string
	Alias    string
	Version  string
	Manifest *registry.Manifest
	Artifact artifact.Artifact
	LoadedAt time.Time
	// Bytes is the size of the version's blobs; LoadTook how long reading,
	// decoding and checking them took.
	Bytes    int
	LoadTook time.Duration
	// Share of shoppers a canary answers (0 for production).
	Share float64
}

// Status of one followed model.
type Status struct {
	Name, Alias, Version string
	LoadedAt, LastCheck  time.Time
	LastError            string
	LastErrorAt          time.Time
	Swaps, LoadFailures  int64
	// Share of shoppers a canary answers (0 for the others).
	Share float64
}

// Hooks let callers observe loads (metrics, logs).
type Hooks struct {
	OnSwap        func(name, alias, from, to string)
	OnLoadFailure func(name, alias, version string, err error)
}

type watched struct {
	name, alias string
	kind        string
	optional    bool
	trial       bool // a canary or shadow alias: unset means "none", not an error
	current     atomic.Pointer[Loaded]
	// checked is set once the first check has ended, whatever its outcome.
	checked    atomic.Bool
	mu         sync.Mutex
	status     Status
	etag       string
	failedETag string
	backoff    time.Duration
	nextTry    time.Time
}

// Set follows a fixed list of models.
type Set struct {
	src      Source
	log      *slog.Logger
	hooks    Hooks
	interval time.Duration
	models   map[string]*watched
	trials   map[string][]*watched // by model name: its canary and shadow aliases
	order    []string
	now      func() time.Time
}

// Spec names a model to follow and the artifact kind it must have.
// An optional model holds back readiness only until its first check has
// ended (loaded, absent or failed), so a replica that has just started
// does not answer "no model" for one that is about to load.
type Spec struct {
	Name, Alias, Kind string
	Optional          bool
	// Trials also follows the model's canary and shadow aliases
	// (registry.AliasCanary, registry.AliasShadow).
	Trials bool
}

// NewSet prepares a set; call Run to start watching.
func NewSet(src Source, specs []Spec, interval time.Duration, log *slog.Logger, hooks Hooks) *Set {
	s := &Set{src: src, log: log, hooks: hooks, interval: interval, models: map[string]*watched{}, trials: map[string][]*watched{}, now: time.Now}
	for _, sp := range specs {
		w := &watched{name: sp.Name, alias: sp.Alias, kind: sp.Kind, optional: sp.Optional}
		w.status = Status{Name: sp.Name, Alias: sp.Alias}
		s.models[sp.Name] = w
		s.order = append(s.order, sp.Name)
		if sp.Trials {
			for _, alias := range []string{registry.AliasCanary, registry.AliasShadow} {
				c := &watched{name: sp.Name, alias: alias, kind: sp.Kind, optional: true, trial: true}
				c.status = Status{Name: sp.Name, Alias: alias}
				s.trials[sp.Name] = append(s.trials[sp.Name], c)
			}
		}
	}
	return s
}

// Canary returns the model's canary version, or nil when it has none.
func (s *Set) Canary(name string) *Loaded { return s.trial(name, registry.AliasCanary) }

// Shadow returns the model's shadow version, or nil when it has none.
func (s *Set) Shadow(name string) *Loaded { return s.trial(name, registry.AliasShadow) }

func (s *Set) trial(name, alias string) *Loaded {
	for _, w := range s.trials[name] {
		if w.alias == alias {
			return w.current.Load()
		}
	}
	return nil
}

// Get returns the current version of a model, or nil when none is loaded.
func (s *Set) Get(name string) *Loaded {
	w, ok := s.models[name]
	if !ok {
		return nil
	}
	return w.current.Load()
}

// Ready reports whether every required model is loaded and every optional
// one has been checked once, and if not, which are missing.
func (s *Set) Ready() (bool, string) {
	var missing []string
	for _, n := range s.order {
		w := s.models[n]
		if w.optional && !w.checked.Load() {
			missing = append(missing, fmt.Sprintf("%s (alias %s): first check not done", n, w.alias))
			continue
		}
		if !w.optional && w.current.Load() == nil {
			w.mu.Lock()
			e := w.status.LastError
			w.mu.Unlock()
			msg := fmt.Sprintf("%s (alias %s)", n, w.alias)
			if e != "" {
				msg += ": " + e
			}
			missing = append(missing, msg)
		}
	}
	if len(missing) == 0 {
		return true, "all required models loaded"
	}
	return false, fmt.Sprintf("no model loaded yet for %v", missing)
}

// Statuses reports every followed model.
func (s *Set) Statuses() []Status {
	out := make([]Status, 0, len(s.order))
	for _, n := range s.order {
		for _, w := range append([]*watched{s.models[n]}, s.trials[n]...) {
			if w.trial && w.current.Load() == nil {
				continue // no canary: nothing to report
			}
			w.mu.Lock()
			st := w.status
			w.mu.Unlock()
			if c := w.current.Load(); c != nil {
				st.Share = c.Share
			}
			out = append(out, st)
		}
	}
	return out
}

// Run checks all models now and then every interval until ctx ends.
func (s *Set) Run(ctx context.Context) {
	s.CheckAll(ctx)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.CheckAll(ctx)
		}
	}
}

// CheckAll checks every model once, in parallel.
func (s *Set) CheckAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range s.order {
		for _, w := range append([]*watched{s.models[n]}, s.trials[n]...) {
			wg.Go(func() { s.check(ctx, w) })
		}
	}
	wg.Wait()
}

const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

func (s *Set) check(ctx context.Context, w *watched) {
	defer w.checked.Store(true)
	now := s.now()
	w.mu.Lock()
	w.status.LastCheck = now
	w.mu.Unlock()

	etag, err := s.src.AliasETag(ctx, w.name, w.alias)
	if w.trial && errors.Is(err, registry.ErrNotFound) {
		s.drop(w, etag)
		return
	}
	if err != nil {
		// An alias that does not exist yet is not a load failure: the
		// trainer has not promoted anything. Keep checking every interval.
		// One that vanished while a version served is: the store lost it.
		notYet := errors.Is(err, registry.ErrNotFound) && w.current.Load() == nil
		s.fail(w, "", "", fmt.Errorf("check alias: %w", err), !notYet)
		return
	}
	w.mu.Lock()
	skip := (etag == w.etag && w.current.Load() != nil) || (etag == w.failedETag && now.Before(w.nextTry))
	w.mu.Unlock()
	if skip {
		return
	}
	st, err := s.src.Alias(ctx, w.name, w.alias)
	if w.trial && errors.Is(err, registry.ErrNotFound) {
		s.drop(w, etag) // cleared: the alias exists without a version
		return
	}
	if err != nil {
		s.fail(w, etag, "", fmt.Errorf("read alias: %w", err), true)
		return
	}
	if cur := w.current.Load(); cur != nil && cur.Version == st.Version {
		if cur.Share != st.Share {
			next := *cur
			next.Share = st.Share
			w.current.Store(&next)
			s.log.Info("canary share changed", "model", w.name, "version", cur.Version, "from", cur.Share, "to", st.Share)
		}
		w.mu.Lock()
		w.etag = etag
		w.mu.Unlock()
		return
	}
	l, err := s.load(ctx, w, st.Version)
	if err != nil {
		s.fail(w, etag, st.Version, err, true)
		return
	}
	l.Share = st.Share
	old := w.current.Swap(l)
	w.mu.Lock()
	w.etag, w.failedETag, w.backoff, w.nextTry = etag, "", 0, time.Time{}
	w.status.Version, w.status.LoadedAt = l.Version, l.LoadedAt
	w.status.LastError = ""
	w.status.Swaps++
	w.mu.Unlock()
	from := ""
	if old != nil {
		from = old.Version
	}
	s.log.Info("model swapped", "model", w.name, "alias", w.alias, "from", from, "to", l.Version, "bytes", l.Bytes, "load_seconds", l.LoadTook.Seconds())
	if s.hooks.OnSwap != nil {
		s.hooks.OnSwap(w.name, w.alias, from, l.Version)
	}
}

func (s *Set) load(ctx context.Context, w *watched, version string) (*Loaded, error) {
	start := time.Now()
	m, blobs, err := s.src.Load(ctx, w.name, version)
	if err != nil {
		return nil, err
	}
	// Any version of the model's kind: Decode refuses versions it does not know.
	if w.kind != "" && artifact.Family(m.Kind) != artifact.Family(w.kind) {
		return nil, fmt.Errorf("%w: version %s has kind %s, this server serves %s", registry.ErrPrecondition, version, m.Kind, w.kind)
	}
	a, err := artifact.Decode(m.Kind, blobs)
	if err != nil {
		return nil, err
	}
	if err := artifact.Check(a); err != nil {
		return nil, fmt.Errorf("warm-up of %s/%s failed: %w", w.name, version, err)
	}
	size := 0
	for _, b := range blobs {
		size += len(b)
	}
	return &Loaded{Name: w.name, Alias: w.alias, Version: version, Manifest: m, Artifact: a, LoadedAt: s.now(), Bytes: size, LoadTook: time.Since(start)}, nil
}

// drop forgets a canary whose alias is unset: production answers
// everyone again.
func (s *Set) drop(w *watched, etag string) {
	old := w.current.Swap(nil)
	w.mu.Lock()
	w.etag, w.failedETag, w.backoff, w.nextTry = etag, "", 0, time.Time{}
	w.status.Version, w.status.LastError = "", ""
	w.mu.Unlock()
	if old != nil {
		s.log.Info("alias cleared", "model", w.name, "alias", w.alias, "was", old.Version)
		if s.hooks.OnSwap != nil {
			s.hooks.OnSwap(w.name, w.alias, old.Version, "")
		}
	}
}

// fail records an error. Failures of a particular alias state (etag) back
// off exponentially; a new alias state is tried at the next check.
func (s *Set) fail(w *watched, etag, version string, err error, countFailure bool) {
	now := s.now()
	w.mu.Lock()
	repeated := w.status.LastError == err.Error()
	w.status.LastError, w.status.LastErrorAt = err.Error(), now
	if countFailure {
		w.status.LoadFailures++
		if w.backoff == 0 {
			w.backoff = minBackoff
		} else {
			w.backoff = min(2*w.backoff, maxBackoff)
		}
		w.failedETag, w.nextTry = etag, now.Add(w.backoff)
	}
	retry := w.backoff
	w.mu.Unlock()
	serving := ""
	if cur := w.current.Load(); cur != nil {
		serving = cur.Version
	}
	if repeated && !countFailure {
		return // the same "not promoted yet" every interval is noise
	}
	s.log.Warn("model check failed; keeping the current model", "model", w.name, "alias", w.alias, "version", version, "serving", serving, "retry_in", retry, "err", err)
	if countFailure && s.hooks.OnLoadFailure != nil {
		s.hooks.OnLoadFailure(w.name, w.alias, version, err)
	}
}
