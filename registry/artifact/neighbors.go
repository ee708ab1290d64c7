package artifact

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/promoai/promo/registry"
)

// NeighborsBlob holds an item model's neighbour lists (itemsim/v2) in a
// fixed binary layout, beside the JSON blob with the rest of the model.
// A large catalogue keeps tens of millions of neighbours: as JSON they
// took most of a load's time and memory, where this layout decodes with
// one allocation and no parsing.
//
// Layout, little-endian: the magic "PNB1"; the item count n (uint32);
// n+1 offsets (uint64, the first 0, non-decreasing, the last the total);
// then every neighbour's item index (int32) and every weight (float32),
// item after item, each list strongest first.
const NeighborsBlob = "neighbors.bin"

var neighborsMagic = [4]byte{'P', 'N', 'B', '1'}

func encodeNeighbors(lists [][]Neighbor) []byte {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	n := len(lists)
	out := make([]byte, 0, 8+8*(n+1)+8*total)
	out = append(out, neighborsMagic[:]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	off := uint64(0)
	out = binary.LittleEndian.AppendUint64(out, off)
	for _, l := range lists {
		off += uint64(len(l))
		out = binary.LittleEndian.AppendUint64(out, off)
	}
	for _, l := range lists {
		for _, nb := range l {
			out = binary.LittleEndian.AppendUint32(out, uint32(nb.Item))
		}
	}
	for _, l := range lists {
		for _, nb := range l {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(nb.Weight))
		}
	}
	return out
}

// decodeNeighbors reads the lists of n items. Every list shares one
// backing array, so the model is one allocation the collector never scans.
func decodeNeighbors(data []byte, n int) ([][]Neighbor, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", registry.ErrCorrupt, NeighborsBlob, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 || [4]byte(data[:4]) != neighborsMagic {
		return nil, bad("not a neighbour table")
	}
	if got := int(binary.LittleEndian.Uint32(data[4:8])); got != n {
		return nil, bad("%d lists for %d items", got, n)
	}
	data = data[8:]
	if len(data) < 8*(n+1) {
		return nil, bad("truncated offsets")
	}
	offsets, body := data[:8*(n+1)], data[8*(n+1):]
	total := binary.LittleEndian.Uint64(offsets[8*n:])
	if binary.LittleEndian.Uint64(offsets) != 0 || total > uint64(len(body))/8 || uint64(len(body)) != 8*total {
		return nil, bad("%d bytes of neighbours where the offsets say %d neighbours", len(body), total)
	}
	all := make([]Neighbor, total)
	items, weights := body[:4*total], body[4*total:]
	for j := range all {
		all[j] = Neighbor{Item: int32(binary.LittleEndian.Uint32(items[4*j:])), Weight: math.Float32frombits(binary.LittleEndian.Uint32(weights[4*j:]))}
	}
	lists := make([][]Neighbor, n)
	prev := uint64(0)
	for i := range lists {
		next := binary.LittleEndian.Uint64(offsets[8*(i+1):])
		if next < prev || next > total {
			return nil, bad("offset %d of item %d out of order", next, i)
		}
		if next > prev {
			lists[i] = all[prev:next:next]
		}
		prev = next
	}
	return lists, nil
}
