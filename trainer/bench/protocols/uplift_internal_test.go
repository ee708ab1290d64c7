package protocols

import (
	"fmt"
	"math"
	"testing"
)

func TestHideUsersGivesTheOthersAverage(t *testing.T) {
	truth := map[string]map[string]float64{
		"a":   {"gift": 0.2, "pct": 0.1},
		"b":   {"gift": 0.0, "pct": 0.3},
		"dog": {"gift": -0.08, "pct": -0.08},
	}
	got := hideUsers(truth, map[string]bool{"dog": true})
	if fmt.Sprint(got["dog"]) != fmt.Sprint(map[string]float64{"gift": 0.1, "pct": 0.2}) {
		t.Fatalf("hidden user gets %v, want the others' average", got["dog"])
	}
	if fmt.Sprint(got["a"]) != fmt.Sprint(truth["a"]) || fmt.Sprint(got["b"]) != fmt.Sprint(truth["b"]) {
		t.Fatalf("visible users changed: %v", got)
	}
}

func TestMixByTraceUsesTheHiddenShareOfEachBin(t *testing.T) {
	truth := map[string]map[string]float64{
		"a": {"gift": 0.2}, "b": {"gift": 0.4}, "c": {"gift": 0.1}, "d": {"gift": 0.3},
		"dog1": {"gift": -0.1}, "dog2": {"gift": -0.1},
	}
	hidden := map[string]bool{"dog1": true, "dog2": true}
	partial := hideUsers(truth, hidden) // dogs get the others' average, 0.25
	// Two bins of three, each with one dog in three: {a, dog1, b} and
	// {c, d, dog2}.
	trace := map[string]float64{"a": 0, "dog1": 1, "b": 2, "c": 3, "d": 4, "dog2": 4}
	got := mixByTrace(truth, partial, hidden, trace, 2)
	want := map[string]float64{
		"a": 0.2*2/3 - 0.1/3, "dog1": 0.25*2/3 - 0.1/3, "b": 0.4*2/3 - 0.1/3,
		"c": 0.1*2/3 - 0.1/3, "d": 0.3*2/3 - 0.1/3, "dog2": 0.25*2/3 - 0.1/3,
	}
	for id, w := range want {
		if g := got[id]["gift"]; math.Abs(g-w) > 1e-12 {
			t.Errorf("%s: %v, want %v", id, g, w)
		}
	}
	// Ties stay together even when that makes a bin larger.
	trace = map[string]float64{"a": 0, "b": 0, "c": 0, "d": 0, "dog1": 1, "dog2": 1}
	got = mixByTrace(truth, partial, hidden, trace, 3)
	if g := got["a"]["gift"]; g != 0.2 {
		t.Errorf("a shares a bin with no dog, got %v, want its own effect 0.2", g)
	}
	if g := got["dog1"]["gift"]; g != -0.1 {
		t.Errorf("dog1 shares a bin with dogs only, got %v, want the dogs' effect -0.1", g)
	}
}
