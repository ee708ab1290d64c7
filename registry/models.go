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
	"regexp"
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
	ActionCanary   = "canary" // point the canary alias at a version, with a traffic share
	ActionShadow   = "shadow" // point the shadow alias at a version
	ActionClear    = "clear"  // unset an alias
)

// AliasCanary is the alias of a model's canary version: servers answer a
// share of shoppers (AliasState.Share, sticky by user id) with it.
const AliasCanary = "canary"

// AliasShadow is the alias of a model's shadow version: servers compute
// its answers beside production's, off the request path, and compare
// them, but never answer with it.
const AliasShadow = "shadow"

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

// KeyMetrics are the metrics listings show for a version, in this order,
// when it has them: the one or two figures that say whether it is better.
var KeyMetrics = []string{"auc", "log_loss", "ndcg@10", "precision@10", "qini", "users"}

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
