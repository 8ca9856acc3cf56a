// Package bundle is the file format of a model compiled for training on the
// cpu or the cuda backend (xlc build -o FILE.xlc [--target cuda], xlc
// train --bundle FILE.xlc).
//
// A file (Write, Read) is: the magic "xlcbndl\n", the format version
// (uint32, little endian), the total file size (uint64), the number of
// sections (uint32), then each section as a name (uint16 length, bytes) and
// its data (uint64 length, bytes), and last the SHA-256 of every byte
// before it. The sections are meta (JSON: Bundle's fields but the IR, the
// source and the kernels), source, step.ir, eval.ir, and the kernels:
// step.so and eval.so (shared objects) for a CPU target, step.ptx and
// eval.ptx (PTX text) for a GPU target. Format 1 had CPU bundles only and
// is still read.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"xlc/codegen"
	"xlc/driver"
	"xlc/internal/atomicfile"
	"xlc/ir"
	"xlc/parser"
	"xlc/runtime/cuda"
)

// Version is the bundle format this xlc writes; it reads formats 1 to
// Version.
const Version = 2

// magic starts every bundle file.
const magic = "xlcbndl\n"

// Bundle is a model compiled for training on the cpu or the cuda backend,
// with everything `xlc train --bundle` needs to run it without the parser
// or the LLVM toolchain: the train step and the evaluation forward pass as
// IR text (after the pipeline, fused as the backends compile them), the
// kernels built from each (a shared object, or PTX for a GPU), and the
// target.
type Bundle struct {
	Name    string          `json:"name"`
	Path    string          `json:"path"`
	Source  []byte          `json:"-"`
	Defines []parser.Define `json:"defines"`
	// Optimizer, Combiner, Schedule and Steps are the resolved train
	// settings the trainer reports and checks (a cosine or linear
	// schedule's horizon is Steps, compiled into the step).
	Optimizer string `json:"optimizer"`
	Combiner  string `json:"combiner"`
	Schedule  string `json:"schedule"`
	Steps     int    `json:"steps"`
	// Target is the machine the kernels were compiled for: its
	// architecture and the instruction-set extensions its code needs,
	// which the machine that runs them must have (the loader compiles the
	// IR for it again to derive the kernel table).
	Target *codegen.Target `json:"target"`
	// StepIR and EvalIR are the functions' text (ir.ParseFunc reads them);
	// StepSO and EvalSO the shared objects built from codegen.Compile's
	// module for each for a CPU Target, StepPTX and EvalPTX its PTX for a
	// GPU Target; the modules' SHA-256 are StepLL and EvalLL.
	StepIR  string `json:"-"`
	EvalIR  string `json:"-"`
	StepSO  []byte `json:"-"`
	EvalSO  []byte `json:"-"`
	StepPTX string `json:"-"`
	EvalPTX string `json:"-"`
	StepLL  string `json:"step_ll_sha256"`
	EvalLL  string `json:"eval_ll_sha256"`
}

// New compiles m's train step and forward pass to kernels for target t:
// shared objects for a CPU (this machine's architecture), PTX for a GPU
// (cuda.PTX: CUDA's libdevice must be installed; no GPU is needed). Needs
// the LLVM toolchain. m should be compiled with the backends' options
// (fusion on). The kernels are built from the functions as Read will parse
// them back from their text, so the kernel table the runtime derives at
// load matches them.
func New(m *driver.Model, t *codegen.Target) (*Bundle, error) {
	if err := codegen.ToolchainError(); err != nil {
		return nil, err
	}
	b := &Bundle{
		Name: m.Name, Path: m.Path, Source: m.Source, Defines: m.Defines,
		Optimizer: m.Train.Optimizer, Combiner: m.Train.Combiner, Schedule: m.Train.Schedule, Steps: m.Train.Steps,
		Target: t,
		StepIR: m.Step.String(), EvalIR: m.Eval.String(),
	}
	var err error
	if b.StepSO, b.StepPTX, b.StepLL, err = build(b.StepIR, t); err != nil {
		return nil, fmt.Errorf("%s: train step: %v", m.Path, err)
	}
	if b.EvalSO, b.EvalPTX, b.EvalLL, err = build(b.EvalIR, t); err != nil {
		return nil, fmt.Errorf("%s: forward: %v", m.Path, err)
	}
	return b, nil
}

