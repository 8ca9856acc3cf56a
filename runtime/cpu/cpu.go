// Package cpu is the compiled CPU backend: it lowers a function to native
// kernels with codegen (one kernel per instruction or fusion), builds them
// into a shared object with the LLVM toolchain, loads it with dlopen and
// runs the kernels in order, splitting each kernel's parallel range into
// GOMAXPROCS parts run by a pool of C threads (pool.go).
//
// Memory: every buffer lives in C memory (cgo forbids handing the kernels
// Go memory), in one 64-byte-aligned block per Executable (on transparent
// huge pages where the system allows, when it is large) laid out by
// passes.PlanBuffers (verified at Load): one buffer per parameter, then an
// arena in which values whose lives do not overlap share bytes; no-op
// aliases share their operand's buffer, and a donated result (the new value
// of a role=param or role=state parameter) that the plan puts in place is
// written into its parameter's buffer. Run copies the arguments into the
// parameters' buffers (converting from interp.Tensor's float64/int64
// storage to the element type) and copies every result out: Run's outputs
// are copies, so a result written in place stays correct after the next
// Run overwrites the parameter's buffer. RunKept (runtime.Resident) leaves
// chosen parameters (a train step's weights and optimizer state) in their
// buffers from one run to the next: neither copied in nor out. XLC_DEBUG=2
// profiles every kernel (profile.go).
//
// An Executable holds C memory and a loaded library: the caller of Load
// closes it (Close). An Executable that becomes unreachable unclosed is
// also freed by a cleanup, as a safety net.
package cpu

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XLC_HUGE ((size_t)2 << 20)

// xlc_alloc returns n zeroed bytes, 64-byte aligned. A block of two huge
// pages or more is aligned to one and advised for transparent huge pages:
// the kernels read rows a page or more apart, and with 4 KiB pages each
// such row costs a TLB miss (bench/NOTES.md).
static void *xlc_alloc(size_t n) {
	void *p = NULL;
	if (n >= 2 * XLC_HUGE) {
		n = (n + XLC_HUGE - 1) / XLC_HUGE * XLC_HUGE;
		if (posix_memalign(&p, XLC_HUGE, n) != 0) return NULL;
		madvise(p, n, MADV_HUGEPAGE); // a hint: without THP, small pages
	} else if (posix_memalign(&p, 64, n ? n : 64) != 0) {
		return NULL;
	}
	memset(p, 0, n);
	return p;
}

static void *xlc_dlopen(const char *path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static const char *xlc_dlerror(void) { const char *e = dlerror(); return e ? e : "unknown error"; }
*/
import "C"

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"xlc/codegen"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// Backend compiles functions to native code for this machine.
type Backend struct {
	// CPU names the target (codegen.TargetFor); "" means the host's.
	CPU string
}

var _ runtime.Backend = Backend{}

// Name is "cpu".
func (Backend) Name() string { return "cpu" }

// Passes are the pass options the cpu backend's functions are compiled
// with: fusion, and attention and its backward as one kernel each.
func (Backend) Passes() passes.Options {
	return passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel, Attention: true}
}

// Load compiles f (codegen.Compile, codegen.SharedObject, dlopen) and allocates its
// buffers. The caller closes the result.
func (b Backend) Load(f *ir.Func) (runtime.Executable, error) {
	return b.LoadExec(f)
}

// LoadExec is Load returning the concrete type.
func (b Backend) LoadExec(f *ir.Func) (*Executable, error) {
	t, err := codegen.TargetFor(b.CPU)
	if err != nil {
		return nil, fmt.Errorf("cpu: %v", err)
	}
	if err := t.Runs(); err != nil {
		return nil, fmt.Errorf("cpu: %v", err)
	}
	prog, err := codegen.Compile(f, codegen.Options{Target: t})
	if err != nil {
		return nil, err
	}
	for _, w := range prog.Warnings {
		fmt.Fprintln(os.Stderr, "xlc: warning: cpu:", w)
	}
	so, err := codegen.SharedObject(prog.LL)
	if err != nil {
		return nil, err
	}
	return newExecutable(f, prog, so)
}

