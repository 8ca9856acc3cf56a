package experiments

import (
	"fmt"
	"math"
	"strings"
)

// The depth study's thresholds, fixed before its full run.
const (
	// depthWorseBy: Post-LN "ends worse" than Pre-LN when its final
	// validation loss is more than this fraction higher.
	depthWorseBy = 0.05
	// depthWarmupGain: warmup "helps" when it lowers the final validation
	// loss by at least this fraction (or saves a run from diverging).
	depthWarmupGain = 0.02
)

var depthClaims = []Claim{
	{
		Text: fmt.Sprintf("Post-LN without warmup fails at every depth of the sweep but the shallowest (24 and 96 "+
			"layers): it diverges, or its final validation loss is more than %.0f%% above Pre-LN's without warmup "+
			"at the same depth.", 100*depthWorseBy),
		Check: checkPostFails,
	},
	{
		Text: "DeepNorm trains at every depth: no DeepNorm run diverges (either α/β table, with or without " +
			"warmup, at 6, 24 and 96 layers, and in the 500-layer run).",
		Check: checkDeepNormTrains,
	},
	{
		Text: "DeepNorm's early update is smaller than Post-LN's at the deepest depths: without warmup, the " +
			"largest u_t over t = 1..k (k = 10) of DeepNorm (paper table) is below Post-LN's, at the deepest " +
			"depth of the sweep (96) and in the 500-layer run; a Post-LN run that diverges within those k " +
			"steps counts as larger.",
		Check: checkDeepNormUpdate,
	},
	{
		Text: fmt.Sprintf("Warmup helps Post-LN at every depth of the sweep but the shallowest (24 and 96): "+
			"with warmup it trains where it diverged without, or both train and its final validation loss is at "+
			"least %.0f%% lower than without warmup.", 100*depthWarmupGain),
		Check: checkWarmupHelps,
	},
}

// depthRun finds the runs row of kind, depth and variant, with or without
// warmup.
func depthRun(rs Results, kind string, depth int, variant string, warmup bool) (Row, error) {
	for _, row := range rs.Rows("runs", map[string]any{"run": kind, "depth": depth, "variant": variant}) {
		if w, _ := row.Float("warmup"); (w > 0) == warmup {
			return row, nil
		}
	}
	return Row{}, fmt.Errorf("no %s run of %s at depth %d (warmup %v)", kind, variant, depth, warmup)
}

// depthVal is a row's final validation loss, and whether the run trained
// (did not diverge).
func depthVal(row Row) (float64, bool) {
	if _, div := row.Float("diverged"); div {
		return math.NaN(), false
	}
	v, ok := row.Float("val_loss")
	return v, ok
}

// deepSweepDepths are the sweep's depths but the shallowest.
func deepSweepDepths(rs Results) []int {
	ns := depthsOf(rs, "sweep")
	if len(ns) < 2 {
		return nil
	}
	return ns[1:]
}

// verdictOver applies check to each of depths; the claim holds when it
// holds at all of them (and there is at least one).
func verdictOver(depths []int, check func(n int) (bool, string, error)) Verdict {
	if len(depths) == 0 {
		return Verdict{false, "no depths to compare"}
	}
	all := true
	var parts []string
	for _, n := range depths {
		ok, detail, err := check(n)
		if err != nil {
			return Verdict{false, err.Error()}
		}
		all = all && ok
		parts = append(parts, detail)
	}
	return Verdict{all, strings.Join(parts, "; ")}
}

func checkPostFails(rs Results) Verdict {
	return verdictOver(deepSweepDepths(rs), func(n int) (bool, string, error) {
		post, err := depthRun(rs, "sweep", n, "post", false)
		if err != nil {
			return false, "", err
		}
		pre, err := depthRun(rs, "sweep", n, "pre", false)
		if err != nil {
			return false, "", err
		}
		pv, postOK := depthVal(post)
		rv, preOK := depthVal(pre)
		switch {
		case !postOK:
			return true, fmt.Sprintf("%d layers: Post-LN diverged at step %s", n, cell(post.Values["diverged"])), nil
		case !preOK:
			return false, fmt.Sprintf("%d layers: Pre-LN diverged, Post-LN reached %.4f", n, pv), nil
		}
		return pv > (1+depthWorseBy)*rv, fmt.Sprintf("%d layers: Post-LN %.4f vs Pre-LN %.4f (%+.1f%%)",
			n, pv, rv, 100*(pv/rv-1)), nil
	})
}

