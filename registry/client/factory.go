// Package client builds a registry.Bucket from a small {type, config}
// description, so binaries choose their storage from flags or a file
// without knowing the backends.
package client

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/fs"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/registry/providers/s3"
)

// Backend types.
const (
	FS    = "fs"
	InMem = "inmem"
	S3    = "s3"
)

// Config selects and configures a backend.
type Config struct {
	Type string    `json:"type"` // fs (default), inmem or s3
	Dir  string    `json:"dir"`  // fs: root directory
	S3   s3.Config `json:"s3"`
	// File, when set, is a JSON document with the same fields that is read
	// first; flags given explicitly still win.
	File string `json:"-"`
}

// RegisterFlags registers the storage flags under prefix (e.g. "store.").
func (c *Config) RegisterFlags(fset *flag.FlagSet, prefix string) {
	if c.Type == "" {
		c.Type = FS
	}
	fset.StringVar(&c.Type, prefix+"type", c.Type, "storage backend: fs, s3 or inmem")
	fset.StringVar(&c.Dir, prefix+"dir", c.Dir, "fs backend: root directory of the registry")
	fset.StringVar(&c.File, prefix+"config-file", c.File, "JSON file with the storage config ({\"type\":\"s3\",\"s3\":{...}})")
	c.S3.RegisterFlags(fset, prefix+"s3.")
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	if c.Type == "" {
		c.Type = FS
	}
	switch c.Type {
	case FS:
		if c.Dir == "" {
			return fmt.Errorf("%w: storage type fs needs a directory (-store.dir)", registry.ErrInvalid)
		}
	case InMem, S3:
	default:
		return fmt.Errorf("%w: unknown storage type %q (want fs, s3 or inmem)", registry.ErrInvalid, c.Type)
	}
	return nil
}

// LoadFile merges the JSON document at path into c, rejecting unknown fields.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("storage config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%w: storage config %s: %v", registry.ErrInvalid, path, err)
	}
	return nil
}

// NewBucket opens the configured backend.
func NewBucket(ctx context.Context, c Config) (registry.Bucket, error) {
	if c.File != "" {
		file := c.File
		c.File = ""
		if err := c.LoadFile(file); err != nil {
			return nil, err
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Type {
	case InMem:
		return inmem.New(), nil
	case S3:
		return s3.New(ctx, c.S3)
	default:
		return fs.New(c.Dir)
	}
}
