package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Layout of the registry inside a bucket:
//
//	models/<model>/versions/<version>/blobs/<blob>    artifact data, uploaded first
//	models/<model>/versions/<version>/manifest.json   written last, create-only
//	models/<model>/aliases/<alias>.json               alias state + full history, CAS only
const modelsDir = "models/"

// ManifestFormat is the manifest schema version written by this code.
const ManifestFormat = 1

// Gate decisions recorded in a manifest by whoever published it.
const (
	StatusCandidate = "candidate" // published, not promoted by the trainer; see StatusReason
	StatusApproved  = "approved"  // passed the trainer's gate
)

// Alias actions in history.
const (
	ActionPromote  = "promote"
	ActionRollback = "rollback"
)

// BlobInfo describes one artifact file of a version.
type BlobInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// TimeWindow is the span of event time a model was trained on.
type TimeWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Manifest is the immutable description of one model version. A version
// whose manifest is missing or invalid does not exist for readers.
type Manifest struct {
	Format          int                `json:"format"`
	Model           string             `json:"model"`
	Version         string             `json:"version"`
	Kind            string             `json:"kind"` // artifact codec, e.g. "propensity/v1"
	CreatedAt       time.Time          `json:"created_at"`
	TrainerRevision string             `json:"trainer_revision"`
	DataFingerprint string             `json:"data_fingerprint"`
	DataWindow      TimeWindow         `json:"data_window"`
	Params          map[string]string  `json:"params,omitempty"`
	Metrics         map[string]float64 `json:"metrics,omitempty"`
	InputSchema     []string           `json:"input_schema,omitempty"`
	Blobs           []BlobInfo         `json:"blobs"`
	Status          string             `json:"status"`
	StatusReason    string             `json:"status_reason,omitempty"`
}

// Validate checks a manifest's internal consistency.
func (m *Manifest) Validate() error {
	if m.Format != ManifestFormat {
		return fmt.Errorf("manifest format %d not supported (want %d)", m.Format, ManifestFormat)
	}
	if err := ValidateModelName(m.Model); err != nil {
		return err
	}
	if err := ValidateVersion(m.Version); err != nil {
		return err
	}
	if m.Kind == "" {
		return errors.New("manifest has no kind")
	}
	if m.CreatedAt.IsZero() {
		return errors.New("manifest has no created_at")
	}
	if len(m.Blobs) == 0 {
		return errors.New("manifest lists no blobs")
	}
	seen := map[string]bool{}
	for _, b := range m.Blobs {
		if err := validateBlobName(b.Name); err != nil {
			return err
		}
		if seen[b.Name] {
			return fmt.Errorf("blob %q listed twice", b.Name)
		}
		seen[b.Name] = true
		if b.Size < 0 {
			return fmt.Errorf("blob %q has negative size", b.Name)
		}
		if len(b.SHA256) != 64 {
			return fmt.Errorf("blob %q has no valid sha256", b.Name)
		}
	}
	for k, v := range m.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metric %q is %v", k, v)
		}
	}
	if m.Status != StatusCandidate && m.Status != StatusApproved {
		return fmt.Errorf("status %q is neither %q nor %q", m.Status, StatusCandidate, StatusApproved)
	}
	return nil
}

// AliasChange is one entry of an alias's history.
type AliasChange struct {
	Sequence int64     `json:"sequence"`
	Model    string    `json:"model"`
	Alias    string    `json:"alias"`
	Action   string    `json:"action"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
}

// AliasState is the stored form of an alias. Keeping the history in the
// same object as the pointer means one conditional write updates both, so
// the alias and its history can never disagree.
type AliasState struct {
	Model     string        `json:"model"`
	Alias     string        `json:"alias"`
	Version   string        `json:"version"`
	UpdatedAt time.Time     `json:"updated_at"`
	History   []AliasChange `json:"history"` // oldest first
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]*$`)
)

const maxNameLen = 64