// Executable runs one loaded function. Runs are serialized.
type Executable struct {
	mu      sync.Mutex
	f       *ir.Func
	res     *resources
	cleanup goruntime.Cleanup
	plan    *passes.BufferPlan
	bufs    map[*ir.Value]unsafe.Pointer
	kernels []kernel
	seq     []launch // runAll's sequence (launches)
	prof    *profile // nil unless XLC_DEBUG >= 2
	so      string   // the shared object's path
	// resultOf is, by parameter, the index of the result of the same name
	// (-1 if none): the value RunKept feeds back.
	resultOf []int
	ran      bool // the last run completed: results can be read, values kept
}

// Plan is the buffer plan the executable's memory follows.
func (e *Executable) Plan() *passes.BufferPlan { return e.plan }

// resources are the C-side things an Executable owns.
type resources struct {
	lib     unsafe.Pointer // dlopen handle
	arena   unsafe.Pointer // the parameters' buffers, then the plan's arena
	args    unsafe.Pointer // every kernel's void *bufs[]
	scratch unsafe.Pointer // the kernels' scratch (codegen.Kernel.Scratch), shared: they run one at a time
}

func (r *resources) free() {
	if r.arena != nil {
		C.free(r.arena)
		r.arena = nil
	}
	if r.args != nil {
		C.free(r.args)
		r.args = nil
	}
	if r.scratch != nil {
		C.free(r.scratch)
		r.scratch = nil
	}
	if r.lib != nil {
		C.dlclose(r.lib)
		r.lib = nil
	}
}

type kernel struct {
	sym      string
	instr    int    // index in f.Body
	lowering string // codegen.Kernel.Lowering
	fn       unsafe.Pointer
	args     *unsafe.Pointer // C array: operand buffers, then the result's
	extent   int64
	cost     int64
}

func align64(n int) int { return (n + 63) &^ 63 }

func newExecutable(f *ir.Func, prog *codegen.Program, so string) (_ *Executable, err error) {
	res := &resources{}
	defer func() {
		if err != nil {
			res.free()
		}
	}()
	cpath := C.CString(so)
	res.lib = C.xlc_dlopen(cpath)
	C.free(unsafe.Pointer(cpath))
	if res.lib == nil {
		return nil, fmt.Errorf("cpu: dlopen %s: %s", so, C.GoString(C.xlc_dlerror()))
	}

	// Memory follows the buffer plan: one buffer per parameter, then one
	// arena in which values whose lives are disjoint share bytes; donated
	// results the plan puts in place live in their parameter's buffer.
	plan := prog.Plan
	if err := plan.Verify(f); err != nil {
		return nil, fmt.Errorf("cpu: %v", err)
	}
	res.arena = C.xlc_alloc(C.size_t(plan.ParamBytes + plan.ArenaBytes))
	if res.arena == nil {
		return nil, fmt.Errorf("cpu: @%s: cannot allocate %d bytes of buffers", f.Name, plan.ParamBytes+plan.ArenaBytes)
	}
	e := &Executable{f: f, res: res, plan: plan, bufs: map[*ir.Value]unsafe.Pointer{}, so: so}
	for i, p := range f.Params {
		e.bufs[p] = unsafe.Add(res.arena, plan.ParamOffset[i])
	}
	for i, v := range f.Body {
		if l := plan.Loc[i]; l.Param >= 0 {
			e.bufs[v] = e.bufs[f.Params[l.Param]]
		} else {
			e.bufs[v] = unsafe.Add(res.arena, plan.ParamBytes+l.Offset)
		}
	}
	if err := prog.CheckBuffers(f, func(a, b *ir.Value) bool { return e.bufs[a] == e.bufs[b] }); err != nil {
		return nil, fmt.Errorf("cpu: %v", err)
	}

	nptr, scratch := 0, int64(0)
	for _, k := range prog.Kernels {
		nptr += len(k.Args) + len(k.Results)
		if k.Scratch > 0 {
			nptr++
			scratch = max(scratch, k.Scratch)
		}
	}
	if scratch > 0 {
		if res.scratch = C.xlc_alloc(C.size_t(scratch)); res.scratch == nil {
			return nil, fmt.Errorf("cpu: @%s: cannot allocate %d bytes of kernel scratch", f.Name, scratch)
		}
	}
	res.args = C.xlc_alloc(C.size_t(max(1, nptr) * int(unsafe.Sizeof(uintptr(0)))))
	if res.args == nil {
		return nil, fmt.Errorf("cpu: @%s: cannot allocate kernel arguments", f.Name)
	}
	slots := unsafe.Slice((*unsafe.Pointer)(res.args), max(1, nptr))
	at := 0
	for _, k := range prog.Kernels {
		csym := C.CString(k.Symbol)
		fn := C.dlsym(res.lib, csym)
		C.free(unsafe.Pointer(csym))
		if fn == nil {
			return nil, fmt.Errorf("cpu: %s: symbol %s missing", so, k.Symbol)
		}
		kk := kernel{sym: k.Symbol, instr: k.Instr, lowering: k.Lowering, fn: fn, args: &slots[at], extent: k.Extent, cost: k.Cost}
		for _, a := range k.Args {
			slots[at] = e.bufs[a]
			at++
		}
		for _, v := range k.Results {
			slots[at] = e.bufs[v]
			at++
		}
		if k.Scratch > 0 {
			slots[at] = res.scratch
			at++
		}
		e.kernels = append(e.kernels, kk)
	}
	e.resultOf = runtime.ResultOf(f)
	if runtime.DebugLevel() >= 2 {
		e.prof = newProfile(len(e.kernels))
	}
	e.cleanup = goruntime.AddCleanup(e, func(r *resources) { r.free() }, res)
	return e, nil
}

