package runtime

import (
	"math"
	"testing"
)

// TestNaNWatch checks which steps count towards nan_patience: a step whose
// loss is not finite, unless dynamic loss scaling skipped it with the scale
// above 1; a finite loss ends the streak.
func TestNaNWatch(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	steps := []struct {
		m      map[string]float64
		streak int
	}{
		{map[string]float64{"loss": 2}, 0},
		{map[string]float64{"loss": nan}, 1},
		{map[string]float64{"loss": inf}, 2},
		{map[string]float64{"loss": 1}, 0},
		{map[string]float64{"loss": nan, "finite": 0, "scale": 4}, 0}, // the scale comes down
		{map[string]float64{"loss": nan, "finite": 0, "scale": 1}, 1},
		{map[string]float64{"loss": nan, "finite": 0, "scale": 0.5}, 2},
		{map[string]float64{"loss": 3, "aux_loss": nan}, 3},
		{map[string]float64{"loss": 3, "finite": 0, "scale": 0.5}, 0}, // a finite loss
	}
	w := nanWatch{patience: 3}
	for i, s := range steps {
		w.observe(int64(i+1), s.m, []string{"loss", "aux_loss"})
		if w.streak != s.streak {
			t.Fatalf("step %d: streak %d, want %d", i+1, w.streak, s.streak)
		}
		if got := w.exhausted(); got != (s.streak >= 3) {
			t.Errorf("step %d: exhausted %v", i+1, got)
		}
	}
	if w.since != 6 {
		t.Errorf("the last streak began at step %d, want 6", w.since)
	}
}
