package codegen

import "testing"

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
