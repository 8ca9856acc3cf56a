package trainstep

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"xlc/internal/suggest"
)

// Config is the train section of a model after command-line overrides.
// Every field has a documented default (see DefaultConfig) and a key of
// the same name in snake case (Optimizer: optimizer, WeightDecay: weight_decay).
type Config struct {
	// Optimizer is sgd, adamw, eg (EG± on every parameter; plain EG on those
	// matching EGNonneg), eg_adaptive (Amid et al. 2022, simplified per-coordinate
	// step sizes) or eg_adam (the paper's global scale and per-coordinate
	// gains by EG on top of Adam).
	Optimizer string
	// LR is the peak learning rate.
	LR float64
	// WeightDecay is decoupled (AdamW-style) decay, applied to parameters of
	// rank >= 2 only unless DecayAll; norms' gains and biases skip it.
	WeightDecay float64
	DecayAll    bool
	// Beta1, Beta2 and Eps are Adam's; Momentum and Nesterov are SGD's.
	Beta1, Beta2, Eps float64
	Momentum          float64
	Nesterov          bool
	// Clip is the global gradient-norm bound; 0 turns clipping off.
	Clip float64
	// Schedule is constant, cosine or linear (decay to MinLRRatio·LR at
	// Steps), after a linear warmup of Warmup steps.
	Schedule   string
	Warmup     int
	Steps      int
	MinLRRatio float64
	// EGGamma is the meta learning rate γ of eg_adaptive and eg_adam; 0
	// means auto: measured on the first update's gradient so that the EG
	// exponents start near 0.01, then frozen (details at buildEGAdaptive
	// and buildEGAdam).
	EGGamma float64
	// EGNonneg is a regexp of parameter names updated by plain EG (they must
	// stay positive); the rest use EG± when Optimizer is eg.
	EGNonneg string
	// Losses names the outputs that are task losses, in task order; empty
	// means every output whose name ends in "loss".
	Losses []string
	// Combiner is sum, initial, realtime, gradnorm, minnorm or main_aux.
	Combiner string
	// Weights are the fixed task weights of sum (default all 1).
	Weights []float64
	// CombineOn, when set, names a tap H (a shared representation such as
	// the encoder output): the combiner's task weights come from the
	// gradients with respect to H instead of all parameters, then one
	// backward pass of Σ w_i·L_i gives the update. Cheaper (n short backward
	// passes to H plus one full one) but approximate: for minnorm,
	// ‖Σ α_i ∇_θ L_i‖ ≤ ‖∂H/∂θ‖·‖Σ α_i ∇_H L_i‖, so it minimises an upper
	// bound of the full objective (MGDA-UB), not the objective itself.
	CombineOn string
	// FWIters is the number of Frank–Wolfe iterations of minnorm (n > 2) and
	// of coordinate sweeps of main_aux (n > 1 auxiliary tasks).
	FWIters int
	// InputPenalty ε adds (ε/2)·‖∇_x L‖² for the value tapped as
	// InputPenaltyOn; ParamPenalty λ adds (λ/2)·‖∇_θ L‖².
	InputPenalty   float64
	InputPenaltyOn string
	ParamPenalty   float64
	// LossScale is none, static (ScaleInit, never changed, no skipping) or
	// dynamic (start ScaleInit, ×2 after ScaleInterval finite steps, ÷2 and
	// skip the update on a non-finite gradient).
	LossScale     string
	ScaleInit     float64
	ScaleInterval int
	// Precision is f32, bf16 or f16: the type the matmuls read their
	// operands in (passes' precision pass; sums, parameters and the rest
	// stay f32). f16 needs loss scaling: with loss_scale none it is dynamic.
	Precision string
	// Remat is attention (the backward recomputes attention's
	// probabilities where a backend fuses attention), activations (it also
	// recomputes large activations, a GELU's or a norm's output, from what
	// it keeps anyway: less memory for a few percent of speed) or auto (the
	// default: activations when Precision is bf16 or f16, whose point is
	// memory as much as speed, else attention). RematActivations resolves it.
	Remat string
	// NaNPatience stops a run whose loss has not been finite for that many
	// steps in a row (a step dynamic loss scaling skipped with the scale
	// above 1 does not count); 0 never stops. The trainer applies it.
	NaNPatience int
}

// DefaultConfig returns the defaults: AdamW, lr 3e-4, β = (0.9, 0.999),
// ε = 1e-8, weight decay 0.01, SGD momentum 0, clip 1.0, constant schedule
// with no warmup over 1000 steps, min_lr_ratio 0.1, combiner sum, 20
// Frank–Wolfe iterations, no penalties, no loss scaling (scale_init 2^15 and
// scale_interval 2000 apply once loss_scale is set), nan_patience 20,
// precision f32, remat auto.
func DefaultConfig() Config {
	return Config{
		Optimizer: "adamw", LR: 3e-4, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		Clip: 1.0, Schedule: "constant", Steps: 1000, MinLRRatio: 0.1,
		Combiner: "sum", FWIters: 20, LossScale: "none", ScaleInit: 32768, ScaleInterval: 2000,
		NaNPatience: 20, Precision: "f32", Remat: "auto",
	}
}

