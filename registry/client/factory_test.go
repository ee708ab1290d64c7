package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/client"
	s3p "github.com/promoai/promo/registry/providers/s3"
)

func ExampleNewBucket() {
	dir, _ := os.MkdirTemp("", "registry")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	bkt, err := client.NewBucket(ctx, client.Config{Type: client.FS, Dir: dir})
	if err != nil {
		panic(err)
	}
	_ = registry.UploadBytes(ctx, bkt, "hello.txt", []byte("hi"))
	data, _ := registry.ReadAll(ctx, bkt, "hello.txt")
	fmt.Println(string(data))
	// Output: hi
}

func TestNewBucketErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  client.Config
		want error
	}{
		{"unknown type", client.Config{Type: "gcs"}, registry.ErrInvalid},
		{"fs without dir", client.Config{Type: client.FS}, registry.ErrInvalid},
		{"s3 without endpoint", client.Config{Type: client.S3}, registry.ErrInvalid},
		{"s3 with scheme", client.Config{Type: client.S3, S3: s3cfg("http://127.0.0.1:9000")}, registry.ErrInvalid},
		{"s3 unreachable", client.Config{Type: client.S3, S3: s3cfg("127.0.0.1:1")}, registry.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.NewBucket(ctx, tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "store.json")
	os.WriteFile(p, []byte(`{"type":"fs","dir":"`+dir+`/reg"}`), 0o644)
	if _, err := client.NewBucket(context.Background(), client.Config{File: p}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte(`{"type":"fs","dri":"typo"}`), 0o644)
	if _, err := client.NewBucket(context.Background(), client.Config{File: p}); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func s3cfg(endpoint string) (c s3p.Config) {
	c.Endpoint, c.Bucket, c.Insecure, c.AccessKey, c.SecretKey = endpoint, "b", true, "k", "s"
	return c
}
