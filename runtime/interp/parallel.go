package interp

import (
	"runtime"
	"sync"
)

// minParallelWork is the estimated work (multiply-adds or elements) below
// which parallelFor runs inline: goroutines cost more than they save there.
const minParallelWork = 1 << 15

// parallelFor calls fn on contiguous ranges [lo, hi) that cover [0, n),
// one range per GOMAXPROCS worker, and waits for them all. work estimates
// the total cost; small jobs run on the calling goroutine. Results must not
// depend on how [0, n) is split.
func parallelFor(n, work int, fn func(lo, hi int)) {
	p := runtime.GOMAXPROCS(0)
	if p > n {
		p = n
	}
	if p <= 1 || work < minParallelWork {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < p; w++ {
		lo, hi := n*w/p, n*(w+1)/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
