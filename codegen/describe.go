package codegen

import (
	"fmt"
	"strings"

	"xlc/ir"
)

// The lowerings a kernel can get (Kernel.Lowering), for profiles.
const (
	LowerElemental     = "elemental"      // a loop over the result elements
	LowerRows          = "rows"           // a row kernel (rows.go)
	LowerReduce        = "reduce"         // each result element loops over the reduced axes
	LowerNaiveDot      = "naive-dot"      // each result element loops over the contracting axes
	LowerFastDot       = "fast-dot"       // the blocked f32 matmul (fastdot.go)
	LowerScatter       = "scatter"        // scatter_add by result rows
	LowerRng           = "rng"            // Philox blocks
	LowerFastDotEp     = "fast-dot+e"     // the fast dot and its elementwise epilogue
	LowerFastDotRows   = "fast-dot+r"     // the fast dot and a row kernel over the rows it computed
	LowerTiledDot      = "tiled-dot"      // the GPU's tiled dot and its elementwise epilogue (gpudot.go)
	LowerMMADot        = "mma-dot"        // the GPU's tensor-core dot of bf16 or f16 operands (gpumma.go)
	LowerTiledDotRows  = "tiled-dot+r"    // the GPU's dot of strips of rows, then a row kernel on them (gpudotrows.go)
	LowerAttention     = "attention"      // scores, softmax and P·V by strips of query rows (attention.go)
	LowerAttentionGrad = "attention-grad" // P, dS and the three gradients per head (attention_grad.go)
	// LowerFlashAttention: the GPU's attention whose softmax is online,
	// a key tile at a time, P never held beyond a tile (gpuflash.go).
	LowerFlashAttention = "flash-attention"
	// LowerFlashAttentionGrad: the GPU's attention backward a key tile at
	// a time in shared memory (gpuflash_grad.go).
	LowerFlashAttentionGrad = "flash-attention-grad"
	// LowerRecompute: a reduce fusion without a row plan, each result
	// element recomputing the reductions it depends on (work: result size
	// times row length). Compile warns about each; the fusion pass should
	// only form reduce kernels the row lowering takes.
	LowerRecompute = "recompute"
)

// Describe is a one-line summary of instruction v for profiles: its op
// (for a fusion, its kind and the callee's ops in order, constants,
// broadcasts and reshapes left out), the operand and result shapes, and a
// dot's contracting and batch dimensions.
func Describe(v *ir.Value) string {
	var b strings.Builder
	if v.Op == ir.OpFusion && v.Callee != nil {
		fmt.Fprintf(&b, "fusion/%s[", v.Attrs.String("kind"))
		n := 0
		for _, w := range v.Callee.Body {
			switch w.Op {
			case ir.OpConstant, ir.OpBroadcast, ir.OpReshape, ir.OpIota:
				continue
			}
			if n > 0 {
				b.WriteByte(' ')
			}
			if n == 12 {
				fmt.Fprintf(&b, "…+%d", countOps(v.Callee)-n)
				break
			}
			b.WriteString(w.Op.String())
			if w.Op == ir.OpDot {
				b.WriteString(dotDims(w))
			}
			n++
		}
		b.WriteByte(']')
	} else {
		b.WriteString(v.Op.String())
		if v.Op == ir.OpDot {
			b.WriteString(dotDims(v))
		}
		if v.Op == ir.OpReduceSum || v.Op == ir.OpReduceMax || v.Op == ir.OpTranspose {
			b.WriteString(" " + v.Attrs.Format())
		}
	}
	b.WriteString(" (")
	for i, a := range v.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Type.String())
	}
	b.WriteString(") → " + v.Type.String())
	return b.String()
}

func countOps(c *ir.Func) int {
	n := 0
	for _, w := range c.Body {
		switch w.Op {
		case ir.OpConstant, ir.OpBroadcast, ir.OpReshape, ir.OpIota:
			continue
		}
		n++
	}
	return n
}

// dotDims writes a dot's contracting and batch dimensions compactly:
// {c=[[2],[1]] b=[[0],[0]]}.
func dotDims(v *ir.Value) string {
	s := fmt.Sprintf("{c=%v", v.Attrs.IntLists("contract"))
	if b := v.Attrs.IntLists("batch"); len(b) > 0 && len(b[0]) > 0 {
		s += fmt.Sprintf(" b=%v", b)
	}
	return s + "}"
}
