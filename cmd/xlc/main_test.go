package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
)

func xlc(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// outputs parses `name = value` lines of xlc run.
func outputs(t *testing.T, s string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("bad output line %q", line)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		m[k] = f
	}
	return m
}

// TestRunInitialLoss checks that every norm placement starts near the loss
// of a uniform prediction, ln(vocab), and BERT's two losses near ln(vocab)
// and ln(classes).
func TestRunInitialLoss(t *testing.T) {
	for _, norm := range []string{"pre", "post", "deepnorm"} {
		out, errs, code := xlc(t, "run", "../../models/gpt.xl", "-D", "batch=2", "-D", "seq=16", "-D", "norm="+norm)
		if code != 0 {
			t.Fatalf("norm=%s: exit %d: %s", norm, code, errs)
		}
		if l := outputs(t, out)["loss"]; math.Abs(l-math.Log(256)) > 0.15 {
			t.Errorf("norm=%s: loss %v, want within 0.15 of ln 256 = %.4f", norm, l, math.Log(256))
		}
	}
	out, errs, code := xlc(t, "run", "../../models/bert.xl", "-D", "batch=2", "-D", "seq=16")
	if code != 0 {
		t.Fatalf("bert: exit %d: %s", code, errs)
	}
	o := outputs(t, out)
	if l := o["mlm_loss"]; math.Abs(l-math.Log(256)) > 0.15 {
		t.Errorf("bert mlm_loss %v, want within 0.15 of ln 256", l)
	}
	if l := o["cls_loss"]; math.Abs(l-math.Log(4)) > 0.15 {
		t.Errorf("bert cls_loss %v, want within 0.15 of ln 4", l)
	}
}

// TestBuildEmitsVerifiableIR checks that xlc build's IR parses back, verifies
// and prints identically, and that -o writes the same text.
func TestBuildEmitsVerifiableIR(t *testing.T) {
	out, errs, code := xlc(t, "build", "../../models/gpt.xl", "--emit=ir", "--verify", "-D", "layers=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m, err := ir.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(); err != nil {
		t.Fatal(err)
	}
	if m.String() != out {
		t.Error("emitted IR does not round-trip")
	}
	file := filepath.Join(t.TempDir(), "gpt.ir")
	if _, errs, code := xlc(t, "build", "../../models/gpt.xl", "-D", "layers=2", "-o", file); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(file); string(b) != out {
		t.Error("-o wrote different text from standard output")
	}
}

// TestDumpAfter checks --dump-after names files <func>_<seq>__<pass>.ir.
// The folder is created, with its parents, when it does not exist.
func TestDumpAfter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dump")
	if _, errs, code := xlc(t, "build", "../../models/mlp.xl", "--dump-after=simplify", "--dump-dir="+dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "forward_00__simplify.ir")); err != nil {
		t.Error(err)
	}
}

// TestUserErrors checks that mistakes get one clear line, exit status 1 or
// 2, and no Go stack.
func TestUserErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.xl")
	os.WriteFile(bad, []byte("model m {\n  input a: f32[2]\n  output y = a + b\n}\n"), 0o644)
	badTrain := filepath.Join(t.TempDir(), "train.xl")
	os.WriteFile(badTrain, []byte("model m {\n  param w: f32[2] = zeros\n  output loss = sum(w)\n}\ntrain {\n  optimzer = \"sgd\"\n}\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "nonexistent.xl"}, "no such file"},
		{[]string{"build", "../../models/gpt.xl", "-D", "layerz=3"}, "-D layerz: unknown config key (did you mean layers?)"},
		{[]string{"build", "../../models/gpt.xl", "-D", "optimzer=sgd"}, "-D optimzer: unknown config key (did you mean optimizer?)"},
		{[]string{"build", "../../models/gpt.xl", "-D", "bogus=1"}, "-D bogus: unknown config key (the model has: vocab, d,"},
		{[]string{"build", badTrain}, "train.xl:6:3: unknown train setting optimzer (did you mean optimizer?)"},
		{[]string{"build", "../../models/gpt.xl", "-D", "layers"}, "want -D key=value"},
		{[]string{"build", bad}, "bad.xl:3:18: unknown name b"},
		{[]string{"build"}, "want one model file"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"build", "../../models/gpt.xl", "--emit=bc"}, "--emit=bc: want ir, ll, asm or ptx"},
		{[]string{"train", "--bogus"}, "xlc train: flag provided but not defined: -bogus (see xlc train --help)"},
		{[]string{"help", "nope"}, "xlc help: want one command name"},
		{[]string{"build", "../../models/gpt.xl", "-D", "layers=1", "--cpu", "h100", "-o", filepath.Join(t.TempDir(), "g.xlc")}, "--cpu h100: a GPU target"},
		{[]string{"build", "../../models/gpt.xl", "--emit=ptx", "--cpu", "znver4"}, "--emit=ptx is for a GPU"},
		{[]string{"build", "../../models/gpt.xl", "--emit=ll", "--gpu", "znver4"}, "--gpu znver4: want sm_80"},
		{[]string{"build", "../../models/gpt.xl", "--emit=ll", "--gpu", "h100", "--cpu", "znver4"}, "give one"},
	}
	for _, c := range cases {
		_, errs, code := xlc(t, c.args...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Contains(errs, "goroutine") {
			t.Errorf("%v: exit %d, stderr %q; want it to mention %q", c.args, code, errs, c.want)
		}
	}
}

