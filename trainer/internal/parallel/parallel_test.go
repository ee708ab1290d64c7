package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestForCallsEveryIndexOnce(t *testing.T) {
	for _, c := range []struct{ n, chunk int }{{0, 1}, {1, 1}, {7, 3}, {1000, 1}, {1000, 256}, {1000, 0}, {5, 100}} {
		counts := make([]atomic.Int32, c.n)
		var workers atomic.Int32
		For(c.n, c.chunk, func() func(int) {
			workers.Add(1)
			return func(i int) { counts[i].Add(1) }
		})
		for i := range counts {
			if got := counts[i].Load(); got != 1 {
				t.Fatalf("n=%d chunk=%d: index %d called %d times", c.n, c.chunk, i, got)
			}
		}
		if w := int(workers.Load()); w > runtime.GOMAXPROCS(0) || (c.n > 0 && w == 0) {
			t.Errorf("n=%d chunk=%d: %d workers", c.n, c.chunk, w)
		}
	}
}

// A worker's scratch space is its own: no two goroutines use one at once.
func TestForGivesEachWorkerItsOwnScratch(t *testing.T) {
	var mu sync.Mutex
	inUse := map[*int]bool{}
	For(10000, 7, func() func(int) {
		scratch := new(int)
		return func(int) {
			mu.Lock()
			if inUse[scratch] {
				mu.Unlock()
				t.Error("scratch space used by two goroutines at once")
				return
			}
			inUse[scratch] = true
			mu.Unlock()
			*scratch++
			mu.Lock()
			inUse[scratch] = false
			mu.Unlock()
		}
	})
}

func TestEach(t *testing.T) {
	out := make([]int, 100)
	Each(len(out), 8, func(i int) { out[i] = i * i })
	for i, v := range out {
		if v != i*i {
			t.Fatalf("out[%d] = %d", i, v)
		}
	}
}
