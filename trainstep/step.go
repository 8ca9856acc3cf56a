// Package trainstep builds the training step: it turns a model's forward
// function into train_step, which computes each task's loss, its gradients
// by reverse-mode autodiff (Grad, with one rule per op in gradrules.go),
// combines them across tasks, clips them, schedules the learning rate and
// applies the optimizer, with parameters and optimizer state as donated
// parameters of the function.
//
// These are graph builders, not passes: each appends instructions to an
// ir.Func through an ir.Builder. The IR→IR passes that run afterwards live
// in package passes, which does not import this one.
//
// Invariants: Grad appends only differentiable ops, so it applies to its
// own output (the gradient penalties are double backward); Grad refuses a
// fused function, so the step is built before the pipeline; optimizers,
// schedules, clipping and combiners compute in f32 whatever the
// parameters' dtype.
package trainstep

import (
	"fmt"
	"strings"

	"xlc/ir"
)

// Build turns the elaborated forward function f into the whole training
// step, in place, renamed train_step:
//
//	train_step(inputs, params, state, rng_key) -> (losses, metrics, params', state')
//
// It appends, in order: each task loss's gradient penalties (double
// backward), loss scaling, the backward passes (one per task, or with
// cfg.CombineOn per task to that tap and then one of the weighted sum),
// unscaling, the all-finite check, the combiner, clipping, the learning
// rate, the optimizer and the loss-scale update. Afterwards every
// role=param and role=state parameter has a result of its name holding its
// new value (the trainer donates the buffer); the other results are the
// task losses, the model's other outputs and the metrics. taps are the
// values the model names with tap().
func Build(f *ir.Func, taps map[string]*ir.Value, cfg *Config) error {
	b := &ir.Builder{F: f}
	st := NewStateSet(b)
	taskNames, tasks, others, otherNames, err := splitOutputs(f, cfg)
	if err != nil {
		return err
	}
	var params []*ir.Value
	for _, p := range f.Params {
		if p.Role() == "param" {
			params = append(params, p)
			st.Track(p)
		}
	}
	if len(params) == 0 {
		return fmt.Errorf("the model has no parameters to train")
	}
	step := st.Get("step", ir.T(ir.I64), "zeros", 0)
	m := &metrics{}

	// Penalised objectives, one per task.
	objs := make([]*ir.Value, len(tasks))
	for i, l := range tasks {
		if objs[i], err = penalize(f, l, taskNames[i], taps, params, cfg, m); err != nil {
			return err
		}
	}

	// Loss scaling and one backward pass per task.
	var lossScale *ir.Value
	switch cfg.LossScale {
	case "static":
		lossScale = b.Constant(ir.T(ir.F32), cfg.ScaleInit)
	case "dynamic":
		lossScale = st.Get("loss_scale", ir.T(ir.F32), "constant", cfg.ScaleInit)
	}
	// backward is the gradient of obj scaled by the loss scale, unscaled.
	backward := func(obj *ir.Value, wrt []*ir.Value) ([]*ir.Value, error) {
		y := obj
		if lossScale != nil {
			y = b.Binary(ir.OpMul, obj, lossScale)
		}
		g, err := Grad(f, y, wrt)
		if err != nil || lossScale == nil {
			return g, err
		}
		inv := b.Unary(ir.OpRecip, lossScale)
		for j := range g {
			g[j] = b.Binary(ir.OpMul, g[j], b.Broadcast(b.Convert(inv, g[j].Type.DType), g[j].Type.Shape, []int{}))
		}
		return g, nil
	}
	var combined, weights, checked []*ir.Value
	if cfg.CombineOn == "" {
		// One backward pass per task over all parameters, then combine.
		grads := make([][]*ir.Value, len(objs))
		for i, obj := range objs {
			if grads[i], err = backward(obj, params); err != nil {
				return err
			}
			checked = append(checked, grads[i]...)
		}
		if combined, weights, err = Combine(b, st, cfg, step, objs, grads); err != nil {
			return err
		}
		// The combiner's arithmetic (Gram matrices, 1/‖g‖) can overflow too.
		checked = append(checked, combined...)
	} else {
		// The cheaper variant: task weights from the gradients with
		// respect to a shared representation H, then one backward pass of
		// Σ sg(w_i)·L_i over all parameters.
		h := taps[cfg.CombineOn]
		if h == nil {
			return fmt.Errorf("combine_on = %q: the model has no such tap (name a value with tap(\"name\", x))", cfg.CombineOn)
		}
		hgrads := make([][]*ir.Value, len(objs))
		for i, obj := range objs {
			if hgrads[i], err = backward(obj, []*ir.Value{h}); err != nil {
				return err
			}
			checked = append(checked, hgrads[i]...)
		}
		if _, weights, err = Combine(b, st, cfg, step, objs, hgrads); err != nil {
			return err
		}
		if combined, err = backward(weightedSum(b, weights, objs), params); err != nil {
			return err
		}
		checked = append(checked, combined...)
	}

	// One global all-finite reduction: x·0 is 0 for finite x, NaN otherwise.
	var finite *ir.Value
	if cfg.LossScale == "dynamic" {
		total := totalSum(b, len(checked), ir.F32, func(j int) *ir.Value {
			g := checked[j]
			return b.Binary(ir.OpMul, g, b.Broadcast(b.Constant(ir.T(g.Type.DType), 0), g.Type.Shape, []int{}))
		})
		finite = b.Binary(ir.OpEq, total, b.Constant(ir.T(ir.F32), 0))
	}

	if len(tasks) > 1 {
		m.add("objective", weightedSum(b, weights, objs))
		for i, w := range weights {
			m.add("weight."+taskNames[i], w)
		}
	}
	clipped, norm := ClipGlobalNorm(b, combined, cfg.Clip)
	m.add("grad_norm", norm)
	lr := LearningRate(b, cfg, step)
	m.add("lr", lr)
	updated, err := OptimizerUpdate(b, st, cfg, lr, params, clipped)
	if err != nil {
		return err
	}
	for j, p := range params {
		st.Set(p.Name, updated[j])
	}
	if finite != nil {
		// A non-finite gradient leaves every parameter and optimizer state
		// as it was and halves the scale; the step counter, set below,
		// still advances, so the schedule moves on.
		st.Gate(finite)
		skipped := updateScale(b, st, cfg, lossScale, finite)
		m.add("finite", b.Convert(finite, ir.F32))
		m.add("skipped", b.Convert(skipped, ir.F32))
	}
	if lossScale != nil {
		m.add("scale", lossScale)
	}
	st.Set("step", b.Binary(ir.OpAdd, step, b.Constant(ir.T(ir.I64), 1)))

	stateNames, stateVals, err := st.Results()
	if err != nil {
		return err
	}
	// Results: the task losses (cfg.Losses, or the outputs ending in
	// "loss"), the model's other outputs, then the metrics: where they
	// apply input_penalty.<task> and param_penalty.<task>; with several
	// tasks objective (Σ w_i·L_i of the penalised losses, with the weights
	// the combiner applied) and weight.<task>; grad_norm, lr, and with loss
	// scaling finite and skipped (dynamic only: this step's update was
	// applied; the run's skipped steps) and scale. The new parameters and state
	// follow, named like them.
	names := append(append(append([]string{}, taskNames...), otherNames...), m.names...)
	vals := append(append(append([]*ir.Value{}, tasks...), others...), m.vals...)
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] && i >= len(taskNames)+len(otherNames) {
			return fmt.Errorf("output %s has the name of a train-step metric", n)
		}
		seen[n] = true
	}
	for _, n := range stateNames {
		if seen[n] {
			return fmt.Errorf("output %s has the name of a parameter or state", n)
		}
	}
	f.Name = "train_step"
	f.Results = append(vals, stateVals...)
	f.ResultNames = append(names, stateNames...)
	if err := b.Err(); err != nil {
		return fmt.Errorf("train step: %v", err)
	}
	return nil
}

