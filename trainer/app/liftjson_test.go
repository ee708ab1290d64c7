package app

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/report"
)

// An arm whose control converted nobody has no relative change: the key
// is still written, as null, next to the figures that are defined.
func TestLiftJSONKeepsUndefinedFiguresAsNull(t *testing.T) {
	l := eval.Lift{NTreated: 10, NControl: 10, Treated: 0.2, Control: 0, Diff: 0.2, SE: math.NaN(), CI: eval.Interval{Lo: math.NaN(), Hi: math.Inf(1)}}
	var out bytes.Buffer
	if err := report.WriteJSON(&out, liftJSON(l)); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"relative", "se", "ci_lo", "ci_hi"} {
		if v, ok := got[k]; !ok || v != nil {
			t.Errorf("%s: %v (present %v), want null", k, v, ok)
		}
	}
	if got["lift"] != 0.2 || got["n_treated"] != 10.0 || got["control"] != 0.0 {
		t.Errorf("defined figures: %s", out.String())
	}
}
