package runtime

import (
	"slices"
	"time"

	"xlc/ir"
)

// BenchResult is the speed of a train step on a backend.
type BenchResult struct {
	Steps         int
	Median        float64 // the median step's seconds
	TokensPerStep int
}

// TokensPerSec is the throughput of the median step, the statistic
// bench/run.sh's peers report too.
func (r BenchResult) TokensPerSec() float64 {
	return float64(r.TokensPerStep) / r.Median
}

// Bench loads step on be, runs warmup untimed steps and then steps timed
// ones, feeding the state back as Train does (kept in the executable when it
// can) (batches from d, seed 1). It measures the step alone: no validation,
// metrics or checkpoints.
func Bench(be Backend, step *ir.Func, d *Dataset, warmup, steps int) (BenchResult, error) {
	exe, err := be.Load(step)
	if err != nil {
		return BenchResult{}, err
	}
	defer closeExe(exe)
	state, err := FreshState(step, 1)
	if err != nil {
		return BenchResult{}, err
	}
	res := BenchResult{Steps: steps}
	if tok := step.Param("tokens"); tok != nil {
		res.TokensPerStep = tok.Type.Shape.NumElements()
	}
	st := NewStepper(exe, step, state, true)
	run := func(s int64) error {
		_, err := st.Step(d, 1, s)
		return err
	}
	for s := 0; s < warmup; s++ {
		if err := run(int64(s)); err != nil {
			return res, err
		}
	}
	times := make([]float64, steps)
	for s := range times {
		t0 := time.Now()
		if err := run(int64(warmup + s)); err != nil {
			return res, err
		}
		times[s] = time.Since(t0).Seconds()
	}
	slices.Sort(times)
	if n := len(times); n > 0 {
		res.Median = (times[(n-1)/2] + times[n/2]) / 2
	}
	return res, nil
}
