package experiments

import (
	"fmt"
	"math"

	"xlc/runtime"
	"xlc/runtime/interp"
)

// mtFile is the experiment's copy of bert.xl, with the cls_scale knob.
const mtFile = "multitask/bert.xl"

// mtScale is c, the factor the scaled runs multiply the classification
// loss by.
const mtScale = 10.0

// mtCombiners are the combiners compared, in table order.
var mtCombiners = []string{"sum", "initial", "realtime", "gradnorm", "minnorm", "main_aux"}

// mtTasks are the task losses, main task (task 0 of main_aux) first.
var mtTasks = [2]string{"mlm_loss", "cls_loss"}

// mtSize is a run's model size and schedule.
type mtSize struct {
	d, layers, heads, seq, batch int
	steps, every, evalBatches    int
}

// defines are the -D settings of one run.
func (z mtSize) defines(combiner string, scale float64) []string {
	return []string{fmt.Sprintf("d=%d", z.d), fmt.Sprintf("layers=%d", z.layers), fmt.Sprintf("heads=%d", z.heads),
		fmt.Sprintf("seq=%d", z.seq), fmt.Sprintf("batch=%d", z.batch), "optimizer=adamw", "lr=1e-3",
		"combiner=" + combiner, fmt.Sprintf("cls_scale=%.1f", scale)}
}

// mtNum is v, or text saying the run diverged when v is not finite.
func mtNum(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "diverged"
	}
	return v
}

// mtRatio is a/b, or text when either is zero.
func mtRatio(a, b float64) any {
	switch {
	case a == 0 && b == 0:
		return "both zero"
	case a == 0 || b == 0:
		return "one zero"
	}
	return mtNum(a / b)
}

// mtRun trains each combiner with c = 1 and c = mtScale side by side,
// probing gradients along the c = 1 run.
func mtRun(r *Run) error {
	z := mtSize{d: 64, layers: 2, heads: 4, seq: 64, batch: 16, steps: 300, every: 10, evalBatches: 8}
	if r.Quick {
		z = mtSize{d: 16, layers: 1, heads: 2, seq: 16, batch: 4, steps: 4, every: 1, evalBatches: 1}
	}
	r.Setup("model `%s` (models/bert.xl with `cls_scale`, the factor on cls_loss): d %d, %d layers, %d heads, seq %d, batch %d; AdamW lr 1e-3, with xlc's default clip 1.0, weight decay 0.01, β (0.9, 0.999), ε 1e-8; seed 1",
		mtFile, z.d, z.layers, z.heads, z.seq, z.batch)
	r.Setup("per combiner, %d steps each of `%s` and of the same with `cls_scale=%.1f`; validation on %d batches (`Trainer.Eval`)",
		z.steps, Command(mtFile, z.defines("COMBINER", 1)...), mtScale, z.evalBatches)
	r.Setup("every %d steps along the c = 1 run: a gradient probe (forward and both backward passes, compiled apart from the train step) gives G = [⟨g_i, g_j⟩] and g_mlm on that step's batch; the c = %g step is run once on a copy of the c = 1 state and its update compared, and the c-model's probe gives ‖∇(c·L_cls)‖ on the same parameters; main_aux is probed at every step", z.every, mtScale)
	r.Table("final", "Final validation losses (c = 1) and the combiner's weights, mean over steps", "combiner", "val_mlm_loss", "val_cls_loss", "mean_weight_mlm", "mean_weight_cls", "mean_cos", "frac_cos_negative")
	r.Table("invariance", fmt.Sprintf("Rescaling cls_loss by c = %g: from the same state and batch, the difference V of the combined directions and U of the AdamW updates; the divergence D of the two runs at the end, and the c-run's final validation losses (cls divided by c)", mtScale),
		"combiner", "max_V", "mean_V", "max_U", "mean_U", "final_D", "val_mlm_loss_c", "val_cls_loss_c")
	r.Table("main_aux", "main_aux: the main task (mlm) to first order, every step (r = ⟨d, g_mlm⟩/‖g_mlm‖², d = g_mlm + λ·g_cls)", "steps", "conflicting_steps", "min_r", "min_cos_d_main", "max_lambda_err", "adamw_increase_steps")
	pareto := map[string][][2]float64{}
	traj := map[string][][2]float64{}
	cos := map[string][][2]float64{}
	for _, comb := range mtCombiners {
		if err := mtCombiner(r, z, comb, pareto, traj, cos); err != nil {
			return fmt.Errorf("%s: %v", comb, err)
		}
	}
	if err := r.Plot(Plot{File: "pareto.png", Chart: runtime.Chart{Title: "final validation losses, one point per combiner", X: "val mlm_loss", Y: "val cls_loss", Scatter: true}, Series: pareto}); err != nil {
		return err
	}
	if err := r.Plot(Plot{File: "cos.png", Chart: runtime.Chart{Title: "cos(g_mlm, g_cls) on each probed step's batch", X: "step", Y: "cos"}, Series: cos}); err != nil {
		return err
	}
	return r.Plot(Plot{File: "trajectories.png", Chart: runtime.Chart{Title: fmt.Sprintf("train losses, mean of each %d steps", z.every), X: "mlm_loss", Y: "cls_loss", LogY: true}, Series: traj})
}

