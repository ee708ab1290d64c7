// Package registry is the model registry of the promotion platform.
//
// It has two layers. The bottom one is Bucket, a small context-first object
// storage contract with three backends under providers/ (fs, the default;
// inmem, the fake other packages test against; s3, any S3-compatible server
// through minio-go). Every backend passes the one conformance suite in
// storetest. The top layer, Registry, keeps versioned model artifacts on any
// Bucket: immutable versions whose manifest is written last and whose blobs
// are checksummed, aliases such as "production" moved only by conditional
// writes, an append-only alias history, one-call rollback and retention.
//
// Typical use:
//
//	bkt, _ := client.NewBucket(ctx, client.Config{Type: "fs", Dir: "./var/registry"})
//	reg := registry.New(bkt)
//	m, _ := reg.Publish(ctx, registry.PublishRequest{Model: "propensity", ...})
//	_, _ = reg.Promote(ctx, "propensity", "production", m.Version, "alice", "beats incumbent")
//
// The module holds what the trainer and the server share through the
// store, each in its own package: the event log (eventlog: the event
// schema, its validation and the log's batches, beside the models in the
// same Bucket), the model formats and their prediction maths (artifact),
// the backends and the factory that picks one (providers, client), and
// promoctl (cli).
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors. Backends and the registry wrap them with %w; the API edge
// maps them to gRPC codes in one place.
var (
	// ErrNotFound: the object, model, version or alias does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write lost a race; re-read and retry.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a name or argument is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt: stored data fails validation (bad manifest, checksum mismatch).
	ErrCorrupt = errors.New("corrupt")
	// ErrPrecondition: the request is well-formed but the state does not allow it
	// (for example a rollback with nothing to roll back to).
	ErrPrecondition = errors.New("failed precondition")
	// ErrUnavailable: the storage could not be reached or refused our credentials.
	ErrUnavailable = errors.New("storage unavailable")
)

// Attributes describe a stored object.
type Attributes struct {
	Size         int64
	ETag         string
	LastModified time.Time
}

// Bucket is the storage contract every backend implements. Names are
// slash-separated relative paths ("models/propensity/aliases/production.json");
// ValidateObjectName says which are allowed. All methods honour ctx.
type Bucket interface {
	// Get opens an object for reading. ErrNotFound when absent.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// GetWithETag reads a small object whole, with the ETag of exactly the
	// bytes returned, for a later PutIf.
	GetWithETag(ctx context.Context, name string) ([]byte, string, error)
	// Attributes returns size, ETag and modification time. ErrNotFound when absent.
	Attributes(ctx context.Context, name string) (Attributes, error)
	// Upload writes an object, replacing any previous one. Readers see the old
	// or the new content, never a partial write.
	Upload(ctx context.Context, name string, r io.Reader) error
	// PutIf writes data only when the object's current ETag is ifMatch, or,
	// when ifMatch is empty, only when the object does not exist yet. It
	// returns the new ETag, or ErrConflict when the condition does not hold.
	PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error)
	// Delete removes an object. Deleting an absent object is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the names under dir ("" for the root, otherwise ending in
	// "/"), sorted. Without recursive it returns direct children only, with
	// sub-directories as "dir/sub/"; with recursive it returns every object.
	List(ctx context.Context, dir string, recursive bool) ([]string, error)
	// Name describes the bucket for logs, e.g. "fs:/var/registry".
	Name() string
	// Close releases resources.
	Close() error
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, b Bucket, name string) ([]byte, error) {
	rc, err := b.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// UploadBytes writes data to name.
func UploadBytes(ctx context.Context, b Bucket, name string, data []byte) error {
	return b.Upload(ctx, name, bytes.NewReader(data))
}

// MaxObjectNameLen bounds object names; S3 allows 1024 bytes.
const MaxObjectNameLen = 1024

var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._=-]*$`)

// ValidateObjectName accepts relative slash-separated names whose segments
// use letters, digits, '.', '_', '-' and '=', do not start with '.', and are
// not empty. That rules out path traversal, hidden files (the fs backend
// keeps its temporaries there) and names that differ between backends.
func ValidateObjectName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty object name", ErrInvalid)
	}
	if len(name) > MaxObjectNameLen {
		return fmt.Errorf("%w: object name longer than %d bytes", ErrInvalid, MaxObjectNameLen)
	}
	for _, seg := range strings.Split(name, "/") {
		if !segmentRE.MatchString(seg) {
			return fmt.Errorf("%w: object name %q: segment %q must start with a letter, digit or '_' and contain only letters, digits, '.', '_', '-', '='", ErrInvalid, name, seg)
		}
	}
	return nil
}

// ValidateDir accepts "" or a valid object name followed by "/".
func ValidateDir(dir string) error {
	if dir == "" {
		return nil
	}
	if !strings.HasSuffix(dir, "/") {
		return fmt.Errorf("%w: directory %q must end with '/'", ErrInvalid, dir)
	}
	return ValidateObjectName(strings.TrimSuffix(dir, "/"))
}