func TestHelp(t *testing.T) {
	out, _, code := xlc(t, "help")
	if code != 0 || !strings.Contains(out, "xlc build") || !strings.Contains(out, "xlc run") {
		t.Errorf("help: exit %d: %s", code, out)
	}
}

// BenchmarkBuildDeep builds a 1,000-layer DeepNorm GPT: parse, elaborate to
// IR, simplify, verify. Compile time must stay flat per layer.
func BenchmarkBuildDeep(b *testing.B) {
	src, err := os.ReadFile("../../models/gpt.xl")
	if err != nil {
		b.Fatal(err)
	}
	defs := []parser.Define{{Key: "layers", Value: "1000"}, {Key: "norm", Value: "deepnorm"}, {Key: "d", Value: "64"}}
	for i := 0; i < b.N; i++ {
		p, err := parser.Compile("gpt.xl", src, defs)
		if err != nil {
			b.Fatal(err)
		}
		if err := passes.Run(p.Func, passes.Options{}); err != nil {
			b.Fatal(err)
		}
		if err := p.Func.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestModelsFormatted checks that xlc fmt leaves the shipped models unchanged
// and that fmt -w rewrites a messy file into canonical form.
func TestModelsFormatted(t *testing.T) {
	files, _ := filepath.Glob("../../models/*.xl")
	for _, f := range files {
		src, _ := os.ReadFile(f)
		out, errs, code := xlc(t, "fmt", f)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, errs)
		}
		if out != string(src) {
			t.Errorf("%s is not in canonical form; run xlc fmt -w %s", f, f)
		}
	}
	messy := filepath.Join(t.TempDir(), "m.xl")
	os.WriteFile(messy, []byte("model m{input a:f32[2]\noutput y=sum(a*2)}"), 0o644)
	if _, errs, code := xlc(t, "fmt", "-w", messy); code != 0 {
		t.Fatalf("fmt -w: exit %d: %s", code, errs)
	}
	got, _ := os.ReadFile(messy)
	want := "model m {\n  input a: f32[2]\n  output y = sum(a * 2)\n}\n"
	if string(got) != want {
		t.Errorf("fmt -w wrote %q, want %q", got, want)
	}
}

// TestBench checks xlc bench times the train step and rejects unknown backends.
func TestBench(t *testing.T) {
	out, errs, code := xlc(t, "bench", "../../models/gpt.xl", "-D", "layers=1", "-D", "d=16", "-D", "heads=2", "-D", "seq=8", "-D", "batch=2", "--steps", "2", "--warmup", "1")
	if code != 0 || !strings.Contains(out, "tokens/s") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := xlc(t, "bench", "../../models/gpt.xl", "--backend", "nope"); code == 0 || !strings.Contains(errs, "unknown backend") {
		t.Errorf("unknown backend: exit %d, %q", code, errs)
	}
}
