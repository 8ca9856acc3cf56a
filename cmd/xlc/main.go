// Command xlc compiles .xl transformer models into training steps and runs
// them. `xlc help` lists the commands.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"xlc/parser"
	"xlc/passes"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `xlc compiles transformer models written in the .xl language.

Usage:
  xlc build MODEL.xl [-D key=value]... [--func=train_step|forward] [--emit=ir]
            [-o FILE] [--verify] [--dump-after=REGEX --dump-dir=DIR]
            [--fuse [--fusion-fuel=N] [-d fusion]]
      Parse the model, derive the whole training step (forward, backward,
      penalties, task combination, optimizer, loss scaling) as one graph, run
      the pass pipeline and write the IR text to FILE or standard output.
      --func=forward gives the forward pass alone. Prints a summary on
      standard error. --fuse groups the instructions into kernels (fused
      functions, printed after the function); -d fusion prints each fusion
      decision and its reason on standard error; --fusion-fuel=N takes only
      the first N decisions, to bisect a miscompile.
  xlc build MODEL.xl [-D key=value]... -o FILE.xlc [--cpu CPU]
      Write a bundle (-o FILE.xlc or --bundle): the model source and
      defines, the train step and forward pass as the cpu backend compiles
      them (IR text and native shared objects) and the target CPU, for
      xlc train --bundle. Needs LLVM 19.
  xlc train MODEL.xl [-D key=value]... [--data PATH] [--steps N] [--out DIR]
            [--seed S] [--resume] [--eval-every N] [--ckpt-every N]
            [--backend auto|cpu|interp]
  xlc train --bundle FILE.xlc [--data PATH] [--steps N] [--out DIR] [--resume] ...
      Train on byte-level text (a file or a folder; built-in generated text
      when --data is absent). --backend auto (the default) compiles to native
      code (cpu) when LLVM 19 is installed and otherwise warns and runs the
      reference interpreter (interp). --bundle runs a bundle's prebuilt
      kernels without the compiler or LLVM. DIR receives
      checkpoint.safetensors, metrics.jsonl and loss.png. Ctrl-C saves a
      checkpoint; --resume continues bit-identically. Train settings
      (optimizer, lr, combiner, ...) come from the model's train section and
      can be overridden with -D like config values.
  xlc sample CHECKPOINT [--prompt TEXT] [--tokens N] [--temperature T]
      Generate text from a trained checkpoint.
  xlc run MODEL.xl [-D key=value]... [--seed S]
      Run the model's forward pass on the reference interpreter with
      parameters initialised and inputs drawn at random from seed S, and
      print every named output.
  xlc bench MODEL.xl [-D key=value]... [--steps N] [--warmup W] [--backend B]
      Time the train step alone (no validation, metrics or checkpoints) and
      print tokens/s.
  xlc fmt [-w] MODEL.xl...
      Print each model file in canonical form; -w rewrites the files.
  xlc help
      Show this text.

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
dynamic), scale_init (32768), scale_interval (2000).
`

// run is the whole CLI; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "build":
		err = cmdBuild(args[1:], stdout, stderr)
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "train":
		err = cmdTrain(args[1:], stdout, stderr)
	case "sample":
		err = cmdSample(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "fmt":
		err = cmdFmt(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "xlc: unknown command %q (try xlc help)\n", args[0])
		return 2
	}
	if err == flag.ErrHelp {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	return 0
}

// defines collects repeated -D key=value flags.
type defines []parser.Define

func (d *defines) String() string { return "" }

func (d *defines) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want -D key=value, have %q", s)
	}
	*d = append(*d, parser.Define{Key: k, Value: v})
	return nil
}

// parseInterspersed parses flags that may come before or after positional
// arguments (xlc build model.xl -D layers=2), returning the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// compile reads and elaborates one model file's forward pass; train
// settings may be overridden too, though only training uses them.
func compile(path string, defs defines) (*parser.Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("xlc: %v", err)
	}
	return parser.Compile(path, src, defs, passes.TrainKeys()...)
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("xlc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func defineSteps(n int64) parser.Define {
	return parser.Define{Key: "steps", Value: fmt.Sprint(n)}
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
