package cpu

import (
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
// shared tiles, written and read between barriers; the tensor-core dot's
// mma fragments) match the interpreter, and the same kernels with their
// barriers dropped, each shuffle reading the wrong lane, or two A
// registers of each mma swapped, do not.
func TestGPUEmulatorMutations(t *testing.T) {
	needLLVM(t)
	f, args, want := emuCase(t, `func @coop(%x: f32[24,100], %y: f32[40000], %z: f32[64,48], %a: f32[70,50], %b: f32[50,90], %h: bf16[70,50], %k: bf16[50,90], %p: f16[3,40,48], %q: f16[3,36,48]) -> (m: f32[24], s: f32[], c: f32[48], d: f32[70,90], hd: f32[70,90], fd: f32[3,40,36]) {
  %0 = reduce_max %x {axes=[1]} : f32[24]
  %1 = reduce_sum %y {axes=[0]} : f32[]
  %2 = reduce_sum %z {axes=[0]} : f32[48]
  %3 = dot %a, %b {batch=[[],[]], contract=[[1],[0]]} : f32[70,90]
  %4 = dot %h, %k {batch=[[],[]], contract=[[1],[0]], out=f32} : f32[70,90]
  %5 = dot %p, %q {batch=[[0],[0]], contract=[[2],[2]], out=f32} : f32[3,40,36]
  return %0, %1, %2, %3, %4, %5
}`, 1, -5, 5)
	// The sums' and the dot's terms bound their rounding (diffAbs).
	terms := absTerms(t, f, args)
	// check returns, per result, how it differs from the interpreter's.
	check := func() []string {
		got := runEmu(t, f, args)
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
	// Every result's kernel has barriers; the reductions shuffle; the
	// half dots multiply on tensor cores (mma).
	for _, m := range []struct {
		name   string
		m      codegen.Mutation
		caught []int
	}{
		{"barrier dropped", codegen.MutateBarrier, []int{0, 1, 2, 3, 4, 5}},
		{"wrong shuffle lane", codegen.MutateShuffleLane, []int{0, 1, 2}},
		{"wrong mma fragment layout", codegen.MutateFragment, []int{4, 5}},
	} {
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

// TestGPURowDot checks that a dot fusion with a row epilogue (attention's
// scores and softmax) becomes one GPU kernel of row strips, with f32 or
// bf16 operands (tensor cores), and that the emulator's results match the
// interpreter's.
func TestGPURowDot(t *testing.T) {
	half := strings.NewReplacer("%q: f32", "%q: bf16", "%k: f32", "%k: bf16", "%p0: f32[8,64,64], %p1: f32",
		"%p0: bf16[8,64,64], %p1: bf16", "contract=[[2],[2]]}", "contract=[[2],[2]], out=f32}").Replace(rowDotText)
	for _, src := range []string{rowDotText, half} {
		f, p := compileFor(t, src, "gpu-emu")
		for i, k := range p.Kernels {
			if k.Lowering != codegen.LowerTiledDotRows {
				t.Errorf("kernel %d: lowering %s, want %s", i, k.Lowering, codegen.LowerTiledDotRows)
			}
		}
		needLLVM(t)
		args := randomArgs(f, 3, 0, 0)
		want, err := interp.Run(f, args)
		if err != nil {
			t.Fatal(err)
		}
		got := runEmu(t, f, args)
		for i := range got {
			if msg := diff(got[i], want[i], 1e-5); msg != "" {
				t.Errorf("%s: %s: %s", f.Params[0].Type, f.ResultNames[i], msg)
			}
		}
	}
}

// TestGPUGridStride launches the unit kernels (one unit of their range per
// thread: elementwise, reductions, rng, gather, scatter_add) with at most
// two blocks, so that each thread loops over many units a grid apart, and
// checks the emulator's results against the interpreter's.
func TestGPUGridStride(t *testing.T) {
	needLLVM(t)
	f, args, want := emuCase(t, `func @units(%x: f32[5000], %y: f32[300,40], %key: i64[], %t: f32[64,8], %i: i32[700], %u: f32[700,8]) -> (e: f32[5000], s: f32[300], r: f32[3001], g: f32[700,8], a: f32[64,8]) {
  %0 = exp %x : f32[5000]
  %1 = reduce_sum %y {axes=[1]} : f32[300]
  %2 = rng %key {dist=uniform, stream=3} : f32[3001]
  %3 = gather %t, %i {axis=0} : f32[700,8]
  %4 = scatter_add %u, %i {axis=0} : f32[64,8]
  return %0, %1, %2, %3, %4
}`, 2, 0, 64)
	saved := codegen.GPUUnitGrid
	codegen.GPUUnitGrid = 2
	defer func() { codegen.GPUUnitGrid = saved }()
	tg, err := codegen.TargetFor("gpu-emu")
	if err != nil {
		t.Fatal(err)
	}
	p, err := codegen.Compile(f, codegen.Options{Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range p.Kernels {
		if k.Grid > 2 && k.Threads == 256 {
			t.Errorf("kernel %s (%s) launches %d blocks, want at most 2", k.Symbol, k.Lowering, k.Grid)
		}
	}
	got := runEmu(t, f, args)
	terms := absTerms(t, f, args)
	for i := range got {
		if msg := diffAbs(got[i], want[i], 1e-6, terms[i].F); msg != "" {
			t.Errorf("%s: %s", f.ResultNames[i], msg)
		}
	}
}

// runEmu compiles f for the GPU emulator (with the kernels as codegen's
// settings make them now), runs it on args and closes it.
func runEmu(t *testing.T, f *ir.Func, args []*interp.Tensor) []*interp.Tensor {
	t.Helper()
	x, err := Backend{CPU: "gpu-emu"}.LoadExec(f)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	got, err := x.Run(args)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestGPUScatterRows checks scatter_add with rows long enough for a block
// each (an embedding table's gradient) on the emulator: indices walked a
// block's worth at a time over several chunks, repeated and clamped
// indices, rows longer than a block's threads keep at once, and an outer
// axis. The sums are the CPU kernel's, in index order: the interpreter's
// to the last bit.
func TestGPUScatterRows(t *testing.T) {
	needLLVM(t)
	f, args, want := emuCase(t, `func @scatter(%u: f32[300,40], %i: i32[300], %w: f32[20,2100], %k: i64[20], %x: f32[3,90,48], %y: i32[90]) -> (a: f32[50,40], b: f32[7,2100], c: f32[3,11,48]) {
  %0 = scatter_add %u, %i {axis=0} : f32[50,40]
  %1 = scatter_add %w, %k {axis=0} : f32[7,2100]
  %2 = scatter_add %x, %y {axis=1} : f32[3,11,48]
  return %0, %1, %2
}`, 3, -3, 60) // indices past the table are clamped
	got := runEmu(t, f, args)
	for i := range got {
		if msg := diff(got[i], want[i], 0); msg != "" {
			t.Errorf("%s: %s", f.ResultNames[i], msg)
		}
	}
}

// TestGPUMMATiles runs tensor-core dots (bf16 and f16, batched, an
// operand read transposed, shapes that are not multiples of a tile) with
// each tile XLC_GPU_MMA may name on the emulator: 64x64 (the default)
// from 2×2 warps, 128x128 from 2×4 and 128x64 from 2×2 with 64×32 per
// warp. Each matches the interpreter.
func TestGPUMMATiles(t *testing.T) {
	needLLVM(t)
	f, args, want := emuCase(t, `func @mma(%h: bf16[150,72], %k: bf16[72,200], %p: f16[3,130,48], %q: f16[3,90,48]) -> (hd: f32[150,200], fd: f32[3,130,90]) {
  %0 = dot %h, %k {batch=[[],[]], contract=[[1],[0]], out=f32} : f32[150,200]
  %1 = dot %p, %q {batch=[[0],[0]], contract=[[2],[2]], out=f32} : f32[3,130,90]
  return %0, %1
}`, 4, -2, 2)
	terms := absTerms(t, f, args)
	for _, tile := range []string{"", "128x128", "128x64"} {
		t.Run("tile="+tile, func(t *testing.T) {
			t.Setenv("XLC_GPU_MMA", tile)
			got := runEmu(t, f, args)
			for i := range got {
				if msg := diffAbs(got[i], want[i], 1e-5, terms[i].F); msg != "" {
					t.Errorf("%s: %s", f.ResultNames[i], msg)
				}
			}
		})
	}
}

// emuCase parses function text, draws its arguments uniformly from
// [lo, hi) with seed and runs the interpreter on them: the function, its
// arguments and the results the emulated kernels must match.
func emuCase(t *testing.T, text string, seed, lo, hi int64) (*ir.Func, []*interp.Tensor, []*interp.Tensor) {
	t.Helper()
	f, err := ir.ParseFunc(text)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(seed))
	args := make([]*interp.Tensor, len(f.Params))
	for i, p := range f.Params {
		args[i] = randomTensor(r, p.Type, lo, hi)
	}
	want, err := interp.Run(f, args)
	if err != nil {
		t.Fatal(err)
	}
	return f, args, want
}
