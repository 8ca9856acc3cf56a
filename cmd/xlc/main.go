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
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `xlc compiles transformer models written in the .xl language.

Usage:
  xlc build MODEL.xl [-D key=value]... [--emit=ir] [-o FILE] [--verify]
            [--dump-after=REGEX --dump-dir=DIR]
      Parse the model, lower it to IR, run the pass pipeline and write the
      result (--emit=ir: the IR text form) to FILE or standard output.
      Prints a summary (instructions, parameters) on standard error.
  xlc run MODEL.xl [-D key=value]... [--seed S]
      Run the model's forward pass on the reference interpreter with
      parameters initialised and inputs drawn at random from seed S, and
      print every named output.
  xlc fmt [-w] MODEL.xl...
      Print each model file in canonical form; -w rewrites the files.
  xlc help
      Show this text.

Every config value of a model can be overridden: -D layers=24 -D norm=post.
Try:
  xlc run models/gpt.xl -D batch=2 -D seq=16
  xlc build models/gpt.xl -D layers=2 --emit=ir | less
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

// compile reads and elaborates one model file.
func compile(path string, defs defines) (*parser.Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("xlc: %v", err)
	}
	return parser.Compile(path, src, defs)
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