// penalize returns the task loss l plus its gradient penalties (ARCHITECTURE.md,
// the train step), each by double backward: (ε/2)·‖∇_x l‖² for the tapped value x named
// cfg.InputPenaltyOn, and (λ/2)·‖∇_θ l‖² over params. Each penalty is also
// recorded as a metric named after the task. The inner gradients are taken
// without the loss scale, which multiplies the whole objective; in half
// precision a tiny penalty gradient may underflow.
func penalize(f *ir.Func, l *ir.Value, task string, taps map[string]*ir.Value, params []*ir.Value, cfg *Config, m *metrics) (*ir.Value, error) {
	b := &ir.Builder{F: f}
	obj := l
	if cfg.InputPenalty != 0 {
		x := taps[cfg.InputPenaltyOn]
		if x == nil {
			return nil, fmt.Errorf("input_penalty_on = %q: the model has no such tap (name a value with tap(\"name\", x))", cfg.InputPenaltyOn)
		}
		g, err := Grad(f, l, []*ir.Value{x})
		if err != nil {
			return nil, err
		}
		pen := scaleBy(b, sumSquares(b, g, l.Type.DType), cfg.InputPenalty/2)
		m.add("input_penalty."+task, pen)
		obj = b.Binary(ir.OpAdd, obj, pen)
	}
	if cfg.ParamPenalty != 0 {
		g, err := Grad(f, l, params)
		if err != nil {
			return nil, err
		}
		pen := scaleBy(b, sumSquares(b, g, l.Type.DType), cfg.ParamPenalty/2)
		m.add("param_penalty."+task, pen)
		obj = b.Binary(ir.OpAdd, obj, pen)
	}
	return obj, b.Err()
}

