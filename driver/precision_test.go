package driver

import (
	"os"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/parser"
)

// TestPrecisionSetting checks the precision train setting: bf16 and f16
// give every matrix product of GPT's train step and forward pass half
// operands and an f32 result, f32 none; f16 turns on dynamic loss scaling
// and says so once.
func TestPrecisionSetting(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"f32", "bf16", "f16"} {
		var log strings.Builder
		defs := []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "16"}, {Key: "seq", Value: "8"}, {Key: "batch", Value: "2"}, {Key: "precision", Value: p}}
		m, err := Compile("gpt.xl", src, defs, Options{Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*ir.Func{m.Step, m.Eval} {
			half, full := 0, 0
			for _, v := range f.Body {
				if v.Op != ir.OpDot || v.Type.Rank() < 2 {
					continue
				}
				if a := v.Args[0].Type.DType; a == ir.F32 {
					full++
				} else if a.String() == p && v.Attrs.String("out") == "f32" && v.Type.DType == ir.F32 {
					half++
				}
			}
			if p == "f32" && half != 0 || p != "f32" && (half == 0 || full != 0) {
				t.Errorf("precision %s: @%s has %d half and %d f32 matrix products", p, f.Name, half, full)
			}
		}
		note := strings.Count(log.String(), "loss_scale dynamic")
		if want := map[bool]int{true: 1, false: 0}[p == "f16"]; note != want || (p == "f16") != (m.Train.LossScale == "dynamic") {
			t.Errorf("precision %s: loss_scale %s, %d notes in %q", p, m.Train.LossScale, note, log.String())
		}
	}
}