// build compiles the function text for t: a shared object for a CPU, PTX
// for a GPU, and the module's sum.
func build(text string, t *codegen.Target) (so []byte, ptx, llSum string, err error) {
	f, err := ir.ParseFunc(text)
	if err != nil {
		return nil, "", "", err
	}
	prog, err := codegen.Compile(f, codegen.Options{Target: t})
	if err != nil {
		return nil, "", "", err
	}
	if t.GPU() {
		ptx, err = cuda.PTX(prog.LL)
		return nil, ptx, LLSum(prog.LL), err
	}
	path, err := codegen.SharedObject(prog.LL)
	if err != nil {
		return nil, "", "", err
	}
	so, err = os.ReadFile(path)
	if err != nil {
		return nil, "", "", err
	}
	return so, "", LLSum(prog.LL), nil
}

// LLSum is the hex SHA-256 of an LLVM module's text, which a bundle records
// for each shared object.
func LLSum(ll string) string {
	s := sha256.Sum256([]byte(ll))
	return hex.EncodeToString(s[:])
}

// Funcs parses the bundle's train step and forward pass.
func (b *Bundle) Funcs() (step, eval *ir.Func, err error) {
	if step, err = ir.ParseFunc(b.StepIR); err != nil {
		return nil, nil, fmt.Errorf("train step IR: %v", err)
	}
	if eval, err = ir.ParseFunc(b.EvalIR); err != nil {
		return nil, nil, fmt.Errorf("forward IR: %v", err)
	}
	return step, eval, nil
}

// Encode returns the bundle's file contents.
func (b *Bundle) Encode() ([]byte, error) {
	meta, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	sections := []struct {
		name string
		data []byte
	}{
		{"meta", meta}, {"source", b.Source}, {"step.ir", []byte(b.StepIR)}, {"eval.ir", []byte(b.EvalIR)},
		{"step.so", b.StepSO}, {"eval.so", b.EvalSO},
	}
	if b.GPU() {
		sections[4].name, sections[4].data = "step.ptx", []byte(b.StepPTX)
		sections[5].name, sections[5].data = "eval.ptx", []byte(b.EvalPTX)
	}
	var buf bytes.Buffer
	buf.WriteString(magic)
	binary.Write(&buf, binary.LittleEndian, uint32(Version))
	binary.Write(&buf, binary.LittleEndian, uint64(0)) // the size, set below
	binary.Write(&buf, binary.LittleEndian, uint32(len(sections)))
	for _, s := range sections {
		binary.Write(&buf, binary.LittleEndian, uint16(len(s.name)))
		buf.WriteString(s.name)
		binary.Write(&buf, binary.LittleEndian, uint64(len(s.data)))
		buf.Write(s.data)
	}
	data := buf.Bytes()
	binary.LittleEndian.PutUint64(data[len(magic)+4:], uint64(len(data)+sha256.Size))
	sum := sha256.Sum256(data)
	return append(data, sum[:]...), nil
}

// Write writes b to path atomically.
func Write(path string, b *Bundle) error {
	data, err := b.Encode()
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return atomicfile.Write(path, data, 0o644)
}

// Read reads and checks a bundle file: its format version, size and
// checksum, and every section. Errors are one line naming the file.
func Read(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return b, nil
}

