package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/promoai/promo/trainer/bench"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := bench.Main(context.Background(), args, bench.Env{}, &out, &errOut); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// A served period under an hour or longer than the horizon is refused
// with the flag's name before any work.
func TestServedPeriodFlag(t *testing.T) {
	for _, every := range []string{"1m", "1000h"} {
		var out, errOut bytes.Buffer
		err := bench.Main(context.Background(), []string{"uplift", "-size", "tiny", "-served.every", every}, bench.Env{}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "-served.every") {
			t.Errorf("-served.every %s: %v", every, err)
		}
	}
}

// On the tiny shop some uplift figures are not numbers (no sleeping dog
// among the users the trace is read for): the JSON output says null for
// them rather than failing.
func TestUpliftJSONWithUndefinedFigures(t *testing.T) {
	out := run(t, "uplift", "-size", "tiny", "-served.every", "0", "-json")
	var r struct {
		Arms           []struct{ Arm string }
		SleepingDogAUC *float64
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(r.Arms) != 4 || r.SleepingDogAUC != nil {
		t.Fatalf("%d arms, sleeping-dog AUC %v", len(r.Arms), r.SleepingDogAUC)
	}
}

// Over several shops, every figure of the mean line is the mean of the
// shops' lines (to their printed rounding), NaN where a shop's is,
// including those of the model fitted on probabilities.
func TestUpliftShopsMeanLine(t *testing.T) {
	out := run(t, "uplift", "-size", "tiny", "-shops", "2", "-served.every", "24h", "-on-probabilities")
	number := regexp.MustCompile(`-?\d+\.\d+|NaN`)
	figures := func(prefix string) []float64 {
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				var fs []float64
				for _, m := range number.FindAllString(rest, -1) {
					f, err := strconv.ParseFloat(m, 64)
					if err != nil {
						t.Fatal(err)
					}
					fs = append(fs, f)
				}
				return fs
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, out)
		return nil
	}
	a, b, mean := figures("seed 1: "), figures("seed 2: "), figures("mean over 2 shops: ")
	if !strings.Contains(out, "fitted on the sessions' probabilities instead of outcomes: model / truth") {
		t.Errorf("no figures of the model fitted on probabilities in\n%s", out)
	}
	if len(a) < 16 || len(a) != len(b) || len(a) != len(mean) {
		t.Fatalf("figures: %v, %v, mean %v", a, b, mean)
	}
	for i := range mean {
		want := (a[i] + b[i]) / 2
		if math.IsNaN(want) != math.IsNaN(mean[i]) || math.Abs(want-mean[i]) > 0.006 {
			t.Errorf("figure %d: mean %v of %v and %v", i, mean[i], a[i], b[i])
		}
	}
}
