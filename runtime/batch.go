package runtime

import (
	"fmt"
	"hash/fnv"

	"xlc/ir"
	"xlc/runtime/interp"
)

// MaskToken is the byte that replaces a masked position in masked-LM batches.
const MaskToken = 0

// maskRate is the fraction of positions a masked-LM batch predicts.
const maskRate = 0.15

// StepKey is the rng key of a step: a hash of the run's seed and the step, so
// dropout masks differ between steps and repeat exactly on resume.
func StepKey(seed uint64, step int64) int64 {
	h := fnv.New64a()
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(uint64(step) >> (8 * i))
	}
	h.Write(b[:])
	return int64(h.Sum64() >> 1)
}

// BindInputs fills the inputs of f for one step from text windows, by name:
//   - tokens [B, S] and targets [B, S]: a window of S+1 bytes and its shift by
//     one (next-byte prediction);
//   - with mlm_targets [B, S] present, masked-LM instead: mlm_targets is the
//     clean window, mlm_mask (bool [B, S]) marks 15% of the positions after
//     the first, and tokens has those positions replaced by MaskToken;
//   - pad_mask (bool [B, S]): all true (windows have no padding);
//   - labels [B] with range [lo, hi): lo + the window's first byte mod hi-lo;
//   - the rng key: StepKey(seed, step);
//   - any other input: RandomInputs with the seed mixed with the step.
//
// The result depends only on (dataset, split, seed, step).
func BindInputs(f *ir.Func, d *Dataset, split string, seed uint64, step int64) (map[string]*interp.Tensor, error) {
	out := map[string]*interp.Tensor{}
	tok := f.Param("tokens")
	var tokens, targets []int64
	if tok != nil {
		if tok.Type.Rank() != 2 || !tok.Type.DType.IsInt() {
			return nil, fmt.Errorf("input tokens must be an integer [batch, seq] tensor, have %v", tok.Type)
		}
		if r := tok.Attrs.Ints("range"); len(r) == 2 && (r[0] > 0 || r[1] < 256) {
			return nil, fmt.Errorf("input tokens has range %d..%d, but byte-level text needs 0..256 (set vocab = 256)", r[0], r[1])
		}
		b, s := tok.Type.Shape[0], tok.Type.Shape[1]
		if len(d.Train) < s+1 || len(d.Val) < s+1 {
			return nil, fmt.Errorf("the data (%s) is too short for windows of seq+1 = %d bytes", d.Source, s+1)
		}
		tokens, targets = d.Batch(split, b, s, seed, step)
	}
	random, err := RandomInputs(f, seed^uint64(StepKey(seed, step)))
	if err != nil {
		return nil, err
	}
	mlm := f.Param("mlm_targets") != nil
	for _, p := range f.Params {
		t := p.Type
		switch {
		case p.Role() == "rng":
			out[p.Name] = interp.FromInts(t, []int64{StepKey(seed, step)})
		case p.Role() != "input":
		case tok == nil:
			out[p.Name] = random[p.Name]
		case p.Name == "tokens" && mlm:
			masked := append([]int64(nil), tokens...)
			for i, m := range mlmMask(tok.Type.Shape, seed, step) {
				if m == 1 {
					masked[i] = MaskToken
				}
			}
			out[p.Name] = interp.FromInts(t, masked)
		case p.Name == "tokens":
			out[p.Name] = interp.FromInts(t, tokens)
		case p.Name == "targets" && sameShape(p, tok):
			out[p.Name] = interp.FromInts(t, targets)
		case p.Name == "mlm_targets" && sameShape(p, tok):
			out[p.Name] = interp.FromInts(t, tokens)
		case p.Name == "mlm_mask" && sameShape(p, tok) && t.DType == ir.Bool:
			out[p.Name] = interp.FromInts(t, mlmMask(t.Shape, seed, step))
		case p.Name == "pad_mask" && sameShape(p, tok) && t.DType == ir.Bool:
			ones := make([]int64, t.Shape.NumElements())
			for i := range ones {
				ones[i] = 1
			}
			out[p.Name] = interp.FromInts(t, ones)
		case p.Name == "labels" && t.DType.IsInt() && t.Rank() == 1 && t.Shape[0] == tok.Type.Shape[0]:
			lo, k := int64(0), int64(2)
			if r := p.Attrs.Ints("range"); len(r) == 2 && r[1] > r[0] {
				lo, k = int64(r[0]), int64(r[1]-r[0])
			}
			s := tok.Type.Shape[1]
			labels := make([]int64, t.Shape[0])
			for i := range labels {
				labels[i] = lo + tokens[i*s]%k
			}
			out[p.Name] = interp.FromInts(t, labels)
		default:
			out[p.Name] = random[p.Name]
		}
	}
	return out, nil
}

func sameShape(p, q *ir.Value) bool {
	return p.Type.Shape.Equal(q.Type.Shape) && p.Type.DType != ir.Invalid
}

// mlmMask marks maskRate of the positions of a [B, S] batch, never position 0.
func mlmMask(s ir.Shape, seed uint64, step int64) []int64 {
	n := s.NumElements()
	u := interp.Uniform(seed^0x5bd1e995, uint64(step), n)
	m := make([]int64, n)
	for i := range m {
		if i%s[len(s)-1] != 0 && u[i] < maskRate {
			m[i] = 1
		}
	}
	return m
}
