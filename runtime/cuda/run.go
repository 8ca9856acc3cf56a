//go:build cuda

package cuda

import (
	"fmt"
	goruntime "runtime"
	"unsafe"

	"gorgonia.org/cu"

	"xlc/codegen"
	"xlc/runtime/interp"
)

// Run takes the arguments in the function's parameter order and returns its
// results in order, copied from the device.
func (e *Executable) Run(args []*interp.Tensor) ([]*interp.Tensor, error) {
	return e.RunKept(args, nil)
}

// RunKept is Run, except that each parameter i with keep[i] keeps the value
// its result of the same name had at the end of the previous run (args[i]
// is not read) and that result comes back nil: a train step's weights and
// optimizer state stay on the device, where the kernels update them.
func (e *Executable) RunKept(args []*interp.Tensor, keep []bool) ([]*interp.Tensor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.f
	switch {
	case e.res == nil:
		return nil, fmt.Errorf("cuda: @%s: run after Close", f.Name)
	case e.failed != nil:
		return nil, e.failed
	case len(args) != len(f.Params) || keep != nil && len(keep) != len(f.Params):
		return nil, fmt.Errorf("cuda: @%s takes %d arguments, have %d", f.Name, len(f.Params), len(args))
	}
	kept := map[int]bool{} // results not copied out
	for i, p := range f.Params {
		if keep != nil && keep[i] {
			r := e.resultOf[i]
			if r < 0 || !e.ran {
				return nil, fmt.Errorf("cuda: @%s: parameter %%%s cannot keep a value: no result of that name, or no run before", f.Name, p.Name)
			}
			kept[r] = true
			continue
		}
		if err := args[i].Check(p.Type); err != nil {
			return nil, fmt.Errorf("cuda: @%s: argument %%%s: %v", f.Name, p.Name, err)
		}
	}
	leave, err := enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	e.ran = false
	s := e.res.stream
	if err := e.feedBack(keep); err != nil {
		return nil, e.fail(fmt.Errorf("cuda: @%s: feeding the state back: %s", f.Name, driverError(err)))
	}
	for i, p := range f.Params {
		if keep != nil && keep[i] {
			continue
		}
		n := interp.ByteSize(p.Type)
		if n == 0 {
			continue
		}
		b := make([]byte, n)
		interp.Encode(b, args[i])
		// From pageable memory the copy has read b when it returns.
		if err := cu.MemcpyHtoDAsync(e.bufs[p], unsafe.Pointer(&b[0]), int64(n), s); err != nil {
			return nil, e.fail(fmt.Errorf("cuda: @%s: copying %%%s to the GPU: %s", f.Name, p.Name, driverError(err)))
		}
		goruntime.KeepAlive(b)
	}
	if e.prof != nil {
		err = e.launchTimed()
	} else if g := e.res.graph; g != nil {
		if err = g.launch(s); err != nil {
			err = fmt.Errorf("cuda: @%s: launching the step's graph: %v", f.Name, err)
		}
	} else {
		err = e.launchAll()
	}
	if err == nil {
		if err = s.Synchronize(); err != nil {
			err = fmt.Errorf("cuda: @%s: a kernel failed: %s (XLC_DEBUG=1 names it)", f.Name, driverError(err))
		}
	}
	if err != nil {
		return nil, e.fail(err)
	}
	if e.prof != nil {
		e.timed()
	}
	e.ran = true
	out := make([]*interp.Tensor, len(f.Results))
	for i := range f.Results {
		if !kept[i] {
			if out[i], err = e.read(i); err != nil {
				return nil, e.fail(fmt.Errorf("cuda: @%s: copying result %s from the GPU: %s", f.Name, f.ResultNames[i], driverError(err)))
			}
		}
	}
	return out, nil
}

// fail records err, after which the executable answers every run with it:
// a kernel that faulted leaves the context unusable.
func (e *Executable) fail(err error) error {
	e.ran = false
	e.failed = err
	return err
}