// Set assigns one setting by key. Values are int64, float64, bool, string
// or []any (lists), as the parser produces them.
func (c *Config) Set(key string, v any) error {
	bad := func(want string) error { return fmt.Errorf("train setting %s: want %s, have %v", key, want, v) }
	num := func(dst *float64) error {
		switch x := v.(type) {
		case int64:
			*dst = float64(x)
		case float64:
			*dst = x
		default:
			return bad("a number")
		}
		return nil
	}
	// ranged checks a number against a range whose bounds are open or
	// closed, as want describes it.
	ranged := func(dst *float64, ok func(float64) bool, want string) error {
		var x float64
		if err := num(&x); err != nil {
			return err
		}
		if !ok(x) || math.IsNaN(x) || math.IsInf(x, 0) {
			return bad(want)
		}
		*dst = x
		return nil
	}
	nonNeg := func(dst *float64) error { return ranged(dst, func(x float64) bool { return x >= 0 }, "a number >= 0") }
	positive := func(dst *float64) error { return ranged(dst, func(x float64) bool { return x > 0 }, "a number > 0") }
	unit := func(dst *float64) error {
		return ranged(dst, func(x float64) bool { return x >= 0 && x < 1 }, "a number in [0, 1)")
	}
	integer := func(dst *int, least int) error {
		x, ok := v.(int64)
		if !ok || x < int64(least) || x > math.MaxInt32 {
			return bad(fmt.Sprintf("an integer >= %d", least))
		}
		*dst = int(x)
		return nil
	}
	str := func(dst *string, allowed ...string) error {
		s, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		if len(allowed) > 0 && !contains(allowed, s) {
			return bad("one of " + strings.Join(allowed, ", "))
		}
		*dst = s
		return nil
	}
	boolean := func(dst *bool) error {
		b, ok := v.(bool)
		if !ok {
			return bad("true or false")
		}
		*dst = b
		return nil
	}
	switch key {
	case "optimizer":
		return str(&c.Optimizer, "sgd", "adamw", "eg", "eg_adaptive", "eg_adam")
	case "lr":
		return nonNeg(&c.LR)
	case "weight_decay":
		return nonNeg(&c.WeightDecay)
	case "decay_all":
		return boolean(&c.DecayAll)
	case "beta1":
		return unit(&c.Beta1)
	case "beta2":
		return unit(&c.Beta2)
	case "eps":
		return positive(&c.Eps)
	case "momentum":
		return unit(&c.Momentum)
	case "nesterov":
		return boolean(&c.Nesterov)
	case "clip":
		return nonNeg(&c.Clip)
	case "schedule":
		return str(&c.Schedule, "constant", "cosine", "linear")
	case "warmup":
		return integer(&c.Warmup, 0)
	case "steps":
		return integer(&c.Steps, 1)
	case "min_lr_ratio":
		return ranged(&c.MinLRRatio, func(x float64) bool { return x >= 0 && x <= 1 }, "a number in [0, 1]")
	case "eg_gamma":
		return nonNeg(&c.EGGamma)
	case "eg_nonneg":
		return str(&c.EGNonneg)
	case "losses":
		switch x := v.(type) {
		case string:
			c.Losses = strings.FieldsFunc(x, func(r rune) bool { return r == ',' || r == ' ' })
		case []any:
			c.Losses = nil
			for _, it := range x {
				s, ok := it.(string)
				if !ok {
					return bad("a list of output names")
				}
				c.Losses = append(c.Losses, s)
			}
		default:
			return bad("a list of output names")
		}
		for i, n := range c.Losses {
			if contains(c.Losses[:i], n) {
				return bad("distinct output names (" + n + " is listed twice)")
			}
		}
		return nil
	case "combiner":
		return str(&c.Combiner, "sum", "initial", "realtime", "gradnorm", "minnorm", "main_aux")
	case "weights":
		l, ok := v.([]any)
		if !ok {
			return bad("a list of numbers")
		}
		c.Weights = nil
		for _, it := range l {
			switch x := it.(type) {
			case int64:
				c.Weights = append(c.Weights, float64(x))
			case float64:
				c.Weights = append(c.Weights, x)
			default:
				return bad("a list of numbers")
			}
		}
		return nil
	case "combine_on":
		return str(&c.CombineOn)
	case "fw_iters":
		return integer(&c.FWIters, 1)
	case "input_penalty":
		return nonNeg(&c.InputPenalty)
	case "input_penalty_on":
		return str(&c.InputPenaltyOn)
	case "param_penalty":
		return nonNeg(&c.ParamPenalty)
	case "loss_scale":
		return str(&c.LossScale, "none", "static", "dynamic")
	case "scale_init":
		return positive(&c.ScaleInit)
	case "scale_interval":
		return integer(&c.ScaleInterval, 1)
	case "nan_patience":
		return integer(&c.NaNPatience, 0)
	case "precision":
		return str(&c.Precision, "f32", "bf16", "f16")
	case "remat":
		return str(&c.Remat, "auto", "attention", "activations")
	}
	if h := suggest.Hint(key, ConfigKeys()); h != "" {
		return fmt.Errorf("unknown train setting %s%s", key, h)
	}
	return fmt.Errorf("unknown train setting %s (known: %s)", key, strings.Join(ConfigKeys(), ", "))
}

// RematActivations reports whether the step recomputes large activations:
// remat activations, or auto with a half precision.
func (c *Config) RematActivations() bool {
	return c.Remat == "activations" || c.Remat == "auto" && c.Precision != "f32"
}

// ConfigKeys lists every train setting's key.
func ConfigKeys() []string {
	keys := []string{"optimizer", "lr", "weight_decay", "decay_all", "beta1", "beta2", "eps", "momentum",
		"nesterov", "clip", "schedule", "warmup", "steps", "min_lr_ratio", "eg_gamma", "eg_nonneg", "losses",
		"combiner", "weights", "combine_on", "fw_iters", "input_penalty", "input_penalty_on", "param_penalty", "loss_scale",
		"scale_init", "scale_interval", "nan_patience", "precision", "remat"}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
