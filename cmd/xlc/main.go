// Command xlc compiles .xl transformer models into training steps and runs
// them. `xlc help` lists the commands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"xlc/parser"
	"xlc/trainstep"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the whole CLI; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
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
	case "experiment":
		err = cmdExperiment(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		err = cmdHelp(args[1:], stdout)
	default:
		fmt.Fprintf(stderr, "xlc: unknown command %q (try xlc help)\n", args[0])
		return 2
	}
	switch err.(type) {
	case nil:
		return 0
	case usageError:
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	if err == errHelpShown {
		return 0
	}
	fmt.Fprintf(stderr, "%v\n", err)
	return 1
}

// cmdHelp prints xlc help, or with a command's name that command's help
// and flags, as xlc COMMAND --help does.
func cmdHelp(args []string, stdout io.Writer) error {
	fs := newFlags("help", stdout)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		fmt.Fprint(stdout, usage())
		return nil
	case len(pos) > 1 || commandHelp(pos[0]) == "":
		return usageError{fmt.Sprintf("xlc help: want one command name, have %s (try xlc help)", strings.Join(pos, " "))}
	case pos[0] == "help":
		fs.printHelp()
		return nil
	}
	run([]string{pos[0], "--help"}, stdout, io.Discard)
	return nil
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

// compile reads and elaborates one model file's forward pass; train
// settings may be overridden too, though only training uses them.
func compile(path string, defs defines) (*parser.Program, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("xlc: %v", err)
	}
	return parser.Compile(path, src, defs, trainstep.ConfigKeys()...)
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
