// Package parallel spreads independent pieces of work over all cores.
//
// The trainer's heavy loops (item similarities, split searches, QR
// blocks, ranking held-out users) share one shape: n independent indices,
// each worker with scratch space of its own that it reuses from index to
// index. For runs that shape once, so each loop states only its work.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls work(i) for every i in [0, n), on GOMAXPROCS goroutines at
// most, and returns when all calls have returned. Each goroutine calls
// newWorker once and uses the function it returns for every index it
// takes, so scratch space allocated there is reused, never shared. The
// goroutines take indices in runs of chunk (1 when chunk < 1): larger
// runs cost less coordination, smaller ones balance uneven work better.
// Which goroutine gets which index is not fixed; a loop whose result must
// not depend on the scheduling writes each index's result to its own slot.
func For(n, chunk int, newWorker func() func(i int)) {
	if n <= 0 {
		return
	}
	chunk = max(chunk, 1)
	workers := min(runtime.GOMAXPROCS(0), (n+chunk-1)/chunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work := newWorker()
			for {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					work(i)
				}
			}
		}()
	}
	wg.Wait()
}

// Each is For for work that needs no scratch space.
func Each(n, chunk int, work func(i int)) {
	For(n, chunk, func() func(int) { return work })
}
