package cpu

import (
	"errors"
	goruntime "runtime"
	"sync"
	"testing"

	"xlc/runtime/interp"
)

// TestRunAllConcurrent runs two executables of a function whose kernels
// go to the pool (runAll) from two goroutines at once, and one of them
// again with GOMAXPROCS 1 (every kernel on the calling thread): every
// run's results are the first run's, bit for bit.
func TestRunAllConcurrent(t *testing.T) {
	needLLVM(t)
	f := parseFunc(t, "%x: f32[256,512], %y: f32[512,256]", `
  %0 = dot %x, %y {batch=[[],[]], contract=[[1],[0]]} : f32[256,256]
  %1 = tanh %0 : f32[256,256]
  %2 = reduce_sum %1 {axes=[1]} : f32[256]`)
	args := randomArgs(f, 1, -1, 1)
	exes := []*Executable{load(t, f), load(t, f)}
	want, err := exes[0].Run(args)
	if err != nil {
		t.Fatal(err)
	}
	if exes[0].launches()[0].parts < 2 && goruntime.GOMAXPROCS(0) > 1 {
		t.Fatalf("the dot runs in %d part: the test needs the pool", exes[0].launches()[0].parts)
	}
	same := func(got []*interp.Tensor) bool {
		for i := range want {
			for j, w := range want[i].F {
				if got[i].F[j] != w {
					return false
				}
			}
		}
		return true
	}
	var wg sync.WaitGroup
	errs := make([]error, len(exes))
	for k, e := range exes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got, err := e.Run(args)
				if err == nil && !same(got) {
					err = errors.New("results differ from the first run's")
				}
				if err != nil {
					errs[k] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Errorf("executable %d: %v", k, err)
		}
	}
	old := goruntime.GOMAXPROCS(1)
	defer goruntime.GOMAXPROCS(old)
	got, err := exes[1].Run(args)
	if err != nil || !same(got) {
		t.Errorf("GOMAXPROCS 1: err %v, same results %v", err, err == nil && same(got))
	}
}
