package experiments

import (
	"fmt"
	"math"
	"sort"

	"xlc/runtime"
)

// gdRun is one full-batch gradient-descent trajectory of penalty/mlp.xl:
// the parameters and the loss at each evaluated time.
type gdRun struct {
	name    string
	defines []string
	steps   int // steps per evaluated interval
	thetas  [][]float64
	losses  []float64
}

// gdDefines are the settings of plain full-batch gradient descent with
// step lr and parameter penalty lambda (0 for none).
func gdDefines(lr, lambda float64) []string {
	d := []string{"optimizer=sgd", "momentum=0", "weight_decay=0", "clip=0", "schedule=constant", "warmup=0",
		fmt.Sprintf("lr=%g", lr)}
	if lambda != 0 {
		d = append(d, fmt.Sprintf("param_penalty=%g", lambda))
	}
	return d
}

// trajectory trains g for intervals×g.steps steps from the seed's
// initialisation and records the parameters θ and the unpenalised loss
// L(θ) at the start and after each interval. A step's loss output is L at
// the parameters it starts from, so one step more than the total runs.
func (r *Run) trajectory(g *gdRun, intervals int, seed uint64) error {
	tr, err := r.Trainer(penaltyMLP, seed, g.defines...)
	if err != nil {
		return err
	}
	defer tr.Close()
	for s := 0; s <= intervals*g.steps; s++ {
		var theta []float64
		if s%g.steps == 0 {
			if theta, err = flatParams(tr); err != nil {
				return err
			}
		}
		m, err := tr.Step()
		if err != nil {
			return err
		}
		l := m["loss"]
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return fmt.Errorf("%s diverged at step %d", g.name, s)
		}
		if theta != nil {
			g.thetas = append(g.thetas, theta)
			g.losses = append(g.losses, l)
		}
	}
	return nil
}

// flatParams is every parameter of tr, concatenated in name order.
func flatParams(tr *Trainer) ([]float64, error) {
	st, err := tr.State()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range tr.Model.Step.Params {
		if p.Role() == "param" {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	var out []float64
	for _, n := range names {
		t := st[n]
		if t == nil {
			return nil, fmt.Errorf("no parameter %s in the state", n)
		}
		out = append(out, t.Floats()...)
	}
	return out, nil
}

func distance(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}

// implicitGD runs GD with step γ on L, and step γ/r on the modified loss
// (param_penalty γ/2) and on L, from one initialisation, and records the
// losses and parameter distances at equal times.
func implicitGD(r *Run) error {
	const gamma = 0.4
	ratio := r.Pick(10, 4)
	intervals := r.Pick(10, 3)
	per := r.Pick(20, 3) // GD steps per interval
	small := gamma / float64(ratio)
	runs := []*gdRun{
		{name: "GD", defines: gdDefines(gamma, 0), steps: per},
		{name: "mod", defines: gdDefines(small, gamma/2), steps: per * ratio},
		{name: "flow", defines: gdDefines(small, 0), steps: per * ratio},
	}
	r.Setup("Implicit regularisation: the MLP above, full batch (the same 64 points every step), γ = %g; GD: %d "+
		"steps of `%s`; mod: %d steps of `%s`; flow: %d steps of `%s`; compared every %d GD steps (time %g)",
		gamma, intervals*per, Command(penaltyMLP, runs[0].defines...), intervals*per*ratio,
		Command(penaltyMLP, runs[1].defines...), intervals*per*ratio, Command(penaltyMLP, runs[2].defines...),
		per, gamma*float64(per))
	for _, g := range runs {
		if err := r.trajectory(g, intervals, 1); err != nil {
			return err
		}
	}
	dist := map[string][][2]float64{}
	loss := map[string][][2]float64{}
	for i := 0; i <= intervals; i++ {
		t := gamma * float64(i*per)
		dm := distance(runs[0].thetas[i], runs[1].thetas[i])
		df := distance(runs[0].thetas[i], runs[2].thetas[i])
		ratio := 0.0
		if df > 0 {
			ratio = dm / df
		}
		r.Record("gd", map[string]any{"time": t, "loss_gd": runs[0].losses[i], "loss_mod": runs[1].losses[i],
			"loss_flow": runs[2].losses[i], "dist_mod": dm, "dist_flow": df, "ratio": ratio})
		dist["‖θ_GD − θ_mod‖"] = append(dist["‖θ_GD − θ_mod‖"], [2]float64{t, dm})
		dist["‖θ_GD − θ_flow‖"] = append(dist["‖θ_GD − θ_flow‖"], [2]float64{t, df})
		for _, g := range runs {
			loss[g.name] = append(loss[g.name], [2]float64{t, g.losses[i]})
		}
	}
	if err := r.Plot(Plot{File: "gd_distance.png", Chart: runtime.Chart{Title: "distance from the GD trajectory",
		X: "time (γ · steps)", Y: "parameter distance"}, Series: dist}); err != nil {
		return err
	}
	return r.Plot(Plot{File: "gd_loss.png", Chart: runtime.Chart{Title: "loss L at equal times", X: "time (γ · steps)",
		Y: "L", LogY: true}, Series: loss})
}
