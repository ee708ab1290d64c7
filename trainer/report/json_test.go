package report_test

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/promoai/promo/trainer/report"
)

func TestWriteJSONTurnsNonFiniteNumbersToNull(t *testing.T) {
	type inner struct{ Lo, Hi float64 }
	v := struct {
		AUC     float64
		Ratio   float32 `json:"ratio,omitempty"`
		Skip    string  `json:"-"`
		hidden  int
		Arms    []inner
		Metrics map[string]float64
		At      time.Time
		None    *inner
		Any     any
	}{AUC: math.NaN(), Ratio: float32(math.Inf(1)), Skip: "x", hidden: 1,
		Arms: []inner{{0.1, math.Inf(-1)}}, Metrics: map[string]float64{"b": 2, "a": math.NaN()},
		At: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Any: map[string]any{"seed": uint64(7)}}
	var b bytes.Buffer
	if err := report.WriteJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	want := `{"AUC":null,"ratio":null,"Arms":[{"Lo":0.1,"Hi":null}],"Metrics":{"a":null,"b":2},"At":"2026-11-27T00:00:00Z","None":null,"Any":{"seed":7}}` + "\n"
	if b.String() != want {
		t.Fatalf("got  %s\nwant %s", b.String(), want)
	}
	// Finite values come out as encoding/json writes them.
	ok := struct{ X []float64 }{[]float64{1.5, 1e-7}}
	b.Reset()
	if err := report.WriteJSON(&b, ok); err != nil {
		t.Fatal(err)
	}
	std, _ := json.Marshal(ok)
	if b.String() != string(std)+"\n" {
		t.Fatalf("got %s, encoding/json %s", b.String(), std)
	}
}
