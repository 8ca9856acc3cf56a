package trainstep

import (
	"math"

	"xlc/ir"
)

// LearningRate returns the learning rate (f32[]) at step (an integer or
// float scalar, 0-based), computed in f32. The first cfg.Warmup steps
// (default 0: none) ramp up linearly, lr·(step+1)/warmup, reaching cfg.LR
// (default 3e-4) at step warmup−1. From step warmup on, cfg.Schedule
// (default constant) applies with progress
// p = clamp((step − warmup)/max(1, steps − warmup), 0, 1), where steps is
// cfg.Steps (default 1000) and min = cfg.MinLRRatio·LR (default ratio 0.1):
// constant gives LR; cosine gives min + (LR − min)·(1 + cos(π·p))/2; linear
// gives LR − (LR − min)·p. Both reach min at step steps and stay there
// (clamped) after it. An unknown schedule is recorded as the builder's error.
func LearningRate(b *ir.Builder, cfg *Config, step *ir.Value) *ir.Value {
	g := optGraph{b}
	s := g.f32(step)
	lr, lo := cfg.LR, cfg.MinLRRatio*cfg.LR
	w := float64(cfg.Warmup)
	var rate *ir.Value
	switch cfg.Schedule {
	case "", "constant":
		rate = g.c(lr)
	case "cosine", "linear":
		span := float64(max(1, cfg.Steps-cfg.Warmup))
		p := g.div(g.sub(s, g.c(w)), g.c(span))
		p = g.min(g.max(p, g.c(0)), g.c(1))
		if cfg.Schedule == "cosine" {
			cos := b.Unary(ir.OpCos, g.mul(g.c(math.Pi), p))
			rate = g.add(g.c(lo), g.mul(g.c((lr-lo)/2), g.add(g.c(1), cos)))
		} else {
			rate = g.sub(g.c(lr), g.mul(g.c(lr-lo), p))
		}
	default:
		b.Fail("schedule: unknown schedule %q (known: constant, cosine, linear)", cfg.Schedule)
		return g.c(lr)
	}
	if cfg.Warmup > 0 {
		warm := g.div(g.mul(g.c(lr), g.add(s, g.c(1))), g.c(w))
		rate = g.sel(b.Binary(ir.OpLt, s, g.c(w)), warm, rate)
	}
	return rate
}
