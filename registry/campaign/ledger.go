package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/promoai/promo/registry"
)

// SpendDir holds the campaigns' spend ledger: one object per campaign and
// server replica, campaigns-spend/ID/REPLICA.json, written only by that
// replica, so replicas never contend for a write.
const SpendDir = "campaigns-spend/"

// ReplicaSpend is one replica's spend on one campaign: the expected cost
// of the offers it made, in total and per UTC day.
type ReplicaSpend struct {
	Replica string             `json:"replica"`
	Total   float64            `json:"total"`
	Days    map[string]float64 `json:"days"` // "2006-01-02" -> spend
	// UpdatedAt is when it was written: replicas write theirs at every
	// check, so a recent one is a replica that is spending.
	UpdatedAt time.Time `json:"updated_at"`
	// FairnessGivenUp is the value its fairness guard's offers gave up
	// (campaign.Guard.GivenUp).
	FairnessGivenUp float64 `json:"fairness_given_up,omitempty"`
}

// DayKey names t's UTC day in ReplicaSpend.Days.
func DayKey(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func spendPath(id, replica string) string { return SpendDir + id + "/" + replica + ".json" }

// WriteSpend stores a replica's spend on campaign id.
func WriteSpend(ctx context.Context, b registry.Bucket, id string, s ReplicaSpend) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return registry.UploadBytes(ctx, b, spendPath(id, s.Replica), data)
}

// ReadSpend returns every replica's spend on campaign id.
func ReadSpend(ctx context.Context, b registry.Bucket, id string) ([]ReplicaSpend, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := SpendDir + id + "/"
	names, err := b.List(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	var out []ReplicaSpend
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		data, err := registry.ReadAll(ctx, b, n)
		if err != nil {
			return nil, err
		}
		var s ReplicaSpend
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("spend ledger %s: %v: %w", n, err, registry.ErrCorrupt)
		}
		out = append(out, s)
	}
	return out, nil
}
