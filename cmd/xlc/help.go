package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// commands holds each command's entry in xlc help, in order: its synopsis,
// naming every flag it takes, and what it does. xlc CMD --help prints the
// same entry followed by each flag's default and description.
var commands = []struct{ name, help string }{
	{"build", `  xlc build MODEL.xl [-D key=value]... [--func=train_step|forward]
            [--emit=ir|ll|asm|ptx [--cpu CPU|--gpu GPU|--target cpu|cuda]] [-o FILE]
            [--verify] [--dump-after=REGEX [--dump-dir=DIR]]
            [--fuse [--fusion-fuel=N] [-d fusion]] [-d precision]
      Parse the model, derive the whole training step (forward, backward,
      penalties, task combination, optimizer, loss scaling) as one graph, run
      the pass pipeline and write the IR text to FILE or standard output.
      --func=forward gives the forward pass alone. Prints a summary on
      standard error. --dump-after writes the IR after each matching pass
      into DIR (created if need be). --fuse groups the instructions into
      kernels (fused functions, printed after the function); -d fusion
      prints each fusion decision and its reason on standard error;
      --fusion-fuel=N takes only the first N decisions, to bisect a
      miscompile. With -D precision=bf16 or f16, -d precision prints which
      dots read their operands in half precision and why the others do
      not, and that remat auto recomputes large activations (half
      precision's default; -D remat=attention keeps them). --emit=ll
      writes the fused function's kernels as the LLVM module for --cpu's
      target (default this machine's) or --gpu's (sm_80,
      sm_90, a100, h100, h200; --target cuda alone: the GPU's), --emit=asm its
      assembly, --emit=ptx the PTX for --gpu (default: this machine's GPU,
      else sm_80).
  xlc build MODEL.xl [-D key=value]... -o FILE.xlc [--bundle]
            [--cpu CPU | --target cuda [--gpu GPU]]
      Write a bundle (-o FILE.xlc, or --bundle with any -o): the model source
      and defines, the train step and forward pass as the backends compile
      them (IR text and kernels) and the target, for xlc train --bundle and
      xlc bench --bundle. The kernels are native shared objects for --cpu's
      CPU, or with --target cuda PTX for --gpu's GPU (default: this
      machine's GPU, else sm_80), which needs CUDA's libdevice but no GPU.
      Needs LLVM 19. --target cuda --emit=ptx writes the PTX alone.
`},
	{"train", `  xlc train MODEL.xl [-D key=value]... [--data PATH] [--steps N] [--out DIR]
            [--resume | --force] [--seed S] [--stop-at N] [--eval-every N]
            [--eval-batches N] [--ckpt-every N] [--backend auto|cuda|cpu|interp]
            [--cpu CPU] [--verify]
  xlc train --bundle FILE.xlc [--data PATH] [--steps N] [--out DIR] [--resume] ...
      Train on byte-level text (a file or a folder; built-in generated text
      when --data is absent). --backend auto (the default) runs on the GPU
      (cuda) when this xlc was built with CUDA (README), a GPU is present
      and LLVM 19 is installed; else it compiles to native code (cpu) for --cpu
      (default: this machine) when LLVM 19 is installed, and otherwise warns
      and runs the reference interpreter (interp). --bundle runs a bundle's
      prebuilt kernels without the compiler or LLVM: a GPU bundle on cuda.
      DIR receives checkpoint.safetensors, metrics.jsonl and loss.png;
      without --out each run gets a new folder, out/MODEL-N. A DIR that
      holds a run's files is refused, saying how that run differs, unless
      --resume continues it (bit-identically; without --out, the newest run
      of the model) or --force replaces it. Ctrl-C, or --stop-at N, stops
      with a checkpoint. --eval-every N validates on --eval-batches batches
      every N steps, --ckpt-every N checkpoints; --verify checks the IR
      after every pass. Train settings (optimizer, lr, combiner, ...) come
      from the model's train section and can be overridden with -D like
      config values.
`},
	{"sample", `  xlc sample CHECKPOINT [--prompt TEXT] [--tokens N] [--temperature T] [--seed S]
      Generate text from a trained checkpoint.
`},
	{"run", `  xlc run MODEL.xl [-D key=value]... [--seed S]
      Run the model's forward pass on the reference interpreter with
      parameters initialised and inputs drawn at random from seed S, and
      print every named output.
`},
	{"bench", `  xlc bench MODEL.xl [-D key=value]... [--steps N] [--warmup W]
            [--backend auto|cuda|cpu|interp] [--fuse on|off] [--cpu CPU]
  xlc bench --bundle FILE.xlc [--steps N] [--warmup W] [--backend auto|cuda|cpu]
      Time the train step alone (no validation, metrics or checkpoints) and
      print tokens/s on one line. --backend as for xlc train; --bundle times
      a bundle's kernels (a GPU bundle on cuda).
`},
	{"fmt", `  xlc fmt [-w] MODEL.xl...
      Print each model file in canonical form; -w rewrites the files.
`},
	{"experiment", `  xlc experiment [NAME [--quick] [--out DIR] [--data FILE]
                 [--backend auto|cpu|interp]]
      Without a name, list the experiments. With one, run it: train its
      models, write DIR/results.jsonl, plots and DIR/REPORT.md, whose
      verdicts are computed from results.jsonl. --quick is a smoke test,
      on the interpreter unless --backend says otherwise.
`},
	{"help", `  xlc help [COMMAND]
      Show this text, or a command's with its flags (as xlc COMMAND --help).
`},
}

