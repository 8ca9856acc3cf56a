package experiments

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// torchPython is Debian's python3, whose python3-torch (PyTorch 1.13)
// bench/run.sh uses too.
const torchPython = "/usr/bin/python3"

// torchTimeout bounds one PyTorch process.
const torchTimeout = 5 * time.Minute

// torchEnv is where the PyTorch rows come from: the checkout holding
// bench/, the BLAS folder for LD_LIBRARY_PATH and PyTorch's version, or err
// ("not installed", the rows' text) and why.
type torchEnv struct {
	root, blas, version string
	err                 error
	why                 string
}

var errNoTorch = errors.New("not installed")

// findTorch looks for the checkout (go.mod and bench/torch_*.py in the
// working folder or one above it) and for PyTorch in torchPython.
func findTorch() torchEnv {
	var env torchEnv
	dir, err := os.Getwd()
	for err == nil {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "bench", "torch_gpt.py")) && fileExists(filepath.Join(dir, "bench", "torch_bert.py")) {
			env.root = dir
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	if env.root == "" {
		env.err, env.why = errNoTorch, "no checkout with bench/torch_gpt.py and bench/torch_bert.py in the working folder or above it"
		return env
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, torchPython, "-c", "import torch; print(torch.__version__)").Output()
	if err != nil {
		env.err, env.why = errNoTorch, "no PyTorch in "+torchPython
		return env
	}
	env.version = strings.TrimSpace(string(out))
	// OpenBLAS-OpenMP (Debian's libopenblas0-openmp), as bench/run.sh.
	if libs, _ := filepath.Glob("/usr/lib/*/openblas-openmp/libopenblas*.so*"); len(libs) > 0 {
		env.blas = filepath.Dir(libs[0])
	}
	return env
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// describe is the setup line's account of PyTorch.
func (e torchEnv) describe() string {
	if e.err != nil {
		return fmt.Sprintf("%v (%s): its rows say so, and its claims are not supported for want of data", e.err, e.why)
	}
	blas := "the system's default BLAS (no OpenBLAS-OpenMP found)"
	if e.blas != "" {
		blas = "OpenBLAS-OpenMP from " + e.blas + " on LD_LIBRARY_PATH"
	}
	return fmt.Sprintf("Debian's python3-torch %s (`%s`), %s, as in bench/run.sh", e.version, torchPython, blas)
}

// command is the shell command line of one PyTorch run.
func (e torchEnv) command(m *speedModel, steps int, mode string) string {
	env := "PRECISION=f32|bf16 "
	if e.blas != "" {
		env += "LD_LIBRARY_PATH=" + e.blas + " "
	}
	return fmt.Sprintf("%s%s bench/%s %s %d %s", env, torchPython, m.script, m.config, steps, mode)
}

// run runs m's script with args under precision prec and returns its
// standard output; err carries the last line of its standard error.
func (e torchEnv) run(m *speedModel, prec string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), torchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, torchPython, append([]string{filepath.Join("bench", m.script), m.config}, args...)...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "PRECISION="+prec)
	if e.blas != "" {
		lib := e.blas
		if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
			lib += ":" + old
		}
		cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+lib)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if len(last) > 100 {
			last = last[:100] + "…"
		}
		return string(out), fmt.Errorf("failed (%v: %s)", err, last)
	}
	return string(out), nil
}

// tokensPerSec runs PyTorch's mode md of m for steps timed steps and
// returns its tokens/s, or text saying why there is no number.
func (e torchEnv) tokensPerSec(m *speedModel, steps int, md *speedMode) any {
	if e.err != nil {
		return e.err.Error()
	}
	mode := map[bool]string{false: "eager", true: "jit"}[md.fused]
	out, err := e.run(m, md.prec, strconv.Itoa(steps), mode)
	if err != nil {
		return err.Error()
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return "failed (no output)"
	}
	x, err := strconv.ParseFloat(fields[len(fields)-1], 64)
	if err != nil || x <= 0 {
		return fmt.Sprintf("failed (output %q)", strings.TrimSpace(out))
	}
	return x
}

// torchLoss0 finds the step-0 losses in a --check line: torch_bert.py's
// "mlm_loss X cls_loss Y at step 0", torch_gpt.py's "losses on one batch:
// X ...".
var torchLoss0 = regexp.MustCompile(`mlm_loss ([0-9.]+) cls_loss ([0-9.]+) at step 0|losses on one batch: ([0-9.]+)`)

// loss0 runs m's script with --check (eager, f32) and returns its step-0
// losses (GPT: the loss; BERT: mlm_loss, cls_loss).
func (e torchEnv) loss0(m *speedModel) ([]float64, error) {
	if e.err != nil {
		return nil, e.err
	}
	out, err := e.run(m, "f32", "1", "eager", "--check")
	sub := torchLoss0.FindStringSubmatch(out)
	if sub == nil {
		if err == nil {
			err = fmt.Errorf("failed (output %q)", strings.TrimSpace(out))
		}
		return nil, err
	}
	var losses []float64
	for _, s := range sub[1:] {
		if s == "" {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("failed (loss %q)", s)
		}
		losses = append(losses, x)
	}
	return losses, nil
}
