//go:build cuda

package cuda

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl -lcuda
#include <dlfcn.h>
#include <stdlib.h>
#include <cuda.h>

// gorgonia.org/cu's package init calls cuInit and exits the process when
// it fails, which would make a cuda-tagged xlc unusable on a machine
// without a GPU. This definition of cuInit, in the executable, interposes
// the driver library's for every call from the executable (cu's
// included): it forwards to the real one (the next definition, found with
// dlsym(RTLD_NEXT)), records the result for Available and reports success
// to its caller. Nothing else calls the driver unless Available is nil.
static CUresult xlc_init_result = CUDA_ERROR_NOT_INITIALIZED;
static int xlc_init_calls;

CUresult cuInit(unsigned int flags) {
	CUresult (*real)(unsigned int) = (CUresult (*)(unsigned int))dlsym(RTLD_NEXT, "cuInit");
	xlc_init_calls++;
	xlc_init_result = real ? real(flags) : CUDA_ERROR_NOT_FOUND;
	return CUDA_SUCCESS;
}

static int xlc_init_status(int *calls) { *calls = xlc_init_calls; return (int)xlc_init_result; }

static const char *xlc_error_name(int r) {
	const char *s = NULL;
	return cuGetErrorName((CUresult)r, &s) == CUDA_SUCCESS && s ? s : "CUDA_ERROR_UNKNOWN";
}

static const char *xlc_error_string(int r) {
	const char *s = NULL;
	return cuGetErrorString((CUresult)r, &s) == CUDA_SUCCESS && s ? s : "unknown error";
}
*/
import "C"

import (
	"fmt"
	"reflect"
	goruntime "runtime"
	"sync"

	"gorgonia.org/cu"
)

// available is nil when cuInit succeeded and there is a GPU; else the
// reason, in one line.
func available() error {
	var calls C.int
	r := int(C.xlc_init_status(&calls))
	switch {
	case calls == 0:
		return fmt.Errorf("cuda: the driver was never initialized (gorgonia.org/cu's init did not run)")
	case r == C.CUDA_ERROR_NO_DEVICE:
		return fmt.Errorf("cuda: no NVIDIA GPU found (cuInit: no device)")
	case r == C.CUDA_ERROR_STUB_LIBRARY:
		return fmt.Errorf("cuda: the stub libcuda.so was loaded, not the NVIDIA driver's (cuInit: %s); check LD_LIBRARY_PATH", errorText(r))
	case r != C.CUDA_SUCCESS:
		return fmt.Errorf("cuda: the NVIDIA driver did not start (cuInit: %s)", errorText(r))
	}
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("cuda: counting the GPUs: %s (cuDeviceGetCount)", driverError(err))
	}
	if n == 0 {
		return fmt.Errorf("cuda: no NVIDIA GPU found (cuDeviceGetCount: 0 devices)")
	}
	return nil
}

// errorText is the driver's description of result r and its name:
// "out of memory (CUDA_ERROR_OUT_OF_MEMORY)".
func errorText(r int) string {
	return fmt.Sprintf("%s (%s)", C.GoString(C.xlc_error_string(C.int(r))), C.GoString(C.xlc_error_name(C.int(r))))
}

// driverError is err, a result of a gorgonia.org/cu call, as errorText
// words it; other errors as they are.
func driverError(err error) string {
	if v := reflect.ValueOf(err); v.IsValid() && v.Kind() == reflect.Int {
		return errorText(int(v.Int()))
	}
	return err.Error()
}

// gpu is GPU 0 (what the backend needs to know of it, read once by
// device) and its primary context (retained once by open).
var gpu struct {
	devOnce, ctxOnce sync.Once
	devErr, ctxErr   error
	dev              cu.Device
	ctx              cu.CUContext
	major, minor     int
	name             string
}

// heapBytes is the device heap kernels take scratch memory from (malloc in
// a kernel; the driver's default is 8 MiB).
const heapBytes = 1 << 30

// device is GPU 0's compute capability and name, read without a context.
func device() (major, minor int, name string, err error) {
	gpu.devOnce.Do(func() {
		if gpu.devErr = available(); gpu.devErr != nil {
			return
		}
		fail := func(what string, err error) {
			gpu.devErr = fmt.Errorf("cuda: %s: %s", what, driverError(err))
		}
		var err error
		if gpu.dev, err = cu.GetDevice(0); err != nil {
			fail("GPU 0", err)
			return
		}
		if gpu.name, err = gpu.dev.Name(); err != nil {
			fail("GPU 0's name", err)
			return
		}
		if gpu.major, err = gpu.dev.Attribute(cu.ComputeCapabilityMajor); err == nil {
			gpu.minor, err = gpu.dev.Attribute(cu.ComputeCapabilityMinor)
		}
		if err != nil {
			fail("GPU 0's compute capability", err)
		}
	})
	return gpu.major, gpu.minor, gpu.name, gpu.devErr
}

// open retains GPU 0's primary context, once, and sets its device heap
// before any kernel runs.
func open() error {
	gpu.ctxOnce.Do(func() {
		if _, _, _, gpu.ctxErr = device(); gpu.ctxErr != nil {
			return
		}
		var err error
		if gpu.ctx, err = gpu.dev.RetainPrimaryCtx(); err != nil {
			gpu.ctxErr = fmt.Errorf("cuda: a context on GPU 0 (%s): %s", gpu.name, driverError(err))
			return
		}
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		if err = cu.SetCurrentContext(gpu.ctx); err != nil {
			gpu.ctxErr = fmt.Errorf("cuda: making the context of GPU 0 (%s) current: %s", gpu.name, driverError(err))
		} else if err = cu.SetLimit(cu.MallocHeapSize, heapBytes); err != nil {
			gpu.ctxErr = fmt.Errorf("cuda: the device heap of GPU 0 (%s): %s", gpu.name, driverError(err))
		}
	})
	return gpu.ctxErr
}

// enter makes the GPU's context current on this goroutine's thread, locked
// to it until leave: every driver call of the backend runs between the two.
func enter() (leave func(), err error) {
	if err := open(); err != nil {
		return nil, err
	}
	goruntime.LockOSThread()
	if err := cu.SetCurrentContext(gpu.ctx); err != nil {
		goruntime.UnlockOSThread()
		return nil, fmt.Errorf("cuda: making the context current: %s", driverError(err))
	}
	return goruntime.UnlockOSThread, nil
}
