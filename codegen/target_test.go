package codegen

import (
	"strings"
	"testing"
)

// TestTargetTiles checks every class's micro-tile: NR a multiple of the
// vector width, and the accumulators, B's vectors and A's broadcast within
// the vector registers.
func TestTargetTiles(t *testing.T) {
	for name := range classes {
		tg, err := TargetFor(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, mr := range []int{tg.MR, tg.AltMR} {
			if mr == 0 {
				continue
			}
			if tg.NR%tg.Vec != 0 {
				t.Errorf("%s: NR %d is not a multiple of %d lanes", name, tg.NR, tg.Vec)
			}
			if regs := mr*tg.NR/tg.Vec + tg.NR/tg.Vec + 1; regs > tg.Regs {
				t.Errorf("%s: a %d×%d tile needs %d vector registers, the target has %d", name, mr, tg.NR, regs, tg.Regs)
			}
		}
	}
	for name, class := range cpuClass {
		tg, err := TargetFor(name)
		if err != nil || tg.CPU != classes[class].CPU || tg.Tune != name {
			t.Errorf("TargetFor(%q) = %+v, %v: want class %s tuned for %s", name, tg, err, class, name)
		}
	}
	if _, err := TargetFor("pentium-mmx"); err == nil {
		t.Error("an unknown CPU: no error")
	}
}

// TestGPUKnobs checks that a GPU target takes its kernel choices from the
// environment when it is made, and refuses, in one line naming the
// variable, a value it does not know.
func TestGPUKnobs(t *testing.T) {
	for _, c := range []struct{ env, value string }{
		{"XLC_GPU_DOT", "128x128x8"}, {"XLC_GPU_MMA", "128x128"}, {"XLC_GPU_ATTENTION", "strips"},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			tg, err := TargetFor("sm_90")
			if err != nil {
				t.Fatal(err)
			}
			if got := map[string]string{"XLC_GPU_DOT": tg.GPUDot, "XLC_GPU_MMA": tg.GPUMMA, "XLC_GPU_ATTENTION": tg.GPUAttention}[c.env]; got != c.value {
				t.Errorf("%s=%s: the target has %q", c.env, c.value, got)
			}
			t.Setenv(c.env, "sideways")
			_, err = TargetFor("sm_90")
			if err == nil || !strings.HasPrefix(err.Error(), c.env+"=sideways: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s=sideways: error %v, want one line starting with the setting", c.env, err)
			}
		})
	}
}
