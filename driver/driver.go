// Package driver is the compiler driver: it turns a model file into what
// the runtime runs, the train step and the evaluation forward pass, each
// after the pass pipeline, with the model's train settings resolved.
package driver

import (
	"fmt"
	"io"

	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/trainstep"
)

// Model is a model compiled for training.
type Model struct {
	Name    string
	Path    string
	Source  []byte
	Defines []parser.Define
	Config  []parser.Setting
	Train   trainstep.Config
	// Step is train_step (see trainstep.Build); Eval is the forward
	// pass returning the model's outputs. Both went through the pipeline.
	Step *ir.Func
	Eval *ir.Func
}

// Options are the compiler settings of a build.
type Options struct {
	// Passes are the pipeline's options; the model's precision setting
	// sets Precision.
	Passes passes.Options
	// Log, when set, receives notes on settings the compiler changed.
	Log io.Writer
}

// Compile builds the train step and the evaluation function of the model in
// src. defines override config values and train settings alike.
func Compile(path string, src []byte, defines []parser.Define, opt Options) (*Model, error) {
	prog, err := parser.Compile(path, src, defines, trainstep.ConfigKeys()...)
	if err != nil {
		return nil, err
	}
	cfg, err := TrainConfig(prog)
	if err != nil {
		return nil, err
	}
	if cfg.Precision == "f16" && cfg.LossScale == "none" {
		// f16's smallest normal is 6e-5: unscaled, small gradients
		// flush to zero.
		cfg.LossScale = "dynamic"
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "%s: precision f16 trains with loss_scale dynamic (static keeps one scale)\n", path)
		}
	}
	if d, _ := ir.ParseDType(cfg.Precision); d != ir.F32 {
		opt.Passes.Precision = d
	}
	opt.Passes.RematActivations = cfg.RematActivations()
	if cfg.Remat == "auto" && opt.Passes.RematActivations && opt.Passes.PrecisionLog != nil {
		fmt.Fprintf(opt.Passes.PrecisionLog, "remat auto: precision %s recomputes large activations for the backward (remat = \"attention\" keeps them)\n", cfg.Precision)
	}
	m := &Model{Name: prog.Name, Path: path, Source: src, Defines: defines, Config: prog.Config, Train: cfg}
	if err := trainstep.Build(prog.Func, prog.Taps, &m.Train); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m.Step = prog.Func
	if err := passes.Run(m.Step, opt.Passes); err != nil {
		return nil, fmt.Errorf("%s: train step: %v", path, err)
	}
	eval, err := parser.Compile(path, src, defines, trainstep.ConfigKeys()...)
	if err != nil {
		return nil, err
	}
	m.Eval = eval.Func
	if err := passes.Run(m.Eval, opt.Passes); err != nil {
		return nil, fmt.Errorf("%s: forward: %v", path, err)
	}
	return m, nil
}

// TrainConfig resolves a program's train settings over the defaults; an
// invalid one is reported at the place it was written.
func TrainConfig(prog *parser.Program) (trainstep.Config, error) {
	cfg := trainstep.DefaultConfig()
	for _, s := range prog.Train {
		if err := cfg.Set(s.Name, s.Value); err != nil {
			return cfg, fmt.Errorf("%s:%d:%d: %v", s.Pos.Filename, s.Pos.Line, s.Pos.Column, err)
		}
	}
	return cfg, nil
}

// Tapped compiles the forward pass with the tapped value name as its only
// result (e.g. "logits" for sampling), after the pipeline.
func Tapped(path string, src []byte, defines []parser.Define, name string) (*ir.Func, error) {
	prog, err := parser.Compile(path, src, defines, trainstep.ConfigKeys()...)
	if err != nil {
		return nil, err
	}
	v := prog.Taps[name]
	if v == nil {
		return nil, fmt.Errorf("%s: the model has no tap %q (name it with tap(%q, x))", path, name, name)
	}
	f := prog.Func
	f.Results, f.ResultNames = []*ir.Value{v}, []string{name}
	if err := passes.Run(f, passes.Options{}); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return f, nil
}
