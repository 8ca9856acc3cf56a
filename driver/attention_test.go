package driver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/cpu"
)

// attentionCase is one shape of the stdlib's attention for
// TestFusedAttention.
type attentionCase struct {
	seq, dh, heads  int
	causal, padding bool
	precision       string
	dropout         float64
	lowering        string // the attention kernel's, "" when it must not fuse
	backward        int    // attention_grad kernels: 1, or 0 where the backward stays apart
	train           string // more train settings
	why             string // what -d fusion says when a kernel stays apart
	name, src       string // a model of its own (its name and source), else attentionModel's
	sumD            bool   // without the attention-d pass: dS's kernel sums D (f32 only)
}

// checkSumsD fails t unless every attention_grad kernel of f sums each
// row's D itself (a reduction) exactly when want: else D comes computed
// (passes' attentionD).
func checkSumsD(t *testing.T, f *ir.Func, want bool) {
	t.Helper()
	for _, v := range f.Body {
		if v.Op != ir.OpFusion || v.Attrs.String("kind") != ir.FusionAttentionGrad {
			continue
		}
		if sums := slices.ContainsFunc(v.Callee.Body, func(w *ir.Value) bool { return w.Op == ir.OpReduceSum }); sums != want {
			t.Errorf("the backward kernel sums D itself: %v, want %v", sums, want)
		}
	}
}

// withoutD is opt naming the passes it runs (f32, fused, attention)
// without attention-d, so that dS's kernel sums each row's D itself, as
// it does for a form that pass does not prove.
func withoutD(opt passes.Options) passes.Options {
	for _, n := range passes.Names() {
		if n != "attention-d" && n != "precision" {
			opt.Passes = append(opt.Passes, n)
		}
	}
	return opt
}

// attentionModel is a model whose loss reads one attention layer: inputs x
// and targets y, a padding mask when pad is set.
func attentionModel(c attentionCase) string {
	mask := ""
	if c.padding {
		mask = ", mask = pad"
	}
	return fmt.Sprintf(`model att {
  config {
    batch = 2
    seq = %d
    d = %d
    heads = %d
  }
  input x: f32[batch, seq, d]
  input y: f32[batch, seq, d]
  input pad: bool[batch, seq]
  let h = attention(x, heads, causal = %v%s, dropout_p = %g)
  output loss = mean((h - y) * (h - y)) + 0.0 * mean(f32(pad))
}

train {
  optimizer = "sgd"
  lr = 0.5
  precision = "%s"
  %s
}
`, c.seq, c.dh*c.heads, c.heads, c.causal, mask, c.dropout, c.precision, c.train)
}

