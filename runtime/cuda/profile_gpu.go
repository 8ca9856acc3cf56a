//go:build cuda

package cuda

/*
#include <cuda.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

// A gate (0 closed, 1 opened by the host, 2 opened by its timeout) holds
// a stream back, as a host function, until the host has enqueued what
// follows it: the GPU then runs those kernels back to back and their
// events time the kernels, not the host's launches. The timeout (250 ms)
// keeps a full launch queue from waiting on the gate forever.
static void CUDA_CB xlc_gate_wait(void *p) {
	int *g = (int *)p;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(g, __ATOMIC_ACQUIRE) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > 250000000L) {
			int closed = 0;
			__atomic_compare_exchange_n(g, &closed, 2, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
			return;
		}
		sched_yield();
	}
}

static int xlc_gate_close(void *stream, int *g) {
	__atomic_store_n(g, 0, __ATOMIC_RELEASE);
	return (int)cuLaunchHostFunc((CUstream)stream, xlc_gate_wait, g);
}

static void xlc_gate_open(int *g) {
	int closed = 0;
	__atomic_compare_exchange_n(g, &closed, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static int xlc_gate_state(int *g) { return __atomic_load_n(g, __ATOMIC_ACQUIRE); }
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"

	"gorgonia.org/cu"
)

// profSegment is how many kernels one gate holds back: few enough that
// they, their events and the gate fit in the stream's launch queue.
const profSegment = 128

// profEvents are the driver objects of a profile (resources.prof).
type profEvents struct {
	start, end []cu.Event // by kernel; zero for a kernel never launched
	g0, g1     cu.Event   // around a graph replay
	gates      *C.int     // C memory: a host function reads it after the call
	ngates     int        // one per segment, then the graph's
	closed     []int      // gates closed in this run
	ungated    bool       // closing a gate failed once: no more tries
	began      time.Time  // the run's start
}

// newProfEvents creates the events and gates that time e's kernels.
func newProfEvents(e *Executable) (*profEvents, error) {
	ev := &profEvents{start: make([]cu.Event, len(e.kernels)), end: make([]cu.Event, len(e.kernels))}
	mk := func(p *cu.Event) error {
		var err error
		*p, err = cu.MakeEvent(cu.DefaultEvent)
		return err
	}
	n := 0
	for i, k := range e.kernels {
		if k.n > 0 {
			if err := mk(&ev.start[i]); err != nil {
				return ev, err
			}
			if err := mk(&ev.end[i]); err != nil {
				return ev, err
			}
			n++
		}
	}
	if err := mk(&ev.g0); err != nil {
		return ev, err
	}
	if err := mk(&ev.g1); err != nil {
		return ev, err
	}
	ev.ngates = (n+profSegment-1)/profSegment + 1
	ev.gates = (*C.int)(C.calloc(C.size_t(ev.ngates), C.sizeof_int))
	return ev, nil
}

// free destroys the events and frees the gates; the stream is idle.
func (ev *profEvents) free() {
	if ev == nil {
		return
	}
	evs := append(append([]cu.Event{ev.g0, ev.g1}, ev.start...), ev.end...)
	for i := range evs {
		if evs[i] != (cu.Event{}) {
			cu.DestroyEvent(&evs[i])
		}
	}
	if ev.gates != nil {
		C.free(unsafe.Pointer(ev.gates))
		ev.gates = nil
	}
}

// gate is gate i's flag.
func (ev *profEvents) gate(i int) *C.int {
	return (*C.int)(unsafe.Add(unsafe.Pointer(ev.gates), uintptr(i)*C.sizeof_int))
}

// hold closes gate i on stream s; if the driver refuses, the profile says
// so and the launches go on ungated.
func (ev *profEvents) hold(s cu.Stream, i int, p *profile) {
	if ev.ungated {
		return
	}
	if r := C.xlc_gate_close(streamHandle(s), ev.gate(i)); r != 0 {
		ev.ungated = true
		p.note = fmt.Sprintf("cuLaunchHostFunc: %s: kernels not held back, their times include launch latency", errorText(int(r)))
		return
	}
	ev.closed = append(ev.closed, i)
}

// release opens every gate closed in this run.
func (ev *profEvents) release() {
	for _, i := range ev.closed {
		C.xlc_gate_open(ev.gate(i))
	}
}

// launchTimed enqueues a run for the profile: the warm-up as the step is
// run without it; then, in turn, the graph replay between two events, or
// every kernel between its own two events, held back by a gate per
// profSegment kernels.
func (e *Executable) launchTimed() error {
	p, ev, s := e.prof, e.res.prof, e.res.stream
	ev.began, ev.closed = time.Now(), ev.closed[:0]
	defer ev.release()
	record := func(x cu.Event) error {
		if err := x.Record(s); err != nil {
			return fmt.Errorf("cuda: @%s: recording an event: %s", e.f.Name, driverError(err))
		}
		return nil
	}
	g := e.res.graph
	switch {
	case p.all == 0 && g == nil:
		return e.launchAll()
	case p.all == 0:
		if err := g.launch(s); err != nil {
			return fmt.Errorf("cuda: @%s: launching the step's graph: %v", e.f.Name, err)
		}
		return nil
	case g != nil && p.graphTurn():
		ev.hold(s, ev.ngates-1, p)
		if err := record(ev.g0); err != nil {
			return err
		}
		if err := g.launch(s); err != nil {
			return fmt.Errorf("cuda: @%s: launching the step's graph: %v", e.f.Name, err)
		}
		return record(ev.g1)
	}
	n := 0
	for i := range e.kernels {
		if e.kernels[i].n <= 0 {
			continue
		}
		if n%profSegment == 0 {
			ev.release()
			ev.hold(s, n/profSegment, p)
		}
		n++
		if err := record(ev.start[i]); err != nil {
			return err
		}
		if err := e.launch(i, false); err != nil {
			return err
		}
		if err := record(ev.end[i]); err != nil {
			return err
		}
	}
	return nil
}

// timed adds the run that launchTimed enqueued, now finished, to the
// profile.
func (e *Executable) timed() {
	p, ev := e.prof, e.res.prof
	wall := time.Since(ev.began)
	defer p.ran()
	for _, i := range ev.closed {
		p.gates++
		if C.xlc_gate_state(ev.gate(i)) == 2 {
			p.timeouts++
		}
	}
	if p.all == 0 {
		return
	}
	fail := func(err error) {
		if p.note == "" {
			p.note = fmt.Sprintf("reading the events' times: %s; those runs are not counted", driverError(err))
		}
	}
	if e.res.graph != nil && p.graphTurn() {
		ms, err := ev.g0.Elapsed(ev.g1)
		if err != nil {
			fail(err)
			return
		}
		p.graph += 1e3 * ms
		p.graphRuns++
		p.wallGraph += wall
		return
	}
	dev := make([]float64, len(e.kernels))
	gaps := 0.0
	n, prev := 0, -1
	for i := range e.kernels {
		if e.kernels[i].n <= 0 {
			continue
		}
		ms, err := ev.start[i].Elapsed(ev.end[i])
		if err == nil && prev >= 0 && n%profSegment != 0 {
			var gap float64
			gap, err = ev.end[prev].Elapsed(ev.start[i])
			gaps += 1e3 * gap
		}
		if err != nil {
			fail(err)
			return
		}
		dev[i] = 1e3 * ms
		n, prev = n+1, i
	}
	for i, us := range dev {
		p.dev[i] += us
	}
	p.gaps += gaps
	p.runs++
	p.wall += wall
}
