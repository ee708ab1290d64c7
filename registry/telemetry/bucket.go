package telemetry

import (
	"context"
	"errors"
	"io"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoai/promo/registry"
)

// Bucket traces every storage call of b as a client span ("storage.Get",
// "storage.PutIf", ...) with the bucket and object names. With tracing off
// it returns b itself.
func (t *Tracing) Bucket(b registry.Bucket) registry.Bucket {
	if !t.Enabled() {
		return b
	}
	return &tracedBucket{Bucket: b, tracer: t.Provider.Tracer("github.com/promoai/promo/registry/telemetry")}
}

type tracedBucket struct {
	registry.Bucket
	tracer trace.Tracer
}

func (b *tracedBucket) start(ctx context.Context, op, name string) (context.Context, trace.Span) {
	return b.tracer.Start(ctx, "storage."+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("storage.bucket", b.Bucket.Name()), attribute.String("storage.object", name)))
}

// end records err on the span; an absent object or a lost race is an
// answer, not a failure.
func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, registry.ErrNotFound) && !errors.Is(err, registry.ErrConflict) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (b *tracedBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	ctx, span := b.start(ctx, "Get", name)
	rc, err := b.Bucket.Get(ctx, name)
	end(span, err) // the span covers opening; reading is the caller's time
	return rc, err
}

func (b *tracedBucket) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	ctx, span := b.start(ctx, "GetWithETag", name)
	data, etag, err := b.Bucket.GetWithETag(ctx, name)
	span.SetAttributes(attribute.Int("storage.bytes", len(data)))
	end(span, err)
	return data, etag, err
}

func (b *tracedBucket) Attributes(ctx context.Context, name string) (registry.Attributes, error) {
	ctx, span := b.start(ctx, "Attributes", name)
	a, err := b.Bucket.Attributes(ctx, name)
	end(span, err)
	return a, err
}

func (b *tracedBucket) Upload(ctx context.Context, name string, r io.Reader) error {
	ctx, span := b.start(ctx, "Upload", name)
	err := b.Bucket.Upload(ctx, name, r)
	end(span, err)
	return err
}

func (b *tracedBucket) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	ctx, span := b.start(ctx, "PutIf", name)
	span.SetAttributes(attribute.Int("storage.bytes", len(data)))
	etag, err := b.Bucket.PutIf(ctx, name, data, ifMatch)
	end(span, err)
	return etag, err
}

func (b *tracedBucket) Delete(ctx context.Context, name string) error {
	ctx, span := b.start(ctx, "Delete", name)
	err := b.Bucket.Delete(ctx, name)
	end(span, err)
	return err
}

func (b *tracedBucket) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	ctx, span := b.start(ctx, "List", dir)
	names, err := b.Bucket.List(ctx, dir, recursive)
	span.SetAttributes(attribute.Int("storage.objects", len(names)))
	end(span, err)
	return names, err
}