// launchAll enqueues every kernel on the stream in order; with XLC_DEBUG=1
// it waits for each, so that a failure names its kernel.
func (e *Executable) launchAll() error {
	for i := range e.kernels {
		if err := e.launch(i, e.debug == 1); err != nil {
			return err
		}
	}
	return nil
}

// launch enqueues kernel i, unless its range is empty, and with wait waits
// for it.
func (e *Executable) launch(i int, wait bool) error {
	k := &e.kernels[i]
	if k.n <= 0 {
		return nil
	}
	s := e.res.stream
	bufs, n := k.bufs, k.n // cu reads 8 bytes per argument
	err := k.fn.Launch(k.grid, 1, 1, k.threads, 1, 1, 0, s, []unsafe.Pointer{unsafe.Pointer(&bufs), unsafe.Pointer(&n)})
	if err == nil && wait {
		err = s.Synchronize()
	}
	if err != nil {
		return fmt.Errorf("cuda: @%s: kernel %s (%%%d = %s), %d blocks of %d threads: %s",
			e.f.Name, k.sym, k.instr, codegen.Describe(e.f.Body[k.instr]), k.grid, k.threads, driverError(err))
	}
	return nil
}

// read copies result i from the device.
func (e *Executable) read(i int) (*interp.Tensor, error) {
	r := e.f.Results[i]
	n := interp.ByteSize(r.Type)
	b := make([]byte, max(n, 1))
	if n > 0 {
		// Into pageable memory the copy has completed when it returns.
		if err := cu.MemcpyDtoHAsync(unsafe.Pointer(&b[0]), e.bufs[r], int64(n), e.res.stream); err != nil {
			return nil, err
		}
		if err := e.res.stream.Synchronize(); err != nil {
			return nil, err
		}
	}
	return interp.Decode(b[:n], r.Type), nil
}

// Result reads result i as the last run left it.
func (e *Executable) Result(i int) (*interp.Tensor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.res == nil || !e.ran || i < 0 || i >= len(e.f.Results) {
		return nil, fmt.Errorf("cuda: @%s: no result %d to read", e.f.Name, i)
	}
	leave, err := enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	t, err := e.read(i)
	if err != nil {
		return nil, e.fail(fmt.Errorf("cuda: @%s: copying result %s from the GPU: %s", e.f.Name, e.f.ResultNames[i], driverError(err)))
	}
	return t, nil
}

// stageOffsets is, by parameter, where in the scratch buffer feedBack
// stages its value (-1: never staged, its result is in its own buffer or
// it has none), and the scratch bytes needed.
func (e *Executable) stageOffsets() (offs []int64, total int64) {
	for i, p := range e.f.Params {
		off := int64(-1)
		if r := e.resultOf[i]; r >= 0 && e.bufs[e.f.Results[r]] != e.bufs[p] && interp.ByteSize(p.Type) > 0 {
			off = total
			total += int64(interp.ByteSize(p.Type)+255) &^ 255
		}
		offs = append(offs, off)
	}
	return offs, total
}

// feedBackBytes is the scratch memory feedBack needs.
func (e *Executable) feedBackBytes() int64 {
	_, n := e.stageOffsets()
	return n
}

// feedBack copies, on the stream, the kept parameters' values from their
// results' buffers into their own where the plan did not already put them
// there: every value into the scratch buffer first, then into place, since
// a result may live in another kept parameter's buffer.
func (e *Executable) feedBack(keep []bool) error {
	if keep == nil {
		return nil
	}
	offs, _ := e.stageOffsets()
	s := e.res.stream
	for pass := range 2 {
		for i, p := range e.f.Params {
			if !keep[i] || offs[i] < 0 {
				continue
			}
			tmp, n := e.res.scratch+cu.DevicePtr(offs[i]), int64(interp.ByteSize(p.Type))
			var err error
			if pass == 0 {
				err = cu.MemcpyDtoDAsync(tmp, e.bufs[e.f.Results[e.resultOf[i]]], n, s)
			} else {
				err = cu.MemcpyDtoDAsync(e.bufs[p], tmp, n, s)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
