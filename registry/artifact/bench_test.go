package artifact_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/promoai/promo/registry/artifact"
)

// BenchmarkItemSimLoad decodes a 100,000-item model with 200 neighbours
// per item in the current layout (lists in their binary blob) and in the
// itemsim/v1 layout (lists in the JSON), and prints each one's size and
// decode time, and their ratio.
//
//	go test -run '^$' -bench ItemSimLoad -benchtime 1x ./artifact/
func BenchmarkItemSimLoad(b *testing.B) {
	const nItems, nNeighbors = 100_000, 200
	r := rand.New(rand.NewPCG(1, 2))
	sim := &artifact.ItemSim{Method: "itemknn-cosine", Items: make([]artifact.Item, nItems), Neighbors: make([][]artifact.Neighbor, nItems), Popularity: make([]float32, nItems)}
	for i := range sim.Items {
		sim.Items[i] = artifact.Item{ID: fmt.Sprintf("sku-%07d", i), Category: fmt.Sprintf("c%d", i%40), Price: float64(r.IntN(20000)) / 100}
		sim.Neighbors[i] = make([]artifact.Neighbor, nNeighbors)
		for k := range sim.Neighbors[i] {
			sim.Neighbors[i][k] = artifact.Neighbor{Item: int32(r.IntN(nItems)), Weight: r.Float32()}
		}
		sim.Popularity[i] = r.Float32()
	}
	current, err := artifact.Encode(sim)
	if err != nil {
		b.Fatal(err)
	}
	blobs := map[string][]byte{}
	size := 0
	for _, bl := range current {
		blobs[bl.Name] = bl.Data
		size += len(bl.Data)
	}
	payload, _ := json.Marshal(map[string]any{"method": sim.Method, "items": sim.Items, "neighbors": sim.Neighbors, "popularity": sim.Popularity})
	env, _ := json.Marshal(map[string]any{"kind": "itemsim/v1", "payload": json.RawMessage(payload)})
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	_, _ = zw.Write(env)
	_ = zw.Close()
	v1 := map[string][]byte{artifact.BlobName: gz.Bytes()}

	load := func(kind string, blobs map[string][]byte) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			if _, err := artifact.Decode(kind, blobs); err != nil {
				b.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	for range b.N {
		tNew := load(artifact.KindItemSim, blobs)
		tOld := load("itemsim/v1", v1)
		b.Logf("\n%d items x %d neighbours (best of 3 decodes)\nlayout                 size       decode\n%-22s %6.1f MiB %8s\n%-22s %6.1f MiB %8s\nbinary / JSON: size %.2f, decode time %.2f",
			nItems, nNeighbors,
			artifact.KindItemSim+" (binary)", float64(size)/(1<<20), tNew.Round(time.Millisecond),
			"itemsim/v1 (JSON)", float64(gz.Len())/(1<<20), tOld.Round(time.Millisecond),
			float64(size)/float64(gz.Len()), tNew.Seconds()/tOld.Seconds())
	}
}
