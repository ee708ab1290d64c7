// Package s3 is the registry.Bucket for S3-compatible object storage (AWS S3,
// MinIO, Versity S3 Gateway, ...) through minio-go.
//
// Conditional writes use S3 preconditions: If-None-Match: * to create only
// when absent, If-Match: <etag> to replace only an unchanged object. The
// server decides atomically, so concurrent writers on many machines cannot
// lose an update.
package s3

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/promoai/promo/registry"
)

// Config locates a bucket. Credentials come from the fields, or else from the
// environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, then
// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD).
type Config struct {
	Endpoint  string `json:"endpoint"`   // host:port, no scheme
	Bucket    string `json:"bucket"`     // must exist unless CreateBucket
	Prefix    string `json:"prefix"`     // optional key prefix, e.g. "promo/"
	Region    string `json:"region"`     // optional
	Insecure  bool   `json:"insecure"`   // plain HTTP instead of TLS
	AccessKey string `json:"access_key"` // optional; see above
	SecretKey string `json:"secret_key"` // optional; see above
	// CreateBucket creates the bucket when missing (handy for local setups).
	CreateBucket bool `json:"create_bucket"`
	// Timeout bounds each request; 0 means 30s.
	Timeout time.Duration `json:"timeout"`
}

// RegisterFlags registers the config's flags with the given prefix, e.g. "store.s3.".
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&c.Endpoint, prefix+"endpoint", c.Endpoint, "S3 endpoint host:port")
	fs.StringVar(&c.Bucket, prefix+"bucket", c.Bucket, "S3 bucket name")
	fs.StringVar(&c.Prefix, prefix+"prefix", c.Prefix, "key prefix inside the bucket")
	fs.StringVar(&c.Region, prefix+"region", c.Region, "S3 region")
	fs.BoolVar(&c.Insecure, prefix+"insecure", c.Insecure, "use plain HTTP instead of TLS")
	fs.StringVar(&c.AccessKey, prefix+"access-key", c.AccessKey, "access key (default: $AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.SecretKey, prefix+"secret-key", c.SecretKey, "secret key (default: $AWS_SECRET_ACCESS_KEY)")
	fs.BoolVar(&c.CreateBucket, prefix+"create-bucket", c.CreateBucket, "create the bucket if it does not exist")
}

func (c *Config) validate() error {
	if c.Endpoint == "" {
		return fmt.Errorf("%w: s3: endpoint is required", registry.ErrInvalid)
	}
	if strings.Contains(c.Endpoint, "://") {
		return fmt.Errorf("%w: s3: endpoint %q must be host:port without a scheme (use insecure=true for http)", registry.ErrInvalid, c.Endpoint)
	}
	if c.Bucket == "" {
		return fmt.Errorf("%w: s3: bucket is required", registry.ErrInvalid)
	}
	if c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.AccessKey == "" {
		c.AccessKey = firstEnv("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER")
	}
	if c.SecretKey == "" {
		c.SecretKey = firstEnv("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD")
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return nil
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// Bucket is an S3 bucket, optionally under a key prefix.
type Bucket struct {
	client *minio.Client
	cfg    Config
}

var _ registry.Bucket = (*Bucket)(nil)

// New connects to the bucket and checks that it exists (creating it when
// configured), so a wrong endpoint or credentials fail at start-up with a
// clear message rather than on the first model load.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	cl, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: transport,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: s3 client: %v", registry.ErrInvalid, err)
	}
	b := &Bucket{client: cl, cfg: cfg}
	ok, err := cl.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, b.wrap("check bucket", "", err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3 bucket %q does not exist at %s (create it or set create_bucket): %w", cfg.Bucket, cfg.Endpoint, registry.ErrNotFound)
		}
		if err := cl.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, b.wrap("create bucket", "", err)
			}
		}
	}
	return b, nil
}

