package parser

import (
	"strings"

	"xlc/internal/suggest"
)

// namesInScope lists every name an expression evaluated in s can use: the
// scope's variables and functions, those of every enclosing scope (the
// config, the model's and the standard library's functions) and the
// builtins. It is the candidate list for "did you mean".
func namesInScope(s *scope) []string {
	var out []string
	for ; s != nil; s = s.parent {
		for k := range s.vars {
			out = append(out, k)
		}
	}
	for k := range builtins {
		out = append(out, k)
	}
	return out
}

// noParameter is the message for a keyword argument kw that the function
// fn does not take: the nearest of its parameters (and of also, keywords
// every call takes) when one is close, otherwise its parameters.
func noParameter(fn, kw string, params []string, also ...string) string {
	msg := fn + " has no parameter " + kw
	if h := suggest.Hint(kw, append(append([]string(nil), params...), also...)); h != "" {
		return msg + h
	}
	return msg + " (it takes " + strings.Join(params, ", ") + ")"
}
