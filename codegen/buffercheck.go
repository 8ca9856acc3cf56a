package codegen

import (
	"fmt"

	"xlc/ir"
)

// CheckBuffers checks that a runtime's buffers agree with what f's kernels
// assume, same saying whether two values share one buffer: each alias
// shares its operand's, and a kernel's operand shares a result's buffer
// exactly where Kernel.InPlace says, since the kernel reads such an
// operand through the result pointer and every other pointer is noalias.
func (p *Program) CheckBuffers(f *ir.Func, same func(a, b *ir.Value) bool) error {
	for _, a := range p.Aliases {
		if !same(f.Body[a.Instr], a.Of) {
			return fmt.Errorf("@%s: %%%d is a no-op for codegen but has its own buffer in the plan", f.Name, a.Instr)
		}
	}
	for _, k := range p.Kernels {
		for j, a := range k.Args {
			for r, v := range k.Results {
				want, ok := k.InPlace[j]
				if shared := same(a, v); shared != (ok && want == r) {
					return fmt.Errorf("@%s: %%%d: operand %d shares the buffer of result %d: %v in the plan, %v for codegen", f.Name, k.Instr, j, r, shared, !shared)
				}
			}
		}
	}
	return nil
}