func validateName(what, s string, re *regexp.Regexp, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalid, what)
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s name %.20q... is longer than %d characters", ErrInvalid, what, s, maxLen)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%w: %s name %q must not contain '..'", ErrInvalid, what, s)
	case !re.MatchString(s):
		return fmt.Errorf("%w: %s name %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", ErrInvalid, what, s)
	}
	return nil
}

// ValidateModelName checks a model name.
func ValidateModelName(s string) error { return validateName("model", s, nameRE, maxNameLen) }

// ValidateAliasName checks an alias name.
func ValidateAliasName(s string) error { return validateName("alias", s, nameRE, maxNameLen) }

// ValidateVersion checks a version id.
func ValidateVersion(s string) error { return validateName("version", s, versionRE, 128) }

func validateBlobName(s string) error { return validateName("blob", s, versionRE, 128) }

func versionsDir(model string) string { return modelsDir + model + "/versions/" }
func manifestPath(model, version string) string {
	return versionsDir(model) + version + "/manifest.json"
}
func blobPath(model, version, blob string) string {
	return versionsDir(model) + version + "/blobs/" + blob
}
func aliasPath(model, alias string) string { return modelsDir + model + "/aliases/" + alias + ".json" }

var (
	versionMu   sync.Mutex
	lastVersion time.Time
)

// NewVersionID returns an id that sorts by creation time and is unique with
// overwhelming probability. Within one process ids are strictly increasing
// even when several are made in the same millisecond.
func NewVersionID(t time.Time) string {
	t = t.UTC().Truncate(time.Millisecond)
	versionMu.Lock()
	if !t.After(lastVersion) {
		t = lastVersion.Add(time.Millisecond)
	}
	lastVersion = t
	versionMu.Unlock()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.Format(versionTimeLayout) + "-" + hex.EncodeToString(b[:])
}

// versionTimeLayout is the time part that starts every version id.
const versionTimeLayout = "20060102T150405.000Z"

