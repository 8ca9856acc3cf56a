package cpu

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/ir"
	"xlc/runtime/interp"
)

// TestGPUEmulatorMutations shows that the emulator catches what it is
// for: kernels that synchronize (a block per row, its warps' shuffles and
// a barrier before the warps' results are combined; the tiled dot's
// shared tiles, written and read between barriers) match the interpreter,
// and the same kernels with their barriers dropped, or each shuffle
// reading the wrong lane, do not.
func TestGPUEmulatorMutations(t *testing.T) {
	needLLVM(t)
	f, err := ir.ParseFunc(`func @coop(%x: f32[24,100], %y: f32[5000], %z: f32[64,48], %a: f32[70,50], %b: f32[50,90]) -> (m: f32[24], s: f32[], c: f32[48], d: f32[70,90]) {
  %0 = reduce_max %x {axes=[1]} : f32[24]
  %1 = reduce_sum %y {axes=[0]} : f32[]
  %2 = reduce_sum %z {axes=[0]} : f32[48]
  %3 = dot %a, %b {batch=[[],[]], contract=[[1],[0]]} : f32[70,90]
  return %0, %1, %2, %3
}`)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	args := make([]*interp.Tensor, len(f.Params))
	for i, p := range f.Params {
		args[i] = randomTensor(r, p.Type, -5, 5)
	}
	want, err := interp.Run(f, args)
	if err != nil {
		t.Fatal(err)
	}
	// The sums' and the dot's terms bound their rounding (diffAbs).
	abs := make([]*interp.Tensor, len(args))
	for i, a := range args {
		abs[i] = interp.NewTensor(a.Type)
		for j, x := range a.F {
			abs[i].F[j] = math.Abs(x)
		}
	}
	terms, err := interp.Run(f, abs)
	if err != nil {
		t.Fatal(err)
	}
	// check returns, per result, how it differs from the interpreter's.
	check := func() []string {
		x, err := Backend{CPU: "gpu-emu"}.LoadExec(f)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		got, err := x.Run(args)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]string, len(got))
		for i := range got {
			msgs[i] = diffAbs(got[i], want[i], 1e-5, terms[i].F)
		}
		return msgs
	}
	for i, msg := range check() {
		if msg != "" {
			t.Errorf("%s: the emulated GPU kernel differs from the interpreter: %s", f.ResultNames[i], msg)
		}
	}
	// Every result's kernel has barriers; all but the dot shuffle.
	for _, m := range []struct {
		name   string
		m      codegen.Mutation
		caught []int
	}{{"barrier dropped", codegen.MutateBarrier, []int{0, 1, 2, 3}}, {"wrong shuffle lane", codegen.MutateShuffleLane, []int{0, 1, 2}}} {
		codegen.Mutate = m.m
		msgs := check()
		codegen.Mutate = codegen.MutateNone
		for _, i := range m.caught {
			if msgs[i] == "" {
				t.Errorf("%s: %s still matches the interpreter", m.name, f.ResultNames[i])
			} else {
				t.Logf("%s: %s: %s", m.name, f.ResultNames[i], strings.SplitN(msgs[i], "\n", 2)[0])
			}
		}
	}
}
