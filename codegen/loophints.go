package codegen

import (
	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/metadata"
	"github.com/llir/llvm/ir/types"
)

// A row kernel's passes over a row run tens to hundreds of iterations,
// often not a multiple of the vector width: a causal row ends at the
// diagonal. opt's own choice for them, four vectors an iteration and a
// scalar rest of up to four vectors less one element, runs short rows
// mostly scalar. Their loops carry hints instead (LLVM's llvm.loop
// metadata): one vector an iteration, and on AVX-512, whose masked loads
// and stores cost what plain ones do, the rest folded into a masked last
// iteration. AVX2's masked stores are slow on AMD, so there the rest stays
// scalar, at most a vector less one element.

// rowHints returns the hints of a row loop for m's target, registered in
// the module once, or nil where the loop keeps opt's defaults.
func (m *module) rowHints() []metadata.Field {
	if m.t.gpuKernels() || m.t.Arch != "amd64" {
		return nil
	}
	if m.hints == nil {
		m.hints = []metadata.Field{m.hint("llvm.loop.interleave.count", constant.NewInt(types.I32, 1))}
		m.hints = append(m.hints, m.widthHint()...)
		if m.t.Vec >= 16 {
			m.hints = append(m.hints, m.hint("llvm.loop.vectorize.predicate.enable", constant.True))
		}
	}
	return m.hints
}

// hint registers one loop hint, the pair (name, v), in the module.
func (m *module) hint(name string, v constant.Constant) metadata.Field {
	h := &metadata.Tuple{MetadataID: -1, Fields: []metadata.Field{&metadata.String{Value: name}, v}}
	m.m.MetadataDefs = append(m.m.MetadataDefs, h)
	return h
}

// widthHint returns the hint that makes opt vectorize a loop at the
// target's width, registered in the module once: its cost model declines
// loops that round f32 to bf16 by LLVM's fptrunc to bfloat (convert with
// cvtBF16), and left alone they run one element at a time.
func (m *module) widthHint() []metadata.Field {
	if m.width == nil {
		m.width = []metadata.Field{m.hint("llvm.loop.vectorize.width", constant.NewInt(types.I32, int64(m.t.Vec)))}
	}
	return m.width
}

// hintLoop attaches hints to the loop whose back edge is br: a loop ID
// of its own (LLVM's loop IDs are distinct nodes that list themselves
// first), or nothing when hints is empty.
func (m *module) hintLoop(br *llir.TermBr, hints []metadata.Field) {
	if len(hints) == 0 {
		return
	}
	id := &metadata.Tuple{MetadataID: -1, Distinct: true}
	id.Fields = append([]metadata.Field{id}, hints...)
	m.m.MetadataDefs = append(m.m.MetadataDefs, id)
	br.Metadata = append(br.Metadata, &metadata.Attachment{Name: "llvm.loop", Node: id})
}
