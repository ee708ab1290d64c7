package protocols

import (
	"fmt"
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