// Decode parses a bundle's file contents.
func Decode(data []byte) (*Bundle, error) {
	head := len(magic) + 4 + 8
	if len(data) < len(magic) || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("not an xlc bundle (write one with xlc build MODEL.xl -o FILE.xlc)")
	}
	if len(data) < head {
		return nil, fmt.Errorf("truncated bundle: %d bytes; rebuild it with xlc build", len(data))
	}
	if v := binary.LittleEndian.Uint32(data[len(magic):]); v < 1 || v > Version {
		return nil, fmt.Errorf("bundle format %d, this xlc reads formats 1 to %d; rebuild it with this xlc", v, Version)
	}
	if n := binary.LittleEndian.Uint64(data[len(magic)+4:]); n != uint64(len(data)) {
		if n > uint64(len(data)) {
			return nil, fmt.Errorf("truncated bundle: %d of %d bytes; rebuild it with xlc build", len(data), n)
		}
		return nil, fmt.Errorf("corrupted bundle: %d bytes, its header says %d; rebuild it with xlc build", len(data), n)
	}
	body := data[:len(data)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, fmt.Errorf("corrupted bundle: checksum mismatch; rebuild it with xlc build")
	}
	r := body[head:]
	corrupt := fmt.Errorf("corrupted bundle: bad section table; rebuild it with xlc build")
	if len(r) < 4 {
		return nil, corrupt
	}
	n := binary.LittleEndian.Uint32(r)
	r = r[4:]
	sec := map[string][]byte{}
	for range n {
		if len(r) < 2 {
			return nil, corrupt
		}
		l := int(binary.LittleEndian.Uint16(r))
		if len(r) < 2+l+8 {
			return nil, corrupt
		}
		name := string(r[2 : 2+l])
		r = r[2+l:]
		dl := binary.LittleEndian.Uint64(r)
		r = r[8:]
		if dl > uint64(len(r)) {
			return nil, corrupt
		}
		sec[name], r = r[:dl], r[dl:]
	}
	b := &Bundle{}
	if sec["meta"] == nil {
		return nil, fmt.Errorf("corrupted bundle: no meta section; rebuild it with xlc build")
	}
	if err := json.Unmarshal(sec["meta"], b); err != nil {
		return nil, fmt.Errorf("corrupted bundle: meta: %v", err)
	}
	kernels := []string{"step.so", "eval.so"}
	if b.GPU() {
		kernels = []string{"step.ptx", "eval.ptx"}
	}
	for _, name := range append([]string{"source", "step.ir", "eval.ir"}, kernels...) {
		if sec[name] == nil {
			return nil, fmt.Errorf("corrupted bundle: no %s section; rebuild it with xlc build", name)
		}
	}
	// The module sums tie each shared object to the IR beside it; without
	// them kernels could run on another buffer layout.
	if len(b.StepLL) != 64 || len(b.EvalLL) != 64 {
		return nil, fmt.Errorf("corrupted bundle: no module checksums; rebuild it with xlc build")
	}
	b.Source, b.StepIR, b.EvalIR = sec["source"], string(sec["step.ir"]), string(sec["eval.ir"])
	if b.GPU() {
		b.StepPTX, b.EvalPTX = string(sec["step.ptx"]), string(sec["eval.ptx"])
	} else {
		b.StepSO, b.EvalSO = sec["step.so"], sec["eval.so"]
	}
	return b, nil
}

// GPU reports whether the bundle's kernels are for a GPU (PTX).
func (b *Bundle) GPU() bool { return b.Target != nil && b.Target.GPU() }

// CheckHost reports, in one line, why this machine cannot run the bundle's
// kernels: another architecture, or a missing instruction-set extension;
// for a GPU bundle, an xlc without CUDA, no GPU or too old a GPU.
func (b *Bundle) CheckHost() error {
	if b.Target == nil {
		return fmt.Errorf("corrupted bundle: no target; rebuild it with xlc build")
	}
	if b.GPU() {
		if err := cuda.Runs(b.Target); err != nil {
			return fmt.Errorf("its kernels are for the GPU %s: %v", b.Target.Name, err)
		}
		return nil
	}
	if err := b.Target.Runs(); err != nil {
		return fmt.Errorf("%v: rebuild the bundle here with xlc build (or --cpu for this CPU)", err)
	}
	return nil
}