// Close frees the buffers and unloads the library. It is safe to call more
// than once; Run fails afterwards.
func (e *Executable) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.res == nil {
		return nil
	}
	if e.prof != nil {
		e.prof.print(os.Stderr, e)
	}
	e.cleanup.Stop()
	e.res.free()
	e.res = nil
	return nil
}

// Run takes the arguments in the function's parameter order and returns its
// results in order.
func (e *Executable) Run(args []*interp.Tensor) ([]*interp.Tensor, error) {
	return e.RunKept(args, nil)
}

var _ runtime.Resident = (*Executable)(nil)

// RunKept is Run, except that each parameter i with keep[i] keeps the value
// its result of the same name had at the end of the previous run (args[i]
// is not read) and that result comes back nil: a train step's weights and
// optimizer state stay in the buffers the kernels update in place.
func (e *Executable) RunKept(args []*interp.Tensor, keep []bool) ([]*interp.Tensor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.res == nil {
		return nil, fmt.Errorf("cpu: @%s: run after Close", e.f.Name)
	}
	f := e.f
	if len(args) != len(f.Params) || keep != nil && len(keep) != len(f.Params) {
		return nil, fmt.Errorf("cpu: @%s takes %d arguments, have %d", f.Name, len(f.Params), len(args))
	}
	kept := map[int]bool{} // results not copied out
	for i, p := range f.Params {
		if keep != nil && keep[i] {
			r := e.resultOf[i]
			if r < 0 || !e.ran {
				return nil, fmt.Errorf("cpu: @%s: parameter %%%s cannot keep a value: no result of that name, or no run before", f.Name, p.Name)
			}
			kept[r] = true
			continue
		}
		if err := args[i].Check(p.Type); err != nil {
			return nil, fmt.Errorf("cpu: @%s: argument %%%s: %v", f.Name, p.Name, err)
		}
	}
	var t0 time.Time
	if e.prof != nil {
		t0 = time.Now()
	}
	e.ran = false
	e.feedBack(keep)
	for i, p := range f.Params {
		if keep == nil || !keep[i] {
			writeTensor(e.bufs[p], args[i])
		}
	}
	if e.prof != nil {
		e.runProfiled(t0)
	} else {
		runAll(e.launches())
	}
	e.ran = true
	out := make([]*interp.Tensor, len(f.Results))
	var t1 time.Time
	if e.prof != nil {
		t1 = time.Now()
	}
	for i, r := range f.Results {
		if !kept[i] {
			out[i] = readTensor(e.bufs[r], r.Type)
		}
	}
	if e.prof != nil {
		e.prof.copyOut += time.Since(t1)
		e.prof.wall += time.Since(t0)
		e.prof.runs++
		if p := e.prof; p.every > 0 && p.runs%p.every == 0 {
			p.print(os.Stderr, e)
		}
	}
	goruntime.KeepAlive(e)
	return out, nil
}

