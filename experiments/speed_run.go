package experiments

import (
	"fmt"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"xlc/passes"
	"xlc/runtime"
)

// speedTrainer is r.Trainer with fusion chosen: off compiles the step
// without the layout and fusion passes, one kernel per op.
func (r *Run) speedTrainer(file string, fuse bool, defines ...string) (*Trainer, error) {
	be, popt := r.backend()
	popt.Fuse, popt.FusionFuel = fuse, passes.UnlimitedFuel
	return r.trainer(file, 1, be, popt, defines)
}

// speedModel is one model of the study: its xlc file and defines, and its
// PyTorch script and config.
type speedModel struct {
	name, file string
	defines    []string
	script     string // bench/NAME.py
	config     string // the script's config: S, or T (tiny) under --quick
	losses     []string
}

// speedMode is one column of the study: a runner ("xlc" or "PyTorch") with
// fusion or torch.jit.script on or off, in f32 or bf16.
type speedMode struct {
	runner  string
	fused   bool // xlc: Passes.Fuse; PyTorch: torch.jit.script
	prec    string
	trainer *Trainer
}

func (m speedMode) label() string {
	on := map[string][2]string{"xlc": {"unfused", "fused"}, "PyTorch": {"eager", "jit"}}[m.runner][b2i(m.fused)]
	return fmt.Sprintf("%s %s %s", m.runner, on, m.prec)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// speedModes lists xlc's four modes, then PyTorch's.
func speedModes() []*speedMode {
	var ms []*speedMode
	for _, runner := range []string{"xlc", "PyTorch"} {
		for _, fused := range []bool{false, true} {
			for _, prec := range []string{"f32", "bf16"} {
				ms = append(ms, &speedMode{runner: runner, fused: fused, prec: prec})
			}
		}
	}
	return ms
}

func runSpeed(r *Run) error {
	rounds, steps := r.Pick(4, 1), r.Pick(5, 2)
	size := []string{"d=128", "layers=4", "heads=4", "seq=128", "batch=16"}
	cfg := "S"
	if r.Quick {
		size, cfg = []string{"d=32", "layers=1", "heads=2", "seq=32", "batch=4"}, "T"
	}
	models := []*speedModel{
		{name: "BERT", file: "bert.xl", defines: size, script: "torch_bert.py", config: cfg, losses: []string{"mlm_loss", "cls_loss"}},
		{name: "GPT S", file: "gpt.xl", defines: append([]string{"tie=true", "gelu_approx=tanh"}, size...), script: "torch_gpt.py", config: cfg, losses: []string{"loss"}},
	}
	torch := findTorch()
	r.Setup("CPU: %s; %s; Go's GOMAXPROCS %d (xlc's kernel threads), PyTorch `torch.set_num_threads(2)`; load average at the start %s",
		cpuModel(), cpuISA(), goruntime.GOMAXPROCS(0), loadAverage())
	r.Setup("PyTorch: %s", torch.describe())
	for _, m := range models {
		r.Setup("%s: `%s` with `-D precision=f32|bf16`; fusion off/on as `xlc bench %s --fuse off|on` (the `xlc train` default on the cpu backend is on)",
			m.name, Command(m.file, m.defines...), modelPath(m.file))
		if torch.err == nil {
			r.Setup("%s, PyTorch: `%s` (eager or jit; `PRECISION=bf16` runs the forward under autocast)", m.name, torch.command(m, steps, "eager|jit"))
		}
	}
	if r.Quick {
		r.Setup("--quick: tiny models (%s), PyTorch's eager f32 mode only (where PyTorch is installed)", strings.Join(size, " "))
	}
	r.Setup("%d interleaved rounds (odd rounds in reverse order): per round and model each xlc mode runs 1 warm-up step and %d timed steps in its resident trainer (compiled once), and each PyTorch mode is one process (3 warm-up steps and %d timed); a mode's tokens/s in a round is tokens per step over its median step time (the batch's preparation included on both sides). Speed-ups are medians over rounds of the ratio to the same round's baseline (xlc unfused f32, PyTorch eager f32); tokens/s are medians over rounds",
		rounds, steps, steps)

	r.Table("xlc", "xlc: tokens/s and speed-up over the unfused f32 step", "model", "fusion", "precision", "tokens/s", "speedup", "range", "reference")
	r.Table("pytorch", "PyTorch 1.13: tokens/s and speed-up over eager f32", "model", "mode", "precision", "tokens/s", "speedup", "range", "reference")
	r.Table("versus", "xlc's fastest mode against PyTorch's", "model", "xlc fused bf16", "PyTorch best", "PyTorch tokens/s", "xlc/PyTorch")
	r.Table("loss0", "Loss at step 0, on uniformly random bytes (PyTorch: `--check`)", "model", "side", "loss", "cls_loss")
	r.Table("rounds", "Tokens/s per round", "model", "round", "mode", "tokens/s")

	// per[model][mode] holds each round's tokens/s (a number, or text).
	per := map[string]map[string][]any{}
	modes := map[string][]*speedMode{}
	for _, m := range models {
		modes[m.name] = speedModes()
		per[m.name] = map[string][]any{}
		defer func(ms []*speedMode) {
			for _, md := range ms {
				if md.trainer != nil {
					md.trainer.Close()
				}
			}
		}(modes[m.name])
		if err := speedCompile(r, m, modes[m.name]); err != nil {
			return err
		}
		speedLoss0(r, m, modes[m.name][0].trainer, torch)
	}
	for round := range rounds {
		for _, m := range models {
			ms := modes[m.name]
			if round%2 == 1 {
				ms = slices.Clone(ms)
				slices.Reverse(ms)
			}
			for _, md := range ms {
				var v any
				if md.runner == "xlc" {
					tps, err := speedTime(md.trainer, steps)
					if err != nil {
						return fmt.Errorf("%s, %s: %v", m.name, md.label(), err)
					}
					v = tps
				} else if torch.err != nil {
					v = torch.err.Error()
				} else if r.Quick && md != modes[m.name][4] {
					// Each PyTorch process takes seconds to start: the
					// quick run times the baseline mode only.
					v = "not run (--quick)"
				} else {
					v = torch.tokensPerSec(m, steps, md)
				}
				per[m.name][md.label()] = append(per[m.name][md.label()], v)
				r.Record("rounds", map[string]any{"model": m.name, "round": round + 1, "mode": md.label(), "tokens/s": v})
				if x, ok := v.(float64); ok {
					v = fmt.Sprintf("%.0f", x)
				}
				r.Logf("round %d, %s, %s: %v tokens/s", round+1, m.name, md.label(), v)
			}
		}
	}
	// Other processes on the machine slow both sides, PyTorch's spinning
	// OpenMP threads most: the setup says how busy it was.
	r.Setup("load average at the end: %s", loadAverage())
	for _, m := range models {
		speedSummarize(r, m.name, modes[m.name], per[m.name])
		if err := speedPlot(r, m, modes[m.name], per[m.name]); err != nil {
			return err
		}
	}
	return nil
}

// speedCompile compiles xlc's four modes of m.
func speedCompile(r *Run, m *speedModel, modes []*speedMode) error {
	for _, md := range modes {
		if md.runner != "xlc" {
			continue
		}
		start := time.Now()
		t, err := r.speedTrainer(m.file, md.fused, append(slices.Clone(m.defines), "precision="+md.prec)...)
		if err != nil {
			return fmt.Errorf("%s, %s: %v", m.name, md.label(), err)
		}
		md.trainer = t
		r.Logf("%s, %s: compiled and loaded in %.1f s", m.name, md.label(), time.Since(start).Seconds())
	}
	return nil
}

// speedTime runs one warm-up step and steps timed ones and returns tokens
// per step over the median step's seconds.
func speedTime(t *Trainer, steps int) (float64, error) {
	if _, err := t.Step(); err != nil {
		return 0, err
	}
	times := make([]float64, steps)
	for i := range times {
		t0 := time.Now()
		if _, err := t.Step(); err != nil {
			return 0, err
		}
		times[i] = time.Since(t0).Seconds()
	}
	tokens := 0
	if p := t.Model.Step.Param("tokens"); p != nil {
		tokens = p.Type.Shape.NumElements()
	}
	return float64(tokens) / median(times), nil
}

// speedLoss0 records the step-0 losses of xlc's unfused f32 trainer (its
// first step, before any timing) and of PyTorch's eager f32 model, both on
// uniformly random bytes (PyTorch's --check batch): on text a tied head
// starts lower.
func speedLoss0(r *Run, m *speedModel, t *Trainer, torch torchEnv) {
	row := map[string]any{"model": m.name, "side": "xlc unfused f32", "cls_loss": "—"}
	data := t.data
	t.data = randomBytes(1 << 16)
	out, err := t.Step()
	t.data = data
	if err != nil {
		row["loss"] = "failed: " + err.Error()
	} else {
		row["loss"] = out[m.losses[0]]
		if len(m.losses) > 1 {
			row["cls_loss"] = out[m.losses[1]]
		}
	}
	r.Record("loss0", row)
	row = map[string]any{"model": m.name, "side": "PyTorch eager f32", "loss": "—", "cls_loss": "—"}
	losses, err := torch.loss0(m)
	switch {
	case err != nil:
		row["loss"] = err.Error()
	default:
		row["loss"] = losses[0]
		if len(losses) > 1 {
			row["cls_loss"] = losses[1]
		}
	}
	r.Record("loss0", row)
}

// speedSummarize records each mode's median tokens/s and speed-up over
// its runner's baseline (the first mode), and the comparison of the
// fastest modes.
func speedSummarize(r *Run, model string, modes []*speedMode, per map[string][]any) {
	ref := map[[2]bool]string{{false, false}: "1 (baseline)", {true, false}: "1.15 (XLA alone)", {false, true}: "1.10 (mixed precision alone)", {true, true}: "1.30 (both)"}
	bestTorch, bestTPS := "", 0.0
	var xlcBest any = "no data"
	for _, md := range modes {
		base := modes[0]
		if md.runner == "PyTorch" {
			base = modes[4]
		}
		tps, ups := per[md.label()], []float64{}
		var nums []float64
		for i, v := range tps {
			x, ok := v.(float64)
			b, okb := per[base.label()][i].(float64)
			if ok {
				nums = append(nums, x)
			}
			if ok && okb && b > 0 {
				ups = append(ups, x/b)
			}
		}
		row := map[string]any{"model": model, "precision": md.prec, "reference": ref[[2]bool{md.fused, md.prec == "bf16"}]}
		table := "xlc"
		if md.runner == "xlc" {
			row["fusion"] = map[bool]string{false: "off", true: "on"}[md.fused]
		} else {
			table = "pytorch"
			row["mode"] = map[bool]string{false: "eager", true: "jit"}[md.fused]
		}
		if len(nums) == 0 || len(ups) == 0 {
			text := "no data"
			if len(tps) > 0 {
				text = fmt.Sprint(tps[0])
			}
			row["tokens/s"], row["speedup"], row["range"] = text, text, text
		} else {
			med := median(nums)
			row["tokens/s"], row["speedup"] = float64(int(med+0.5)), round2(median(ups))
			row["range"] = fmt.Sprintf("%.2f–%.2f", slices.Min(ups), slices.Max(ups))
			if md.runner == "PyTorch" && med > bestTPS {
				bestTorch, bestTPS = md.label(), med
			}
			if md.runner == "xlc" && md.fused && md.prec == "bf16" {
				xlcBest = float64(int(med + 0.5))
			}
		}
		r.Record(table, row)
	}
	vs := map[string]any{"model": model, "xlc fused bf16": xlcBest, "PyTorch best": "no data", "PyTorch tokens/s": "no data", "xlc/PyTorch": "no data"}
	if bestTorch == "" {
		if t := per[modes[4].label()]; len(t) > 0 {
			vs["PyTorch best"], vs["PyTorch tokens/s"], vs["xlc/PyTorch"] = t[0], t[0], t[0]
		}
	} else if x, ok := xlcBest.(float64); ok {
		vs["PyTorch best"] = strings.TrimPrefix(bestTorch, "PyTorch ")
		vs["PyTorch tokens/s"], vs["xlc/PyTorch"] = float64(int(bestTPS+0.5)), round2(x/bestTPS)
	}
	r.Record("versus", vs)
}

// speedPlot draws each mode's tokens/s per round.
func speedPlot(r *Run, m *speedModel, modes []*speedMode, per map[string][]any) error {
	series := map[string][][2]float64{}
	for _, md := range modes {
		for i, v := range per[md.label()] {
			if x, ok := v.(float64); ok {
				series[md.label()] = append(series[md.label()], [2]float64{float64(i + 1), x})
			}
		}
	}
	file := "speed_" + strings.ToLower(strings.Fields(m.name)[0]) + ".png"
	return r.Plot(Plot{File: file, Chart: runtime.Chart{Title: m.name + ": train-step tokens/s per round", X: "round", Y: "tokens/s", LogY: true}, Series: series})
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	return (s[(n-1)/2] + s[n/2]) / 2
}

func round2(x float64) float64 { return float64(int(x*100+0.5)) / 100 }

// cpuModel is /proc/cpuinfo's model name.
func cpuModel() string {
	if v := cpuinfoField("model name"); v != "" {
		return v
	}
	return "unknown"
}

// cpuISA names the vector extensions the step's speed depends on.
func cpuISA() string {
	flags := strings.Fields(cpuinfoField("flags"))
	var have, lack []string
	for _, f := range []string{"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"} {
		if slices.Contains(flags, f) {
			have = append(have, f)
		} else {
			lack = append(lack, f)
		}
	}
	s := "ISA: " + strings.Join(have, ", ")
	if len(lack) > 0 {
		s += " (no " + strings.Join(lack, ", ") + ")"
	}
	return s
}

func cpuinfoField(key string) string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ") + " (1, 5, 15 minutes)"
}

// randomBytes is a corpus of n uniformly random bytes in each split, from
// a fixed seed.
func randomBytes(n int) *runtime.Dataset {
	rng := rand.New(rand.NewPCG(1, 2))
	d := &runtime.Dataset{Train: make([]byte, n), Val: make([]byte, n), Source: "random bytes"}
	for i := range n {
		d.Train[i], d.Val[i] = byte(rng.IntN(256)), byte(rng.IntN(256))
	}
	return d
}