// TestFusedAttention trains one attention layer of each shape on the cpu
// backend, where the forward is one attention kernel and the backward
// recomputes the probabilities, and on the interpreter (unfused): losses
// agree at every step. Sequence lengths are not multiples of a strip of
// query rows; head dims run from 16 to 128; causal and padding masks, on
// the strip lowering (the fast dot) and the row-at-a-time one (small
// products), bf16 and f16 products, dropout (both kernels draw the mask,
// the same as the interpreter's). Each row's D comes computed into the
// backward kernel (one case runs without that pass). With a penalty's
// second backward, that backward stays apart, and -d fusion says why.
func TestFusedAttention(t *testing.T) {
	needToolchain(t)
	popt := cpu.Backend{}.Passes()
	cases := []attentionCase{
		{seq: 40, dh: 16, heads: 2, causal: true, precision: "f32", lowering: codegen.LowerAttention, backward: 1},
		{seq: 100, dh: 64, heads: 2, causal: true, precision: "f32", lowering: codegen.LowerAttention, backward: 1},
		{seq: 72, dh: 32, heads: 4, padding: true, precision: "f32", lowering: codegen.LowerAttention, backward: 1},
		{seq: 50, dh: 128, heads: 1, causal: true, padding: true, precision: "f32", lowering: codegen.LowerAttention, backward: 1},
		{seq: 36, dh: 16, heads: 2, causal: true, padding: true, precision: "f32", lowering: codegen.LowerAttention, backward: 1},
		{seq: 96, dh: 32, heads: 2, causal: true, precision: "bf16", lowering: codegen.LowerAttention, backward: 1},
		{seq: 24, dh: 16, heads: 2, causal: true, precision: "f16", lowering: codegen.LowerAttention, backward: 1},
		// Dropout: both kernels draw the mask themselves.
		{seq: 40, dh: 16, heads: 2, causal: true, precision: "f32", dropout: 0.1, lowering: codegen.LowerAttention, backward: 1},
		{seq: 100, dh: 64, heads: 2, causal: true, precision: "f32", dropout: 0.1, lowering: codegen.LowerAttention, backward: 1},
		{seq: 72, dh: 32, heads: 2, padding: true, precision: "bf16", dropout: 0.2, lowering: codegen.LowerAttention, backward: 1},
		{seq: 50, dh: 32, heads: 2, causal: true, padding: true, precision: "f32", dropout: 0.1, lowering: codegen.LowerAttention, backward: 1},
		// A gradient penalty differentiates the backward again: its second
		// backward reads dO·Vᵀ, so that backward stays unfused.
		{seq: 64, dh: 32, heads: 2, causal: true, precision: "f32", lowering: codegen.LowerAttention, train: "param_penalty = 0.1",
			why: "dO·Vᵀ has readers other than dS's kernel"},
		// Written by hand, a band off the diagonal.
		{name: "strict", src: strictModel, precision: "f32", lowering: codegen.LowerAttention, backward: 1},
		// dS's kernel summing D, as for a form attention-d does not prove.
		{seq: 100, dh: 64, heads: 2, causal: true, precision: "f32", dropout: 0.1, lowering: codegen.LowerAttention, backward: 1, sumD: true},
	}
	for _, c := range cases {
		name, src := fmt.Sprintf("seq%d_dh%d_h%d_causal%v_pad%v_%s_drop%g_sumD%v", c.seq, c.dh, c.heads, c.causal, c.padding, c.precision, c.dropout, c.sumD), []byte(attentionModel(c))
		if c.src != "" {
			name, src = c.name, []byte(c.src)
		}
		t.Run(name, func(t *testing.T) {
			ref, err := Compile("att.xl", src, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			opt := Options{Passes: popt}
			if c.sumD {
				opt.Passes = withoutD(popt)
			}
			opt.Passes.FusionLog = &log
			fused, err := Compile("att.xl", src, nil, opt)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, v := range fused.Step.Body {
				if v.Op == ir.OpFusion {
					kinds[v.Attrs.String("kind")]++
				}
			}
			checkSumsD(t, fused.Step, c.sumD)
			fwd, bwd := kinds[ir.FusionAttention], kinds[ir.FusionAttentionGrad]
			switch {
			case c.lowering != "" && (fwd != 1 || bwd != c.backward):
				t.Fatalf("%d attention and %d attention_grad kernels, want 1 and %d", fwd, bwd, c.backward)
			case c.lowering == "" && fwd+bwd != 0:
				t.Fatalf("%d attention kernels, want none", fwd+bwd)
			case !strings.Contains(log.String(), c.why):
				t.Fatalf("-d fusion does not say why attention stays apart (%q):\n%s", c.why, log.String())
			}
			if c.lowering != "" {
				p, err := codegen.Compile(fused.Step, codegen.Options{})
				if err != nil {
					t.Fatal(err)
				}
				n := map[string]int{}
				for _, k := range p.Kernels {
					n[k.Lowering]++
				}
				// Under XLC_CPU=gpu-emu the kernels are the GPU's: flash.
				n[c.lowering] += n[codegen.LowerFlashAttention]
				n[codegen.LowerAttentionGrad] += n[codegen.LowerFlashAttentionGrad]
				if n[c.lowering] != 1 || n[codegen.LowerAttentionGrad] != c.backward {
					t.Fatalf("%d kernels lowered as %s and %d as %s, want 1 and %d", n[c.lowering], c.lowering, n[codegen.LowerAttentionGrad], codegen.LowerAttentionGrad, c.backward)
				}
			}
			fs := [2]*ir.Func{ref.Step, fused.Step}
			xs := [2]runtime.Executable{interpExec(t, ref.Step), loadCPU(t, fused.Step)}
			rel := matrixRel
			if c.precision != "f32" {
				rel = 1e-2
			}
			runLockstep(t, fs, xs, [2]string{"interp", "cpu"}, 5, rel)
			t.Logf("%d kernels", passes.Kernels(fused.Step))
		})
	}
}

// TestGPUAttention trains attention layers on the GPU emulator, whose
// attention kernels are the GPU's (a block of threads per strip of query
// rows forward, per head backward, strips in global scratch), against the
// interpreter: losses agree at every step. The kernels launch at most two
// blocks, so that each block loops over strips or heads and reuses its
// scratch.
func TestGPUAttention(t *testing.T) {
	needToolchain(t)
	saved := codegen.GPUUnitGrid
	codegen.GPUUnitGrid = 2
	defer func() { codegen.GPUUnitGrid = saved }()
	emu := cpu.Backend{CPU: "gpu-emu"}
	type gpuCase struct {
		name, src string
		rel       float64 // the losses' largest relative difference
		strips    bool    // XLC_GPU_ATTENTION=strips
		groups    int64   // codegen.GPUGradBlocks, when not 0
		sumD      bool    // without attention-d (withoutD; f32 only)
	}
	var cases []gpuCase
	for _, c := range []attentionCase{
		{seq: 100, dh: 64, heads: 2, causal: true, precision: "f32"},
		{seq: 72, dh: 32, heads: 2, padding: true, precision: "bf16", dropout: 0.2},
		{seq: 70, dh: 128, heads: 1, causal: true, padding: true, precision: "f16"},
		{seq: 40, dh: 16, heads: 3, causal: true, precision: "f32", dropout: 0.1},
	} {
		rel := matrixRel
		if c.precision != "f32" {
			rel = 1e-2
		}
		name := fmt.Sprintf("seq%d_dh%d_causal%v_pad%v_%s_drop%g", c.seq, c.dh, c.causal, c.padding, c.precision, c.dropout)
		cases = append(cases, gpuCase{name: name, src: attentionModel(c), rel: rel})
		cases = append(cases, gpuCase{name: name + "_strips", src: attentionModel(c), rel: rel, strips: true})
	}
	cases = append(cases, gpuCase{name: "strict", src: strictModel, rel: matrixRel}) // a band off the diagonal
	cases = append(cases, gpuCase{name: "strict_strips", src: strictModel, rel: matrixRel, strips: true})
	// Without the where, the first query row, which sees no key, spreads
	// over all of them: the key tiles wholly masked count.
	unmasked := strings.Replace(strictModel, "where(past, softmax(where(past, (q @ transpose(k)) * 0.17677, -1e9)), 0.0)", "softmax(where(past, (q @ transpose(k)) * 0.17677, -1e9))", 1)
	cases = append(cases, gpuCase{name: "strict_unmasked", src: unmasked, rel: matrixRel})
	// Two blocks share a head's three strips: the first takes two.
	cases = append(cases, gpuCase{name: "strict_groups", src: strictModel, rel: matrixRel, groups: 8})
	// dS's kernel summing D: the flash backward's first walk over the key
	// tiles adds each row's terms, with dropout.
	drop := attentionCase{seq: 100, dh: 64, heads: 2, causal: true, precision: "f32", dropout: 0.1}
	cases = append(cases, gpuCase{name: "sumD_drop", src: attentionModel(drop), rel: matrixRel, sumD: true})
	cases = append(cases, gpuCase{name: "strict_sumD", src: strictModel, rel: matrixRel, sumD: true})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.groups != 0 {
				saved := codegen.GPUGradBlocks
				codegen.GPUGradBlocks = c.groups
				defer func() { codegen.GPUGradBlocks = saved }()
			}
			lowering, gradLowering := codegen.LowerFlashAttention, codegen.LowerFlashAttentionGrad
			if c.strips {
				t.Setenv("XLC_GPU_ATTENTION", "strips")
				lowering, gradLowering = codegen.LowerAttention, codegen.LowerAttentionGrad
			}
			src := []byte(c.src)
			ref, err := Compile("att.xl", src, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			popt := emu.Passes()
			if c.sumD {
				popt = withoutD(popt)
			}
			fused, err := Compile("att.xl", src, nil, Options{Passes: popt})
			if err != nil {
				t.Fatal(err)
			}
			checkSumsD(t, fused.Step, c.sumD)
			p, err := codegen.Compile(fused.Step, codegen.Options{CPU: "gpu-emu"})
			if err != nil {
				t.Fatal(err)
			}
			n := map[string]int{}
			for _, k := range p.Kernels {
				n[k.Lowering]++
			}
			if n[lowering] != 1 || n[gradLowering] != 1 {
				t.Fatalf("%d kernels lowered as %s and %d as %s, want 1 each", n[lowering], lowering, n[gradLowering], gradLowering)
			}
			x, err := emu.Load(fused.Step)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { x.(interface{ Close() error }).Close() })
			fs := [2]*ir.Func{ref.Step, fused.Step}
			runLockstep(t, fs, [2]runtime.Executable{interpExec(t, ref.Step), x}, [2]string{"interp", "gpu-emu"}, 4, c.rel)
		})
	}
}

// strictModel is attention written by hand whose queries see only the
// keys strictly before themselves: its probabilities' band is off the
// diagonal by one, so the backward's sums over a strip of query rows
// start off a tile's edge.
const strictModel = `model att {
  config {
    batch = 2
    seq = 150
    d = 64
    heads = 2
  }
  input x: f32[batch, seq, d]
  input y: f32[batch, seq, d]
  let q = split_heads(linear(x, d, name = "q"), heads)
  let k = split_heads(linear(x, d, name = "k"), heads)
  let v = split_heads(linear(x, d, name = "v"), heads)
  let past = iota([seq, seq], 0) > iota([seq, seq], 1)
  let p = where(past, softmax(where(past, (q @ transpose(k)) * 0.17677, -1e9)), 0.0)
  let h = linear(merge_heads(p @ v), d, name = "o")
  output loss = mean((h - y) * (h - y))
}

train {
  optimizer = "sgd"
  lr = 0.5
}
`