// wrap maps minio errors onto the registry's sentinels with a message that
// says what to check.
func (b *Bucket) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3 %s %s: %w", op, name, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("object %s: %w", name, registry.ErrNotFound)
	case "NoSuchBucket":
		return fmt.Errorf("s3 bucket %q: %w", b.cfg.Bucket, registry.ErrNotFound)
	case "PreconditionFailed", "ConditionalRequestConflict":
		return fmt.Errorf("s3 %s %s: %s: %w", op, name, resp.Code, registry.ErrConflict)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return fmt.Errorf("s3 %s %s: %s rejected our credentials (%s): check the access and secret keys: %w", op, name, b.cfg.Endpoint, resp.Code, registry.ErrUnavailable)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("object %s: %w", name, registry.ErrNotFound)
	}
	if resp.StatusCode == http.StatusPreconditionFailed {
		return fmt.Errorf("s3 %s %s: %w", op, name, registry.ErrConflict)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || resp.StatusCode >= 500 || resp.StatusCode == 0 {
		return fmt.Errorf("s3 %s %s at %s: %v: %w", op, name, b.cfg.Endpoint, err, registry.ErrUnavailable)
	}
	return fmt.Errorf("s3 %s %s: %w", op, name, err)
}

func (b *Bucket) key(name string) (string, error) {
	if err := registry.ValidateObjectName(name); err != nil {
		return "", err
	}
	return b.cfg.Prefix + name, nil
}

func (b *Bucket) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.Timeout)
}

// Get implements registry.Bucket. It uses one plain GET whose body and
// metadata belong together; minio-go's lazy Object re-requests with
// If-Match and fails when the object is replaced between requests.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, _, err := b.get(ctx, name)
	return rc, err
}

func (b *Bucket) get(ctx context.Context, name string) (io.ReadCloser, minio.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, minio.ObjectInfo{}, err
	}
	key, err := b.key(name)
	if err != nil {
		return nil, minio.ObjectInfo{}, err
	}
	rc, info, _, err := minio.Core{Client: b.client}.GetObject(ctx, b.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, minio.ObjectInfo{}, b.wrap("get", name, err)
	}
	return rc, info, nil
}

// GetWithETag implements registry.Bucket.
func (b *Bucket) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	rc, info, err := b.get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", b.wrap("get", name, err)
	}
	return data, info.ETag, nil
}

// Attributes implements registry.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (registry.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return registry.Attributes{}, err
	}
	key, err := b.key(name)
	if err != nil {
		return registry.Attributes{}, err
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return registry.Attributes{}, b.wrap("stat", name, err)
	}
	return registry.Attributes{Size: info.Size, ETag: info.ETag, LastModified: info.LastModified}, nil
}

// Upload implements registry.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	size := int64(-1)
	if br, ok := r.(*bytes.Reader); ok {
		size = int64(br.Len())
	}
	if _, err := b.client.PutObject(ctx, b.cfg.Bucket, key, r, size, minio.PutObjectOptions{PartSize: 16 << 20}); err != nil {
		return b.wrap("upload", name, err)
	}
	return nil
}

// PutIf implements registry.Bucket.
func (b *Bucket) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	key, err := b.key(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	var opts minio.PutObjectOptions
	if ifMatch == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(ifMatch)
	}
	info, err := b.client.PutObject(ctx, b.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		werr := b.wrap("conditional put", name, err)
		if errors.Is(werr, registry.ErrNotFound) { // If-Match on an absent object
			return "", fmt.Errorf("update %s: object is gone: %w", name, registry.ErrConflict)
		}
		return "", werr
	}
	return info.ETag, nil
}

// Delete implements registry.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	if err := b.client.RemoveObject(ctx, b.cfg.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if werr := b.wrap("delete", name, err); errors.Is(werr, registry.ErrNotFound) {
			return nil
		} else {
			return werr
		}
	}
	return nil
}

// List implements registry.Bucket.
func (b *Bucket) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := registry.ValidateDir(dir); err != nil {
		return nil, err
	}
	var out []string
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.cfg.Prefix + dir, Recursive: recursive}) {
		if obj.Err != nil {
			return nil, b.wrap("list", dir, obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, b.cfg.Prefix)
		if name == dir || name == "" {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// Name implements registry.Bucket.
func (b *Bucket) Name() string {
	return fmt.Sprintf("s3:%s/%s/%s", b.cfg.Endpoint, b.cfg.Bucket, b.cfg.Prefix)
}

// Close implements registry.Bucket.
func (b *Bucket) Close() error { return nil }