// Registry keeps versioned models on a Bucket.
type Registry struct {
	bucket     Bucket
	now        func() time.Time
	casRetries int
	verify     func(Manifest, map[string][]byte) error
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithConflictRetries sets how often an alias change is retried after losing
// a race before it fails with ErrConflict.
func WithConflictRetries(n int) Option { return func(r *Registry) { r.casRetries = n } }

// WithVerifier has every promote and rollback check the target version
// with verify (say, decode it and make a prediction: artifact.Verify)
// before the alias moves, so that no alias points at a version a replica
// cannot load. verify's error is wrapped as ErrPrecondition unless it is
// already one of the registry's errors.
func WithVerifier(verify func(Manifest, map[string][]byte) error) Option {
	return func(r *Registry) { r.verify = verify }
}

// New returns a registry on b.
func New(b Bucket, opts ...Option) *Registry {
	r := &Registry{bucket: b, now: time.Now, casRetries: 50}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Bucket returns the underlying storage.
func (r *Registry) Bucket() Bucket { return r.bucket }

// Blob is one named artifact file to publish.
type Blob struct {
	Name string
	Data []byte
}

// PublishRequest describes a new version.
type PublishRequest struct {
	Model           string
	Kind            string
	Blobs           []Blob
	TrainerRevision string
	DataFingerprint string
	DataWindow      TimeWindow
	Params          map[string]string
	Metrics         map[string]float64
	InputSchema     []string
	Status          string // StatusCandidate (default) or StatusApproved
	StatusReason    string
}

// Publish stores a new immutable version: blobs first, manifest last, so a
// crash mid-way leaves nothing visible to readers.
func (r *Registry) Publish(ctx context.Context, req PublishRequest) (*Manifest, error) {
	now := r.now().UTC()
	m := &Manifest{
		Format: ManifestFormat, Model: req.Model, Version: NewVersionID(now), Kind: req.Kind,
		CreatedAt: now, TrainerRevision: req.TrainerRevision, DataFingerprint: req.DataFingerprint,
		DataWindow: req.DataWindow, Params: req.Params, Metrics: req.Metrics, InputSchema: req.InputSchema,
		Status: req.Status, StatusReason: req.StatusReason,
	}
	if m.Status == "" {
		m.Status = StatusCandidate
	}
	for _, b := range req.Blobs {
		sum := sha256.Sum256(b.Data)
		m.Blobs = append(m.Blobs, BlobInfo{Name: b.Name, Size: int64(len(b.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: publish %s: %v", ErrInvalid, req.Model, err)
	}
	for _, b := range req.Blobs {
		if err := UploadBytes(ctx, r.bucket, blobPath(m.Model, m.Version, b.Name), b.Data); err != nil {
			return nil, fmt.Errorf("publish %s/%s: upload blob %s: %w", m.Model, m.Version, b.Name, err)
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("publish %s: encode manifest: %w", m.Model, err)
	}
	if _, err := r.bucket.PutIf(ctx, manifestPath(m.Model, m.Version), data, ""); err != nil {
		return nil, fmt.Errorf("publish %s/%s: write manifest: %w", m.Model, m.Version, err)
	}
	return m, nil
}

// Manifest reads and validates a version's manifest.
func (r *Registry) Manifest(ctx context.Context, model, version string) (*Manifest, error) {
	if err := ValidateModelName(model); err != nil {
		return nil, err
	}
	if err := ValidateVersion(version); err != nil {
		return nil, err
	}
	data, err := ReadAll(ctx, r.bucket, manifestPath(model, version))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("model %s version %s: %w", model, version, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("model %s version %s: manifest is not valid JSON (%v): %w", model, version, err, ErrCorrupt)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("model %s version %s: invalid manifest: %v: %w", model, version, err, ErrCorrupt)
	}
	if m.Model != model || m.Version != version {
		return nil, fmt.Errorf("model %s version %s: manifest names %s/%s: %w", model, version, m.Model, m.Version, ErrCorrupt)
	}
	return &m, nil
}

// Load reads a version's manifest and all its blobs, verifying each blob's
// size and sha256. Any mismatch is ErrCorrupt naming the blob.
func (r *Registry) Load(ctx context.Context, model, version string) (*Manifest, map[string][]byte, error) {
	m, err := r.Manifest(ctx, model, version)
	if err != nil {
		return nil, nil, err
	}
	blobs := make(map[string][]byte, len(m.Blobs))
	for _, bi := range m.Blobs {
		data, err := ReadAll(ctx, r.bucket, blobPath(model, version, bi.Name))
		if errors.Is(err, ErrNotFound) {
			return nil, nil, fmt.Errorf("model %s version %s: blob %s is missing: %w", model, version, bi.Name, ErrCorrupt)
		}
		if err != nil {
			return nil, nil, err
		}
		if int64(len(data)) != bi.Size {
			return nil, nil, fmt.Errorf("model %s version %s: blob %s has %d bytes, manifest says %d: %w", model, version, bi.Name, len(data), bi.Size, ErrCorrupt)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != bi.SHA256 {
			return nil, nil, fmt.Errorf("model %s version %s: blob %s checksum mismatch (sha256 %s, manifest %s): %w", model, version, bi.Name, got[:12], bi.SHA256[:12], ErrCorrupt)
		}
		blobs[bi.Name] = data
	}
	return m, blobs, nil
}

// BlobPath returns where a version's blob is stored, for tools and tests.
func BlobPath(model, version, blob string) string { return blobPath(model, version, blob) }

// ManifestPath returns where a version's manifest is stored.
func ManifestPath(model, version string) string { return manifestPath(model, version) }

// Models lists model names, sorted.
func (r *Registry) Models(ctx context.Context) ([]string, error) {
	entries, err := r.bucket.List(ctx, modelsDir, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(e, modelsDir), "/"); ok && ValidateModelName(name) == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// Versions returns the manifests of a model's readable versions, newest
// first. Versions without a valid manifest (half-published, damaged) are
// left out. ErrNotFound when the model has no versions at all.
func (r *Registry) Versions(ctx context.Context, model string) ([]*Manifest, error) {
	if err := ValidateModelName(model); err != nil {
		return nil, err
	}
	entries, err := r.bucket.List(ctx, versionsDir(model), false)
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	for i := len(entries) - 1; i >= 0; i-- {
		v, ok := strings.CutSuffix(strings.TrimPrefix(entries[i], versionsDir(model)), "/")
		if !ok || ValidateVersion(v) != nil {
			continue
		}
		m, err := r.Manifest(ctx, model, v)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("model %s has no published versions: %w", model, ErrNotFound)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// Aliases maps each alias of a model to the version it points at.
func (r *Registry) Aliases(ctx context.Context, model string) (map[string]string, error) {
	if err := ValidateModelName(model); err != nil {
		return nil, err
	}
	dir := modelsDir + model + "/aliases/"
	entries, err := r.bucket.List(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(strings.TrimPrefix(e, dir), ".json")
		if !ok || ValidateAliasName(name) != nil {
			continue
		}
		st, _, err := r.readAlias(ctx, model, name)
		if err != nil {
			return nil, err
		}
		out[name] = st.Version
	}
	return out, nil
}

// Alias returns an alias's state. ErrNotFound when it was never set.
func (r *Registry) Alias(ctx context.Context, model, alias string) (*AliasState, error) {
	st, _, err := r.readAlias(ctx, model, alias)
	if err != nil {
		return nil, err
	}
	if st.Version == "" {
		return nil, fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
	}
	return st, nil
}

// AliasETag returns a token that changes whenever the alias changes: a cheap
// check for servers that poll.
func (r *Registry) AliasETag(ctx context.Context, model, alias string) (string, error) {
	if err := ValidateModelName(model); err != nil {
		return "", err
	}
	if err := ValidateAliasName(alias); err != nil {
		return "", err
	}
	a, err := r.bucket.Attributes(ctx, aliasPath(model, alias))
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
	}
	return a.ETag, err
}

// readAlias returns the alias state and its ETag; a never-set alias is an
// empty state with an empty ETag.
func (r *Registry) readAlias(ctx context.Context, model, alias string) (*AliasState, string, error) {
	if err := ValidateModelName(model); err != nil {
		return nil, "", err
	}
	if err := ValidateAliasName(alias); err != nil {
		return nil, "", err
	}
	// A read racing a replace has been seen to return a truncated body from
	// an S3 server, so an unparsable alias is re-read a few times before it
	// is called corrupt.
	for attempt := 0; ; attempt++ {
		data, etag, err := r.bucket.GetWithETag(ctx, aliasPath(model, alias))
		if errors.Is(err, ErrNotFound) {
			return &AliasState{Model: model, Alias: alias}, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		var st AliasState
		err = json.Unmarshal(data, &st)
		if err == nil {
			return &st, etag, nil
		}
		if attempt >= 4 {
			return nil, "", fmt.Errorf("model %s alias %s: stored alias is not valid JSON (%v): %w", model, alias, err, ErrCorrupt)
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
}

// changeAlias applies next to the current state and writes it with a
// conditional put, re-reading and retrying when another writer got there
// first. Every successful return is exactly one history entry.
func (r *Registry) changeAlias(ctx context.Context, model, alias string, next func(*AliasState) (AliasChange, error)) (AliasChange, error) {
	for attempt := 0; ; attempt++ {
		st, etag, err := r.readAlias(ctx, model, alias)
		if err != nil {
			return AliasChange{}, err
		}
		ch, err := next(st)
		if err != nil {
			return AliasChange{}, err
		}
		ch.Model, ch.Alias, ch.Time = model, alias, r.now().UTC()
		ch.From = st.Version
		ch.Sequence = int64(len(st.History)) + 1
		st.Version, st.UpdatedAt = ch.To, ch.Time
		st.History = append(st.History, ch)
		data, err := json.Marshal(st)
		if err != nil {
			return AliasChange{}, err
		}
		_, err = r.bucket.PutIf(ctx, aliasPath(model, alias), data, etag)
		if err == nil {
			return ch, nil
		}
		if !errors.Is(err, ErrConflict) {
			return AliasChange{}, err
		}
		if attempt >= r.casRetries {
			return AliasChange{}, fmt.Errorf("model %s alias %s: changed concurrently %d times in a row; try again: %w", model, alias, attempt+1, ErrConflict)
		}
		// Jittered backoff spreads contending writers apart.
		delay := time.Duration(mathrand.Int64N(int64(5*time.Millisecond)*int64(min(attempt+1, 10)))) + time.Millisecond
		select {
		case <-ctx.Done():
			return AliasChange{}, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// Promote points alias at version, which must exist and pass checksum
// verification, and records who did it and why.
func (r *Registry) Promote(ctx context.Context, model, alias, version, actor, reason string) (AliasChange, error) {
	if err := ValidateAliasName(alias); err != nil {
		return AliasChange{}, err
	}
	if err := checkReason(actor, reason); err != nil {
		return AliasChange{}, err
	}
	if err := r.loadable(ctx, model, version); err != nil {
		return AliasChange{}, fmt.Errorf("promote: %w", err)
	}
	return r.changeAlias(ctx, model, alias, func(*AliasState) (AliasChange, error) {
		return AliasChange{Action: ActionPromote, To: version, Actor: actor, Reason: reason}, nil
	})
}

// MaxReasonLen bounds an alias change's actor and reason: every replica
// reads the alias, history included, at every check.
const MaxReasonLen = 1024

func checkReason(actor, reason string) error {
	if len(actor) > MaxReasonLen || len(reason) > MaxReasonLen {
		return fmt.Errorf("%w: the actor and the reason may have at most %d bytes each (got %d and %d)", ErrInvalid, MaxReasonLen, len(actor), len(reason))
	}
	return nil
}

// loadable loads a version, checking its blobs' checksums, and verifies it
// (WithVerifier).
func (r *Registry) loadable(ctx context.Context, model, version string) error {
	m, blobs, err := r.Load(ctx, model, version)
	if err != nil {
		return err
	}
	if r.verify == nil {
		return nil
	}
	if err := r.verify(*m, blobs); err != nil {
		for _, known := range []error{ErrCorrupt, ErrInvalid, ErrPrecondition, ErrNotFound} {
			if errors.Is(err, known) {
				return fmt.Errorf("model %s version %s cannot be served: %w", model, version, err)
			}
		}
		return fmt.Errorf("model %s version %s cannot be served: %v: %w", model, version, err, ErrPrecondition)
	}
	return nil
}

// rollbackTarget replays the history as a stack: each promote pushes the
// version it replaced, each rollback pops one. The top is where a rollback
// goes, so repeated rollbacks walk back through earlier versions instead of
// toggling between the last two.
func rollbackTarget(history []AliasChange) (string, bool) {
	var stack []string
	for _, h := range history {
		switch h.Action {
		case ActionPromote:
			stack = append(stack, h.From)
		case ActionRollback:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if len(stack) == 0 || stack[len(stack)-1] == "" {
		return "", false
	}
	return stack[len(stack)-1], true
}

// Rollback points alias back at the version it held before the most recent
// promote that has not been rolled back yet.
func (r *Registry) Rollback(ctx context.Context, model, alias, actor, reason string) (AliasChange, error) {
	if err := checkReason(actor, reason); err != nil {
		return AliasChange{}, err
	}
	return r.changeAlias(ctx, model, alias, func(st *AliasState) (AliasChange, error) {
		if st.Version == "" {
			return AliasChange{}, fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
		}
		target, ok := rollbackTarget(st.History)
		if !ok {
			return AliasChange{}, fmt.Errorf("model %s alias %s has no earlier version to roll back to (promote a version instead): %w", model, alias, ErrPrecondition)
		}
		if err := r.loadable(ctx, model, target); err != nil {
			return AliasChange{}, fmt.Errorf("rollback target %s: %w", target, err)
		}
		return AliasChange{Action: ActionRollback, To: target, Actor: actor, Reason: reason}, nil
	})
}

// History returns an alias's changes, newest first.
func (r *Registry) History(ctx context.Context, model, alias string) ([]AliasChange, error) {
	st, _, err := r.readAlias(ctx, model, alias)
	if err != nil {
		return nil, err
	}
	if len(st.History) == 0 {
		return nil, fmt.Errorf("model %s alias %s has no history: %w", model, alias, ErrNotFound)
	}
	out := slices.Clone(st.History)
	slices.Reverse(out)
	return out, nil
}

// orphans lists version directories without a manifest whose id says they
// were started more than minAge ago.
func (r *Registry) orphans(ctx context.Context, model string, minAge time.Duration) ([]string, error) {
	entries, err := r.bucket.List(ctx, versionsDir(model), false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		v, ok := strings.CutSuffix(strings.TrimPrefix(e, versionsDir(model)), "/")
		if !ok || ValidateVersion(v) != nil || len(v) < len(versionTimeLayout) {
			continue
		}
		started, err := time.Parse(versionTimeLayout, v[:len(versionTimeLayout)])
		if err != nil || r.now().Sub(started) < minAge {
			continue // not our id format, or a publish that may still be running
		}
		if _, err := r.bucket.Attributes(ctx, manifestPath(model, v)); errors.Is(err, ErrNotFound) {
			out = append(out, v)
		} else if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Prune deletes all but the newest keep versions of model. A version is
// never deleted while an alias points at it or appeared (as from or to) in
// any alias's last protect history entries, so recent rollbacks keep
// working. The manifest goes first, so a version disappears for readers
// before its blobs do. Blobs of publishes abandoned over an hour ago
// without a manifest are deleted too. It returns the deleted version ids.
func (r *Registry) Prune(ctx context.Context, model string, keep, protect int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("%w: retention must keep at least 1 version", ErrInvalid)
	}
	versions, err := r.Versions(ctx, model)
	if err != nil {
		return nil, err
	}
	protected := map[string]bool{}
	aliases, err := r.Aliases(ctx, model)
	if err != nil {
		return nil, err
	}
	for a, v := range aliases {
		protected[v] = true
		st, _, err := r.readAlias(ctx, model, a)
		if err != nil {
			return nil, err
		}
		h := st.History
		for _, c := range h[max(0, len(h)-protect):] {
			protected[c.From], protected[c.To] = true, true
		}
	}
	var deleted []string
	// Blobs of publishes that died before writing their manifest are
	// invisible to readers; clear them once they are clearly abandoned.
	orphans, err := r.orphans(ctx, model, time.Hour)
	if err != nil {
		return nil, err
	}
	for _, v := range orphans {
		names, err := r.bucket.List(ctx, versionsDir(model)+v+"/", true)
		if err != nil {
			return deleted, err
		}
		for _, n := range names {
			if err := r.bucket.Delete(ctx, n); err != nil {
				return deleted, err
			}
		}
		deleted = append(deleted, v)
	}
	for i, m := range versions {
		if i < keep || protected[m.Version] {
			continue
		}
		if err := r.bucket.Delete(ctx, manifestPath(model, m.Version)); err != nil {
			return deleted, err
		}
		for _, b := range m.Blobs {
			if err := r.bucket.Delete(ctx, blobPath(model, m.Version, b.Name)); err != nil {
				return deleted, err
			}
		}
		deleted = append(deleted, m.Version)
	}
	return deleted, nil
}