// mtCombiner runs one combiner: the c = 1 and c = mtScale runs, the shadow
// steps and the probes, and records its rows.
func mtCombiner(r *Run, z mtSize, comb string, pareto, traj, cos map[string][][2]float64) error {
	const seed = 1
	base, err := r.Trainer(mtFile, seed, z.defines(comb, 1)...)
	if err != nil {
		return err
	}
	defer base.Close()
	twin, err := r.Trainer(mtFile, seed, z.defines(comb, mtScale)...)
	if err != nil {
		return err
	}
	defer twin.Close()
	// shadow's executable runs the c step on copies of base's state; its
	// own stepper never runs.
	shadow, err := r.Trainer(mtFile, seed, z.defines(comb, mtScale)...)
	if err != nil {
		return err
	}
	defer shadow.Close()
	probe, err := r.newGradProbe(mtFile, mtTasks, z.defines(comb, 1)...)
	if err != nil {
		return err
	}
	defer probe.Close()
	// probeC is the c-model's probe, run on the same parameters: whether
	// its cls gradient is c times the c = 1 one in f32.
	probeC, err := r.newGradProbe(mtFile, mtTasks, z.defines(comb, mtScale)...)
	if err != nil {
		return err
	}
	defer probeC.Close()
	names := paramNames(base)
	s0, err := base.State()
	if err != nil {
		return err
	}
	theta0 := cloneState(s0)

	var sumU, maxU, sumV, maxV, lastD float64
	var nU, nProbe, nNeg int
	var sumCos, sumW0, sumW1 float64
	var win [2]float64
	ma := struct {
		conflicting, increase int
		minR, minCos, lamErr  float64
	}{minR: math.Inf(1), minCos: math.Inf(1)}
	for s := range z.steps {
		n := int64(s)
		check := s%z.every == 0
		var g *probeGrads
		var before map[string]*interp.Tensor
		if check || comb == "main_aux" {
			if g, err = probe.run(base, n); err != nil {
				return err
			}
			st, err := base.State()
			if err != nil {
				return err
			}
			// A shallow copy: a step replaces the map's tensors, never
			// changes them.
			before = make(map[string]*interp.Tensor, len(st))
			for k, v := range st {
				before[k] = v
			}
			nProbe++
			sumCos += g.cos()
			cos[comb] = append(cos[comb], [2]float64{float64(s), g.cos()})
			if g.cos() < 0 {
				nNeg++
			}
		}
		var shadowState map[string]*interp.Tensor
		var shadowOut map[string]float64
		var ratio any
		if check {
			gc, err := probeC.run(base, n)
			if err != nil {
				return err
			}
			ratio = mtRatio(math.Sqrt(gc.g11), mtScale*math.Sqrt(g.g11))
			shadowState = cloneState(before)
			// initial keeps L_i(init) as state: the c-run's is c times larger.
			if t := shadowState["combine.initial.1"]; t != nil {
				t.F[0] = float64(float32(t.F[0] * mtScale))
			}
			if shadowOut, err = runtime.NewStepper(shadow.exe, shadow.Model.Step, shadowState, false).Step(shadow.data, seed, n); err != nil {
				return err
			}
		}
		mb, err := base.Step()
		if err != nil {
			return err
		}
		if _, err := twin.Step(); err != nil {
			return err
		}
		sumW0 += mb["weight."+mtTasks[0]]
		sumW1 += mb["weight."+mtTasks[1]]
		win[0] += mb[mtTasks[0]] / float64(z.every)
		win[1] += mb[mtTasks[1]] / float64(z.every)
		if g != nil {
			row := map[string]any{"combiner": comb, "step": s, "cos": g.cos(), "mlm_loss": g.loss[0], "cls_loss": g.loss[1],
				"mlm_grad_norm": math.Sqrt(g.g00), "cls_grad_norm": math.Sqrt(g.g11)}
			after, err := base.State()
			if err != nil {
				return err
			}
			if comb == "main_aux" {
				// d = g_0 + λ·g_1 with the λ the train step applied.
				lam := mb["weight."+mtTasks[1]]
				want := math.Max(-g.g01, 0) / g.g11
				rr := (g.g00 + lam*g.g01) / g.g00
				dd := g.g00 + 2*lam*g.g01 + lam*lam*g.g11
				cosD := (g.g00 + lam*g.g01) / math.Sqrt(dd*g.g00)
				// The AdamW update's first-order change of L_main: ⟨Δθ, g_0⟩.
				adam := paramDot(names, after, before, g.main, nil)
				row["r"], row["cos_d_main"], row["lambda"], row["lambda_probe"], row["adamw_first_order"] = rr, cosD, lam, want, adam
				ma.minR, ma.minCos = math.Min(ma.minR, rr), math.Min(ma.minCos, cosD)
				ma.lamErr = math.Max(ma.lamErr, math.Abs(lam-want))
				if lam > 0 {
					ma.conflicting++
				}
				if adam > 0 {
					ma.increase++
				}
			}
			if check {
				u := relDist(names, shadowState, after, before)
				// The combined directions b·g of c = 1 and a·g of c (whose
				// g_1 is c·g_1), compared through the Gram matrix.
				a0, a1 := shadowOut["weight."+mtTasks[0]], mtScale*shadowOut["weight."+mtTasks[1]]
				b0, b1 := mb["weight."+mtTasks[0]], mb["weight."+mtTasks[1]]
				e0, e1 := a0-b0, a1-b1
				v := math.Sqrt((e0*e0*g.g00 + 2*e0*e1*g.g01 + e1*e1*g.g11) / (b0*b0*g.g00 + 2*b0*b1*g.g01 + b1*b1*g.g11))
				row["U"], row["V"], row["cls_norm_ratio"] = mtNum(u), mtNum(v), ratio
				sumU += u
				maxU = math.Max(maxU, u)
				sumV += v
				maxV = math.Max(maxV, v)
				nU++
			}
			r.Record("probe", row)
		}
		if (s+1)%z.every == 0 {
			st, err := base.State()
			if err != nil {
				return err
			}
			ts, err := twin.State()
			if err != nil {
				return err
			}
			lastD = relDist(names, ts, st, theta0)
			traj[comb] = append(traj[comb], [2]float64{win[0], win[1]})
			r.Record("trajectory", map[string]any{"combiner": comb, "step": s + 1, "train_mlm_loss": mtNum(win[0]), "train_cls_loss": mtNum(win[1]), "D": mtNum(lastD)})
			win = [2]float64{}
		}
	}
	ev, err := base.Eval(z.evalBatches)
	if err != nil {
		return err
	}
	evc, err := twin.Eval(z.evalBatches)
	if err != nil {
		return err
	}
	vm, vc := ev["val_"+mtTasks[0]], ev["val_"+mtTasks[1]]
	pareto[comb] = [][2]float64{{vm, vc}}
	steps := float64(z.steps)
	r.Record("final", map[string]any{"combiner": comb, "val_mlm_loss": mtNum(vm), "val_cls_loss": mtNum(vc),
		"mean_weight_mlm": mtNum(sumW0 / steps), "mean_weight_cls": mtNum(sumW1 / steps),
		"mean_cos": mtNum(sumCos / float64(nProbe)), "frac_cos_negative": float64(nNeg) / float64(nProbe)})
	r.Record("invariance", map[string]any{"combiner": comb, "max_V": mtNum(maxV), "mean_V": mtNum(sumV / float64(nU)),
		"max_U": mtNum(maxU), "mean_U": mtNum(sumU / float64(nU)), "final_D": mtNum(lastD),
		"val_mlm_loss_c": mtNum(evc["val_"+mtTasks[0]]), "val_cls_loss_c": mtNum(evc["val_"+mtTasks[1]] / mtScale)})
	if comb == "main_aux" {
		r.Record("main_aux", map[string]any{"steps": z.steps, "conflicting_steps": ma.conflicting, "min_r": mtNum(ma.minR),
			"min_cos_d_main": mtNum(ma.minCos), "max_lambda_err": mtNum(ma.lamErr), "adamw_increase_steps": ma.increase})
	}
	r.Logf("%s: val mlm %.4f cls %.4f; max V %.3g, max U %.3g, final D %.3g, mean cos %.3f", comb, vm, vc, maxV, maxU, lastD, sumCos/float64(nProbe))
	return nil
}