func checkDeepNormTrains(rs Results) Verdict {
	var div []string
	n := 0
	for _, row := range rs.Rows("runs", nil) {
		if !strings.HasPrefix(fmt.Sprint(row.Values["variant"]), "deepnorm") {
			continue
		}
		n++
		if s, ok := row.Float("diverged"); ok {
			div = append(div, fmt.Sprintf("%s at %s layers diverged at step %.0f", depthLabel(row), cell(row.Values["depth"]), s))
		}
	}
	if n == 0 {
		return Verdict{false, "no DeepNorm runs"}
	}
	if len(div) > 0 {
		return Verdict{false, strings.Join(div, "; ")}
	}
	return Verdict{true, fmt.Sprintf("all %d DeepNorm runs trained", n)}
}

func checkDeepNormUpdate(rs Results) Verdict {
	sweep := depthsOf(rs, "sweep")
	deep := depthsOf(rs, "deep")
	if len(sweep) == 0 || len(deep) == 0 {
		return Verdict{false, "missing the deepest sweep depth or the very deep run"}
	}
	type at struct {
		kind string
		n    int
	}
	var v Verdict
	v.Supported = true
	var parts []string
	for _, a := range []at{{"sweep", sweep[len(sweep)-1]}, {"deep", deep[len(deep)-1]}} {
		post, err := depthRun(rs, a.kind, a.n, "post", false)
		if err != nil {
			return Verdict{false, err.Error()}
		}
		dn, err := depthRun(rs, a.kind, a.n, "deepnorm", false)
		if err != nil {
			return Verdict{false, err.Error()}
		}
		du, dOK := dn.Float("u_max")
		pu, pOK := post.Float("u_max")
		_, postDiverged := post.Float("diverged")
		_, reachedK := post.Float("u_k")
		earlyDiv := postDiverged && !reachedK && fmt.Sprint(post.Values["u_k"]) != "non-finite"
		var ok bool
		switch {
		case !dOK:
			ok = false
		case earlyDiv || !pOK:
			ok = true
		default:
			ok = du < pu
		}
		v.Supported = v.Supported && ok
		parts = append(parts, fmt.Sprintf("%d layers: DeepNorm u_max %s, Post-LN u_max %s%s", a.n,
			cell(dn.Values["u_max"]), cell(post.Values["u_max"]), map[bool]string{true: " (Post-LN diverged early)"}[earlyDiv]))
	}
	v.Detail = strings.Join(parts, "; ")
	return v
}

func checkWarmupHelps(rs Results) Verdict {
	return verdictOver(deepSweepDepths(rs), func(n int) (bool, string, error) {
		cold, err := depthRun(rs, "sweep", n, "post", false)
		if err != nil {
			return false, "", err
		}
		warm, err := depthRun(rs, "sweep", n, "post", true)
		if err != nil {
			return false, "", err
		}
		cv, coldOK := depthVal(cold)
		wv, warmOK := depthVal(warm)
		switch {
		case !warmOK:
			return false, fmt.Sprintf("%d layers: Post-LN with warmup diverged at step %s", n, cell(warm.Values["diverged"])), nil
		case !coldOK:
			return true, fmt.Sprintf("%d layers: with warmup %.4f, without diverged at step %s", n, wv, cell(cold.Values["diverged"])), nil
		}
		return wv <= (1-depthWarmupGain)*cv, fmt.Sprintf("%d layers: with warmup %.4f, without %.4f (%+.1f%%)",
			n, wv, cv, 100*(wv/cv-1)), nil
	})
}
