// Package dlopen loads a shared object of kernels with dlopen and calls
// them through the kernel ABI of package codegen,
//
//	void name(void **bufs, int64_t lo, int64_t hi);
//
// for tests and benchmarks of generated code.
package dlopen

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

typedef void (*xlc_kernel)(void **, int64_t, int64_t);

static void xlc_call(void *f, void **bufs, int64_t lo, int64_t hi) {
	((xlc_kernel)f)(bufs, lo, hi);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// Lib is a loaded shared object.
type Lib struct {
	h unsafe.Pointer
}

// Open loads the shared object at path (RTLD_NOW | RTLD_LOCAL).
func Open(path string) (*Lib, error) {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	h := C.dlopen(cs, C.RTLD_NOW|C.RTLD_LOCAL)
	if h == nil {
		return nil, fmt.Errorf("dlopen %s: %s", path, C.GoString(C.dlerror()))
	}
	return &Lib{h: h}, nil
}

// Close unloads the library; its kernels must not be called afterwards.
func (l *Lib) Close() error {
	if l.h == nil {
		return nil
	}
	if C.dlclose(l.h) != 0 {
		return errors.New("dlclose: " + C.GoString(C.dlerror()))
	}
	l.h = nil
	return nil
}

// Kernel is an exported kernel of a Lib.
type Kernel struct {
	fn unsafe.Pointer
}

// Kernel looks up the exported kernel name.
func (l *Lib) Kernel(name string) (Kernel, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	f := C.dlsym(l.h, cs)
	if f == nil {
		return Kernel{}, fmt.Errorf("dlsym %s: %s", name, C.GoString(C.dlerror()))
	}
	return Kernel{fn: f}, nil
}

// CallF32 runs units [lo, hi) of the kernel on f32 buffers, in bufs order.
// Every buffer must be non-empty.
func (k Kernel) CallF32(bufs [][]float32, lo, hi int64) {
	var pin runtime.Pinner
	defer pin.Unpin()
	ptrs := make([]unsafe.Pointer, len(bufs))
	for i, b := range bufs {
		p := unsafe.Pointer(unsafe.SliceData(b))
		pin.Pin(p)
		ptrs[i] = p
	}
	C.xlc_call(k.fn, (*unsafe.Pointer)(unsafe.SliceData(ptrs)), C.int64_t(lo), C.int64_t(hi))
}