// splitOutputs separates the task losses from the other outputs.
func splitOutputs(f *ir.Func, cfg *Config) (taskNames []string, tasks, others []*ir.Value, otherNames []string, err error) {
	isTask := map[string]bool{}
	for _, n := range cfg.Losses {
		if f.Result(n) == nil {
			return nil, nil, nil, nil, fmt.Errorf("losses: the model has no output %s (outputs: %s)", n, strings.Join(f.ResultNames, ", "))
		}
		isTask[n] = true
		taskNames = append(taskNames, n)
	}
	if len(cfg.Losses) == 0 {
		for _, n := range f.ResultNames {
			if strings.HasSuffix(n, "loss") {
				isTask[n] = true
				taskNames = append(taskNames, n)
			}
		}
	}
	if len(taskNames) == 0 {
		return nil, nil, nil, nil, fmt.Errorf("no task loss: name an output ...loss or list them in losses = [...]")
	}
	for _, n := range taskNames {
		l := f.Result(n)
		if l.Type.Rank() != 0 || !l.Type.DType.IsFloat() {
			return nil, nil, nil, nil, fmt.Errorf("loss %s must be a float scalar, have %v", n, l.Type)
		}
		if l.Type.DType != ir.F32 {
			return nil, nil, nil, nil, fmt.Errorf("loss %s must be f32, have %v", n, l.Type)
		}
		tasks = append(tasks, l)
	}
	for i, n := range f.ResultNames {
		if !isTask[n] {
			others = append(others, f.Results[i])
			otherNames = append(otherNames, n)
		}
	}
	return taskNames, tasks, others, otherNames, nil
}

// updateScale is dynamic loss scaling: halve on a non-finite step, double
// after cfg.ScaleInterval finite steps in a row. It counts the skipped
// steps of the run (a state, so that a resumed run goes on counting) and
// returns the new count.
func updateScale(b *ir.Builder, st *StateSet, cfg *Config, s, finite *ir.Value) *ir.Value {
	good := st.Get("loss_scale.good", ir.T(ir.I64), "zeros", 0)
	one := b.Constant(ir.T(ir.I64), 1)
	zero := b.Constant(ir.T(ir.I64), 0)
	next := b.Select(finite, b.Binary(ir.OpAdd, good, one), zero)
	grow := b.Binary(ir.OpGe, next, b.Constant(ir.T(ir.I64), float64(cfg.ScaleInterval)))
	two := b.Constant(ir.T(ir.F32), 2)
	grown := b.Select(grow, b.Binary(ir.OpMul, s, two), s)
	st.Set("loss_scale", b.Select(finite, grown, b.Binary(ir.OpDiv, s, two)))
	st.Set("loss_scale.good", b.Select(grow, zero, next))
	skipped := st.Get("loss_scale.skipped", ir.T(ir.I64), "zeros", 0)
	n := b.Select(finite, skipped, b.Binary(ir.OpAdd, skipped, one))
	st.Set("loss_scale.skipped", n)
	return n
}

// LossNames lists the results of a train step from Build that
// measure training, for a progress line: every task loss, then, with
// several tasks, the combined objective.
func LossNames(step *ir.Func) []string {
	var tasks []string
	for _, n := range step.ResultNames {
		if t, ok := strings.CutPrefix(n, "weight."); ok {
			tasks = append(tasks, t)
		}
	}
	if len(tasks) > 1 && step.Result("objective") != nil {
		return append(tasks, "objective")
	}
	if len(step.ResultNames) == 0 {
		return nil
	}
	return []string{step.ResultNames[0]}
}

// weightedSum is the combined objective Σ sg(w_i)·obj_i: its gradient is
// the combined gradient, the weights taken as constants.
func weightedSum(b *ir.Builder, weights, objs []*ir.Value) *ir.Value {
	var total *ir.Value
	for i, obj := range objs {
		term := b.Binary(ir.OpMul, b.Unary(ir.OpStopGradient, b.Convert(weights[i], obj.Type.DType)), obj)
		if total == nil {
			total = term
		} else {
			total = b.Binary(ir.OpAdd, total, term)
		}
	}
	return total
}

type metrics struct {
	names []string
	vals  []*ir.Value
}

func (m *metrics) add(name string, v *ir.Value) {
	m.names = append(m.names, name)
	m.vals = append(m.vals, v)
}

// sumSquares is Σ_j Σ x_j² over every element of every value, in dtype d.
func sumSquares(b *ir.Builder, xs []*ir.Value, d ir.DType) *ir.Value {
	return totalSum(b, len(xs), d, func(j int) *ir.Value { return b.Binary(ir.OpMul, xs[j], xs[j]) })
}

func scaleBy(b *ir.Builder, x *ir.Value, c float64) *ir.Value {
	return b.Binary(ir.OpMul, x, b.Constant(x.Type, c))
}
