package s3_test

import (
	"context"
	"errors"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/s3"
	"github.com/promoai/promo/registry/s3server"
	"github.com/promoai/promo/registry/storetest"
)

func newBucket(t *testing.T, srv *s3server.Server, prefix string) *s3.Bucket {
	t.Helper()
	b, err := s3.New(context.Background(), s3.Config{
		Endpoint: srv.Endpoint, Bucket: srv.NewBucketName(), Prefix: prefix, Insecure: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true,
	})
	if err != nil {
		t.Fatalf("connect to the S3 test server: %v", err)
	}
	return b
}

// TestAcceptance runs the conformance suite against a real S3-compatible
// server started on 127.0.0.1.
func TestAcceptance(t *testing.T) {
	srv := s3server.Start(t)
	t.Run("no prefix", func(t *testing.T) { storetest.AcceptanceTest(t, newBucket(t, srv, "")) })
	t.Run("with prefix", func(t *testing.T) { storetest.AcceptanceTest(t, newBucket(t, srv, "tenant-a/registry")) })
}

func TestWrongCredentials(t *testing.T) {
	srv := s3server.Start(t)
	_, err := s3.New(context.Background(), s3.Config{
		Endpoint: srv.Endpoint, Bucket: "any", Insecure: true, AccessKey: srv.AccessKey, SecretKey: "wrong-secret",
	})
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable for wrong credentials, got %v", err)
	}
	t.Log(err)
}

func TestMissingBucket(t *testing.T) {
	srv := s3server.Start(t)
	_, err := s3.New(context.Background(), s3.Config{
		Endpoint: srv.Endpoint, Bucket: "does-not-exist", Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	})
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("want ErrNotFound for a missing bucket, got %v", err)
	}
}
