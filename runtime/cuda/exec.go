//go:build cuda

package cuda

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"xlc/codegen"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
)

// Executable runs one loaded function on the GPU. Runs are serialized.
type Executable struct {
	mu      sync.Mutex
	f       *ir.Func
	res     *resources
	cleanup goruntime.Cleanup
	plan    *passes.BufferPlan
	bufs    map[*ir.Value]cu.DevicePtr
	kernels []kernel
	// resultOf is, by parameter, the index of the result of the same name
	// (-1 if none): the value RunKept feeds back.
	resultOf []int
	ran      bool     // the last run completed: results can be read, values kept
	debug    int      // XLC_DEBUG: 1 synchronizes after every kernel
	prof     *profile // XLC_DEBUG >= 2, else nil (profile.go)
	failed   error
}

var _ runtime.Resident = (*Executable)(nil)

// Plan is the buffer plan the executable's device memory follows.
func (e *Executable) Plan() *passes.BufferPlan { return e.plan }

// resources are the driver objects an Executable owns.
type resources struct {
	mod     cu.Module
	loaded  bool
	stream  cu.Stream
	arena   cu.DevicePtr // the parameters' buffers, then the plan's arena
	ptrs    cu.DevicePtr // every kernel's array of buffer addresses
	scratch cu.DevicePtr // RunKept's staging of values fed back
	graph   *graph
	prof    *profEvents // with Executable.prof
}

func (r *resources) free() {
	leave, err := enter()
	if err != nil {
		return
	}
	defer leave()
	if r.stream.C() != nil {
		r.stream.Synchronize()
	}
	r.graph.destroy()
	r.graph = nil
	r.prof.free()
	r.prof = nil
	for _, p := range []*cu.DevicePtr{&r.arena, &r.ptrs, &r.scratch} {
		if *p != 0 {
			cu.MemFree(*p)
			*p = 0
		}
	}
	if r.loaded {
		r.mod.Unload()
		r.loaded = false
	}
	if r.stream.C() != nil {
		r.stream.Destroy()
	}
}

type kernel struct {
	sym           string
	instr         int
	fn            cu.Function
	bufs          uint64 // device address of its buffer addresses
	n             int64  // codegen.Kernel.Extent
	grid, threads int
}

// load loads prog, f's kernels compiled for a GPU target, from their PTX.
func load(f *ir.Func, prog *codegen.Program, ptx string) (runtime.Executable, error) {
	return newExecutable(f, prog, ptx)
}

func newExecutable(f *ir.Func, prog *codegen.Program, ptx string) (_ *Executable, err error) {
	plan := prog.Plan
	if err := plan.Verify(f); err != nil {
		return nil, fmt.Errorf("cuda: %v", err)
	}
	leave, err := enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	res := &resources{}
	defer func() {
		if err != nil {
			res.free()
		}
	}()
	fail := func(what string, err error) error {
		return fmt.Errorf("cuda: @%s: %s: %s", f.Name, what, driverError(err))
	}
	if res.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return nil, fail("creating a stream", err)
	}
	if res.mod, err = loadPTX(ptx); err != nil {
		return nil, fmt.Errorf("cuda: @%s: %v", f.Name, err)
	}
	res.loaded = true

	// Device memory follows the buffer plan, as runtime/cpu's host memory.
	total := int64(plan.ParamBytes + plan.ArenaBytes)
	if res.arena, err = alloc(max(total, 256), "the buffers"); err != nil {
		return nil, fmt.Errorf("cuda: @%s: %v", f.Name, err)
	}
	if err := cu.MemsetD8Async(res.arena, 0, max(total, 256), res.stream); err != nil {
		return nil, fail("clearing the buffers", err)
	}
	e := &Executable{f: f, res: res, plan: plan, bufs: map[*ir.Value]cu.DevicePtr{}, debug: runtime.DebugLevel()}
	for i, p := range f.Params {
		e.bufs[p] = res.arena + cu.DevicePtr(plan.ParamOffset[i])
	}
	for i, v := range f.Body {
		if l := plan.Loc[i]; l.Param >= 0 {
			e.bufs[v] = e.bufs[f.Params[l.Param]]
		} else {
			e.bufs[v] = res.arena + cu.DevicePtr(plan.ParamBytes+l.Offset)
		}
	}
	if err := prog.CheckBuffers(f, func(a, b *ir.Value) bool { return e.bufs[a] == e.bufs[b] }); err != nil {
		return nil, fmt.Errorf("cuda: %v", err)
	}
	if err := e.addKernels(prog, res.mod); err != nil {
		return nil, err
	}
	e.resultOf = runtime.ResultOf(f)
	if n := e.feedBackBytes(); n > 0 {
		if res.scratch, err = alloc(n, "the state fed back"); err != nil {
			return nil, fmt.Errorf("cuda: @%s: %v", f.Name, err)
		}
	}
	if e.debug >= 2 {
		e.prof = newProfile(f, prog.Kernels)
		if res.prof, err = newProfEvents(e); err != nil {
			return nil, fail("creating the profile's events", err)
		}
	}
	if e.debug != 1 && os.Getenv("XLC_CUDA_GRAPH") != "0" {
		if res.graph, err = capture(res.stream, f.Name, e.launchAll); err != nil {
			return nil, err
		}
	}
	if err := res.stream.Synchronize(); err != nil {
		return nil, fail("setting up", err)
	}
	e.cleanup = goruntime.AddCleanup(e, func(r *resources) { r.free() }, res)
	return e, nil
}