// feedBack copies the kept parameters' values from their results' buffers
// into their own, where the plan did not already put them there. Results
// living in another parameter's buffer are read before any is written.
func (e *Executable) feedBack(keep []bool) {
	type move struct {
		dst unsafe.Pointer
		src []byte
	}
	var moves []move
	for i, p := range e.f.Params {
		if keep == nil || !keep[i] {
			continue
		}
		src := e.bufs[e.f.Results[e.resultOf[i]]]
		if src == e.bufs[p] {
			continue
		}
		n := p.Type.Shape.NumElements() * p.Type.DType.Size()
		moves = append(moves, move{e.bufs[p], append([]byte(nil), unsafe.Slice((*byte)(src), n)...)})
	}
	for _, m := range moves {
		copy(unsafe.Slice((*byte)(m.dst), len(m.src)), m.src)
	}
}

// Result reads result i as the last run left it.
func (e *Executable) Result(i int) (*interp.Tensor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.res == nil || !e.ran || i < 0 || i >= len(e.f.Results) {
		return nil, fmt.Errorf("cpu: @%s: no result %d to read", e.f.Name, i)
	}
	r := e.f.Results[i]
	return readTensor(e.bufs[r], r.Type), nil
}

// runProfiled runs the kernels timing each (XLC_DEBUG >= 2); t0 is when
// the run began (the copies in are counted from there).
func (e *Executable) runProfiled(t0 time.Time) {
	p := e.prof
	t1 := time.Now()
	p.copyIn += t1.Sub(t0)
	for i := range e.kernels {
		e.kernels[i].run()
		t2 := time.Now()
		p.launches[i] += t2.Sub(t1)
		t1 = t2
	}
}

// minParallelWork is the estimated work below which a kernel runs on the
// calling thread.
const minParallelWork = 1 << 15

// run calls the kernel on its whole range, split into GOMAXPROCS contiguous
// parts run on the thread pool (pool.go) when it is big enough.
func (k *kernel) run() {
	ls := [1]launch{k.launch()}
	runAll(ls[:])
}

// launch is the kernel's entry in runAll's sequence, its parts chosen now.
func (k *kernel) launch() launch {
	return launch{fn: k.fn, bufs: k.args, n: C.int64_t(k.extent), parts: C.int64_t(k.parts())}
}

// parts is how many parts run splits the kernel's range into now: 1 for
// a small kernel, else GOMAXPROCS (at most the extent and the pool's
// workers plus the calling thread), starting workers as needed.
func (k *kernel) parts() int {
	n := k.extent
	p := min(int64(goruntime.GOMAXPROCS(0)), n)
	if p <= 1 || n*k.cost < minParallelWork {
		return 1
	}
	if w := int64(workers.Load()); w+1 < p {
		w = int64(poolWorkers(int(p - 1)))
		workers.Store(int32(w))
		p = min(p, w+1)
	}
	return int(p)
}

// launches is the run's sequence of kernels for runAll, its parts
// chosen now (GOMAXPROCS may have changed since the last run).
func (e *Executable) launches() []launch {
	if len(e.seq) != len(e.kernels) {
		e.seq = make([]launch, len(e.kernels))
	}
	for i := range e.kernels {
		e.seq[i] = e.kernels[i].launch()
	}
	return e.seq
}

// workers is how many pool threads run (poolWorkers' last answer).
var workers atomic.Int32

// writeTensor stores t's elements at p in t's element type.
func writeTensor(p unsafe.Pointer, t *interp.Tensor) {
	interp.Encode(unsafe.Slice((*byte)(p), interp.ByteSize(t.Type)), t)
}

// readTensor returns a tensor of type t holding the elements at p.
func readTensor(p unsafe.Pointer, t ir.Type) *interp.Tensor {
	return interp.Decode(unsafe.Slice((*byte)(p), interp.ByteSize(t)), t)
}
