package eventlog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"os"
	"strings"
)

// Pseudonymizer replaces user ids with keyed hashes, so that the event log,
// training data and models never hold the ids a shop uses. The same key
// must be configured wherever ids enter (Ingest, imports, serving lookups);
// without the key a pseudonym cannot be linked back to a person.
type Pseudonymizer struct {
	key []byte
}

// NewPseudonymizer returns nil (ids unchanged) for an empty key.
func NewPseudonymizer(key []byte) *Pseudonymizer {
	if len(key) == 0 {
		return nil
	}
	return &Pseudonymizer{key: key}
}

// LoadPseudonymizer reads the key from a file, or else takes key (from
// the environment, say); with neither, ids are kept as they are.
func LoadPseudonymizer(file, key string) (*Pseudonymizer, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("pseudonymization key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key != "" && len(key) < 16 {
		return nil, fmt.Errorf("pseudonymization key must be at least 16 characters")
	}
	return NewPseudonymizer([]byte(key)), nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ID returns the pseudonym of a user id ("" stays "").
func (p *Pseudonymizer) ID(id string) string {
	if p == nil || id == "" {
		return id
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(id))
	return "p_" + strings.ToLower(b32.EncodeToString(m.Sum(nil))[:26])
}

// Apply pseudonymizes an event's user id in place.
func (p *Pseudonymizer) Apply(e *Event) {
	e.User = p.ID(e.User)
}
