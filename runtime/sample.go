package runtime

import (
	"fmt"
	"math"

	"xlc/ir"
	"xlc/runtime/interp"
)

// Sample generates n bytes after prompt, one at a time, with the function f
// whose only result is the logits [B, S, V] of its input tokens [B, S] (row
// 0 is used). The context is the last S bytes so far, placed from position
// 0 (the model is causal, so what follows them does not matter); the next
// byte is drawn from softmax(logits/temperature) at the last context
// position, or is the argmax when temperature is 0. Inputs other than
// tokens get zeros; weights come from params. Deterministic in seed.
func Sample(exe Executable, f *ir.Func, params map[string]*interp.Tensor, prompt []byte, n int, temperature float64, seed uint64) ([]byte, error) {
	tok := f.Param("tokens")
	if tok == nil || tok.Type.Rank() != 2 {
		return nil, fmt.Errorf("sampling needs an input tokens: [batch, seq]")
	}
	if r := f.Results; len(r) != 1 || r[0].Type.Rank() != 3 || !r[0].Type.DType.IsFloat() ||
		r[0].Type.Shape[0] != tok.Type.Shape[0] || r[0].Type.Shape[1] != tok.Type.Shape[1] {
		return nil, fmt.Errorf("sampling needs a float logits result [batch, seq, vocab] matching tokens %v", tok.Type)
	}
	if temperature < 0 || math.IsNaN(temperature) {
		return nil, fmt.Errorf("temperature must be >= 0, have %v", temperature)
	}
	seq, vocab := tok.Type.Shape[1], f.Results[0].Type.Shape[2]
	if vocab > 256 {
		return nil, fmt.Errorf("sampling is byte-level: want vocab <= 256, have %d", vocab)
	}
	named := map[string]*interp.Tensor{}
	for _, p := range f.Params {
		if t := params[p.Name]; t != nil {
			named[p.Name] = t
		} else if p.Role() != "param" {
			named[p.Name] = interp.NewTensor(p.Type)
		}
	}
	text := append([]byte(nil), prompt...)
	if len(text) == 0 {
		text = []byte{'\n'}
	}
	start := len(text)
	u := interp.Uniform(seed, 0x73616d706c65, n)
	for k := 0; k < n; k++ {
		ctx := text[max(0, len(text)-seq):]
		ids := make([]int64, tok.Type.Shape.NumElements())
		for i, c := range ctx {
			ids[i] = int64(c)
		}
		named["tokens"] = interp.FromInts(tok.Type, ids)
		args, err := Args(f, named)
		if err != nil {
			return nil, err
		}
		res, err := exe.Run(args)
		if err != nil {
			return nil, err
		}
		row := res[0].F[(len(ctx)-1)*vocab : len(ctx)*vocab]
		text = append(text, byte(pick(row, temperature, u[k])))
	}
	return text[start:], nil
}

// pick draws an index from softmax(logits/temperature) with the uniform
// number r, or returns the argmax when temperature is 0.
func pick(logits []float64, temperature, r float64) int {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	if temperature == 0 {
		return best
	}
	p := make([]float64, len(logits))
	sum := 0.0
	for i, l := range logits {
		p[i] = math.Exp((l - logits[best]) / temperature)
		sum += p[i]
	}
	acc := 0.0
	for i := range p {
		acc += p[i] / sum
		if r < acc {
			return i
		}
	}
	return best
}
