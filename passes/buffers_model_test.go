package passes_test

import (
	"strings"
	"testing"

	"xlc/ir"
	"xlc/passes"
)

// TestPlanBuffersGPT plans the tiny GPT's train step unfused and fused:
// the plan verifies, needs less than one buffer per value, and writes every
// parameter's new value in place once fused.
func TestPlanBuffersGPT(t *testing.T) {
	m := compileGPT(t, tinyGPT("2"))
	for _, f := range []*ir.Func{m.Step, fused(t, m.Step, passes.UnlimitedFuel)} {
		p, err := passes.PlanBuffers(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(f); err != nil {
			t.Fatal(err)
		}
		t.Logf("@%s (%d instructions): peak %d B (params %d + arena %d, live at most %d); without reuse %d B; %d of %d donations in place",
			f.Name, len(f.Body), p.PeakBytes, p.ParamBytes, p.ArenaBytes, p.LiveBytes, p.NaiveBytes, len(p.InPlace), len(p.Donations))
		if p.PeakBytes >= p.NaiveBytes {
			t.Errorf("peak %d B, without reuse %d B: want less", p.PeakBytes, p.NaiveBytes)
		}
		if p.ArenaBytes < p.LiveBytes {
			t.Errorf("arena %d B below the live bytes %d B", p.ArenaBytes, p.LiveBytes)
		}
		if len(p.Donations) == 0 {
			t.Error("no donations in a train step")
		}
	}
}

// TestVerifyBuffersCatches corrupts sound plans: Verify must reject two
// live values sharing bytes, a value written into a live parameter, a
// misplaced alias and a buffer outside the arena.
func TestVerifyBuffersCatches(t *testing.T) {
	src := `func @f(%x: f32[16], %w: f32[16] {role=param}) -> (y: f32[16], w: f32[16]) {
  %0 = exp %x : f32[16]
  %1 = log %x : f32[16]
  %2 = add %0, %1 : f32[16]
  %3 = reshape %2 {shape=[4,4]} : f32[4,4]
  %4 = mul %w, %2 : f32[16]
  %5 = neg %w : f32[16]
  return %4, %5
}
`
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		corrupt    func(p *passes.BufferPlan)
	}{
		{"overlap", "overlap in the arena", func(p *passes.BufferPlan) { p.Loc[1] = p.Loc[0] }},
		{"overlap by part", "overlap in the arena", func(p *passes.BufferPlan) { p.Loc[1].Offset = p.Loc[0].Offset; p.Bytes[1] = 128 }},
		{"live parameter", "still live", func(p *passes.BufferPlan) { p.Loc[4] = passes.Loc{Param: 1} }},
		{"alias", "root of its storage", func(p *passes.BufferPlan) { p.Loc[3] = p.Loc[0] }},
		{"outside", "outside the arena", func(p *passes.BufferPlan) { p.Loc[2].Offset = p.ArenaBytes }},
		{"small", "needs", func(p *passes.BufferPlan) { p.Bytes[0] = 0 }},
	} {
		p, err := passes.PlanBuffers(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(f); err != nil {
			t.Fatalf("sound plan: %v", err)
		}
		c.corrupt(p)
		if err := p.Verify(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Verify says %v, want %q", c.name, err, c.want)
		}
	}
}
