//go:build cuda

package cuda

/*
#include <cuda.h>

// gorgonia.org/cu v0.9.6 builds graphs node by node but cannot capture a
// stream into one: these few calls do.
static int xlc_capture_begin(void *stream) {
	return (int)cuStreamBeginCapture((CUstream)stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
}

// xlc_capture_end ends the capture (always, so the stream leaves capture
// mode) and, when ok and the capture succeeded, instantiates the graph;
// *instantiating tells which of the two a failure was.
static int xlc_capture_end(void *stream, int ok, CUgraph *graph, CUgraphExec *exec, int *instantiating) {
	*instantiating = 0;
	CUresult r = cuStreamEndCapture((CUstream)stream, graph);
	if (r != CUDA_SUCCESS || !ok) return (int)r;
	*instantiating = 1;
	return (int)cuGraphInstantiateWithFlags(exec, *graph, 0);
}

static int xlc_graph_launch(CUgraphExec exec, void *stream) {
	return (int)cuGraphLaunch(exec, (CUstream)stream);
}

static void xlc_graph_destroy(CUgraph graph, CUgraphExec exec) {
	if (exec) cuGraphExecDestroy(exec);
	if (graph) cuGraphDestroy(graph);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// graph is a captured sequence of launches, replayed by one call.
type graph struct {
	g C.CUgraph
	x C.CUgraphExec
}

// streamHandle is s's CUstream.
func streamHandle(s cu.Stream) unsafe.Pointer { return unsafe.Pointer(s.C()) }

// capture records on stream s what launch enqueues for function name and
// instantiates it as a graph: launch's own error (a kernel that cannot be
// launched) comes first, then the driver's.
func capture(s cu.Stream, name string, launch func() error) (*graph, error) {
	h := streamHandle(s)
	if r := C.xlc_capture_begin(h); r != 0 {
		return nil, fmt.Errorf("cuda: @%s: capturing the launches as a graph: %s (XLC_CUDA_GRAPH=0 launches them one by one)", name, errorText(int(r)))
	}
	err := launch()
	ok := C.int(0)
	if err == nil {
		ok = 1
	}
	g := &graph{}
	var inst C.int
	r := C.xlc_capture_end(h, ok, &g.g, &g.x, &inst)
	if err == nil && r != 0 {
		what := "ending the capture of the launches"
		if inst != 0 {
			what = "instantiating the captured graph"
		}
		err = fmt.Errorf("cuda: @%s: %s: %s (XLC_CUDA_GRAPH=0 launches them one by one)", name, what, errorText(int(r)))
	}
	if err != nil {
		g.destroy()
		return nil, err
	}
	return g, nil
}

// launch replays the graph on stream s.
func (g *graph) launch(s cu.Stream) error {
	if r := C.xlc_graph_launch(g.x, streamHandle(s)); r != 0 {
		return fmt.Errorf("%s", errorText(int(r)))
	}
	return nil
}

func (g *graph) destroy() {
	if g != nil {
		C.xlc_graph_destroy(g.g, g.x)
		g.g, g.x = nil, nil
	}
}