const usageHead = `xlc compiles transformer models written in the .xl language.

Usage:
`

const usageTail = `
Every config value of a model can be overridden: -D layers=24 -D norm=post.
Try:
  xlc run models/gpt.xl -D batch=2 -D seq=16
  xlc build models/gpt.xl -D layers=2 --emit=ir | less
  xlc train models/gpt.xl -D layers=2 -D d=64 -D seq=64 --steps 300 --out out/gpt
  xlc sample out/gpt/checkpoint.safetensors --prompt "The "

Train settings (defaults in parentheses): optimizer (adamw: sgd, adamw, eg,
eg_adaptive, eg_adam), lr (3e-4), weight_decay (0.01, rank >= 2 only unless
decay_all), beta1 beta2 eps, momentum nesterov (sgd), clip (1.0), schedule
(constant: cosine, linear), warmup (0), steps (1000), min_lr_ratio (0.1),
eg_gamma (0 = auto), eg_nonneg, losses, combiner (sum: initial, realtime,
gradnorm, minnorm, main_aux), weights, fw_iters (20), input_penalty,
input_penalty_on (a tap name), param_penalty, loss_scale (none: static,
dynamic), scale_init (32768), scale_interval (2000), nan_patience (20: stop
after that many steps in a row without a finite loss; 0 never stops),
precision (f32: bf16, f16 — matmuls read their operands in half precision
and sum in f32; f16 implies loss_scale dynamic), remat (attention: the
backward recomputes attention's probabilities on the cpu backend;
activations: large activations too, for less memory and a few percent of
speed).
`

// usage is the text of xlc help: every command's entry.
func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range commands {
		b.WriteString(c.help)
	}
	b.WriteString(usageTail)
	return b.String()
}

// commandHelp is a command's entry in xlc help.
func commandHelp(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.help
		}
	}
	return ""
}

// errHelpShown reports that a command printed its --help: xlc exits 0.
var errHelpShown = errors.New("help shown")

// usageError is a mistake on the command line (an unknown flag, a bad
// value): xlc exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flagSet is a command's flags; --help prints its entry and the flags to
// stdout, and a flag error is one line.
type flagSet struct {
	*flag.FlagSet
	name   string
	stdout io.Writer
}

func newFlags(name string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet("xlc "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{fs, name, stdout}
}

// printHelp writes the command's entry in xlc help and its flags.
func (fs *flagSet) printHelp() {
	fmt.Fprintf(fs.stdout, "Usage:\n%s", commandHelp(fs.name))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(fs.stdout, "\nFlags:\n")
	fs.SetOutput(fs.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses flags that may come before or after positional arguments
// (xlc build model.xl -D layers=2), returning the positionals. -h, -help
// and --help print the command's help and return errHelpShown.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fs.printHelp()
				return nil, errHelpShown
			}
			return nil, usageError{fmt.Sprintf("xlc %s: %v (see xlc %s --help)", fs.name, err, fs.name)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
