package runtime

import (
	"fmt"
	"math"

	"xlc/runtime/interp"
)

// nanWatch follows a run's losses for nan_patience: the steps in a row
// whose loss is not finite, from the first of them. A step that dynamic
// loss scaling skipped with the scale above 1 does not count: the scale
// is still coming down to where the gradients fit.
type nanWatch struct {
	patience int   // 0: never stop
	streak   int   // bad steps in a row
	since    int64 // the first of them
}

// observe takes the metrics m of step (1-based), whose losses are named.
func (w *nanWatch) observe(step int64, m map[string]float64, losses []string) {
	bad := false
	for _, n := range losses {
		if v, ok := m[n]; ok && (math.IsNaN(v) || math.IsInf(v, 0)) {
			bad = true
		}
	}
	if f, ok := m["finite"]; ok && f == 0 && m["scale"] > 1 {
		bad = false
	}
	if !bad {
		w.streak = 0
		return
	}
	if w.streak == 0 {
		w.since = step
	}
	w.streak++
}

// exhausted reports whether the run must stop.
func (w *nanWatch) exhausted() bool { return w.patience > 0 && w.streak >= w.patience }

// stopError is the one line a run stops with at step: how it ended (did)
// while the loss was not finite, and which checkpoint is left (saved: its
// step; 0: none).
func (w *nanWatch) stopError(step, saved int64, did string) error {
	return fmt.Errorf("step %d: %s with the loss not finite since step %d (%d steps in a row, nan_patience %d); %s", step, did, w.since, w.streak, w.patience, keptCheckpoint(saved))
}

// keptCheckpoint says which checkpoint a run that stops without saving
// leaves: the one of step saved, or none (0).
func keptCheckpoint(saved int64) string {
	if saved > 0 {
		return fmt.Sprintf("the checkpoint of step %d is kept", saved)
	}
	return "no checkpoint was written"
}

// finiteState reports whether every float tensor of state is finite.
func finiteState(state map[string]*interp.Tensor) bool {
	for _, t := range state {
		for _, v := range t.F {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}