// addKernels looks up every kernel's function and writes the device array
// of their buffers' addresses: operands in order, then results.
func (e *Executable) addKernels(prog *codegen.Program, mod cu.Module) error {
	f := e.f
	fns := map[string]cu.Function{}
	var addrs []uint64
	for _, k := range prog.Kernels {
		fn, ok := fns[k.Symbol]
		if !ok {
			var err error
			if fn, err = mod.Function(k.Symbol); err != nil {
				return fmt.Errorf("cuda: @%s: kernel %s: %s", f.Name, k.Symbol, driverError(err))
			}
			fns[k.Symbol] = fn
		}
		if k.Extent > 0 {
			most, err := fn.Attribute(cu.FnMaxThreadsPerBlock)
			switch {
			case err != nil:
				return fmt.Errorf("cuda: @%s: kernel %s: %s", f.Name, k.Symbol, driverError(err))
			case k.Grid <= 0 || k.Threads <= 0:
				return fmt.Errorf("cuda: @%s: kernel %s (%%%d) has no launch configuration", f.Name, k.Symbol, k.Instr)
			case k.Scratch > 0:
				return fmt.Errorf("cuda: @%s: kernel %s (%%%d) asks for a CPU kernel's scratch buffer", f.Name, k.Symbol, k.Instr)
			case k.Threads > most:
				return fmt.Errorf("cuda: @%s: kernel %s (%%%d = %s) is launched with %d threads per block; on this GPU it takes at most %d", f.Name, k.Symbol, k.Instr, codegen.Describe(f.Body[k.Instr]), k.Threads, most)
			}
		}
		e.kernels = append(e.kernels, kernel{sym: k.Symbol, instr: k.Instr, fn: fn, bufs: uint64(len(addrs)) * 8,
			n: k.Extent, grid: k.Grid, threads: k.Threads})
		for _, a := range k.Args {
			addrs = append(addrs, uint64(e.bufs[a]))
		}
		for _, v := range k.Results {
			addrs = append(addrs, uint64(e.bufs[v]))
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	var err error
	if e.res.ptrs, err = alloc(int64(len(addrs))*8, "the kernels' arguments"); err != nil {
		return fmt.Errorf("cuda: @%s: %v", f.Name, err)
	}
	for i := range e.kernels {
		e.kernels[i].bufs += uint64(e.res.ptrs)
	}
	if err := cu.MemcpyHtoDAsync(e.res.ptrs, unsafe.Pointer(&addrs[0]), int64(len(addrs))*8, e.res.stream); err != nil {
		return fmt.Errorf("cuda: @%s: copying the kernels' arguments: %s", f.Name, driverError(err))
	}
	// The copy reads addrs before it returns (pageable memory); the
	// synchronization at the end of the load makes sure.
	if err := e.res.stream.Synchronize(); err != nil {
		return fmt.Errorf("cuda: @%s: copying the kernels' arguments: %s", f.Name, driverError(err))
	}
	goruntime.KeepAlive(addrs)
	return nil
}

// loadPTX loads a module from PTX text, which the driver compiles for the
// device; its error log, when it fails, ends the one-line error.
func loadPTX(ptx string) (cu.Module, error) {
	log := &cu.JITErrorLogBuffer{Buffer: make([]byte, 4096)}
	mod, err := cu.LoadDataEx(ptx, log)
	if err != nil {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(string(log.Buffer[:clen(log.Buffer)]), "\n", "; ")), " ")
		if len(msg) > 400 {
			msg = msg[:400] + "..."
		}
		if msg != "" {
			msg = ": " + msg
		}
		return mod, fmt.Errorf("the driver could not load the kernels' PTX: %s%s", driverError(err), msg)
	}
	return mod, nil
}

// clen is the length of the NUL-terminated string in b.
func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// alloc allocates n bytes of device memory for what; out of memory, the
// error says how much was asked for and how much is free.
func alloc(n int64, what string) (cu.DevicePtr, error) {
	p, err := cu.MemAlloc(n)
	if err == nil {
		return p, nil
	}
	if err == cu.OutOfMemory {
		if free, _, err2 := cu.MemInfo(); err2 == nil {
			return 0, fmt.Errorf("out of memory allocating %s for %s (GPU 0 has %s free)", size(n), what, size(free))
		}
		return 0, fmt.Errorf("out of memory allocating %s for %s", size(n), what)
	}
	return 0, fmt.Errorf("allocating %s for %s: %s", size(n), what, driverError(err))
}

// size formats a byte count in GiB, MiB or KiB.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// Close frees the device memory and unloads the module. It is safe to call
// more than once; Run fails afterwards.
func (e *Executable) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.res == nil {
		return nil
	}
	if e.prof != nil {
		e.prof.print(e.prof.out)
	}
	e.cleanup.Stop()
	e.res.free()
	e.res = nil
	return nil
}
