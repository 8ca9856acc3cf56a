package ir_test

import (
	"strings"
	"testing"

	"xlc/ir"
)

// TestPadType checks pad's type rule and its errors.
func TestPadType(t *testing.T) {
	attrs := func(low, high, interior []int) ir.Attrs {
		return ir.Attrs{}.Set("low", low).Set("high", high).Set("interior", interior)
	}
	tests := []struct {
		name            string
		x               ir.Type
		low, high, intr []int
		want            string // a type, or part of an error
	}{
		{"plain", ir.T(ir.F32, 2, 3), []int{1, 0}, []int{0, 2}, []int{0, 0}, "f32[3,5]"},
		{"interior", ir.T(ir.I64, 4), []int{0}, []int{0}, []int{3}, "i64[13]"},
		{"empty axis", ir.T(ir.F16, 0, 2), []int{1, 0}, []int{2, 0}, []int{5, 1}, "f16[3,3]"},
		{"scalar", ir.T(ir.Bool), []int{}, []int{}, []int{}, "bool[]"},
		{"short", ir.T(ir.F32, 2, 3), []int{1}, []int{0, 2}, []int{0, 0}, "want low, high and interior of 2 entries"},
		{"missing", ir.T(ir.F32, 2), []int{1}, nil, []int{0}, "want low, high and interior of 1 entries"},
		{"negative", ir.T(ir.F32, 2), []int{0}, []int{0}, []int{-1}, "axis 0: want low, high and interior in [0, 2^31)"},
		{"huge", ir.T(ir.F32, 2), []int{1 << 40}, []int{0}, []int{0}, "axis 0: want low, high and interior in [0, 2^31)"},
	}
	for _, tc := range tests {
		a := attrs(tc.low, tc.high, tc.intr)
		if tc.high == nil {
			a = ir.Attrs{}.Set("low", tc.low).Set("interior", tc.intr)
		}
		got, err := ir.Infer(ir.OpPad, []ir.Type{tc.x}, a, ir.Type{})
		have := got.String()
		if err != nil {
			have = err.Error()
		}
		if !strings.Contains(have, tc.want) {
			t.Errorf("%s: have %q, want %q", tc.name, have, tc.want)
		}
	}
	b := ir.NewBuilder("f")
	x := b.Param("x", ir.T(ir.F32, 2), nil)
	p := b.Pad(x, []int{1}, []int{2}, []int{1})
	if b.Err() != nil || !p.Type.Equal(ir.T(ir.F32, 6)) {
		t.Errorf("Builder.Pad: %v, %v", p.Type, b.Err())
	}
	if op, ok := ir.LookupOp("pad"); !ok || op != ir.OpPad {
		t.Errorf("LookupOp(pad) = %v, %v", op, ok)
	}
}
