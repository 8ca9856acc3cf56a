package cpu

/*
#cgo LDFLAGS: -lpthread
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

typedef void (*xlc_pool_kernel)(void **, int64_t, int64_t);

// One slot per worker thread: the caller writes the part to run, then
// publishes it by storing a new sequence number in go; the worker runs it
// and stores the same number in done. A slot is rewritten only after its
// worker has reported the previous part done, so a worker never sees a part
// half written.
typedef struct {
	void *fn;
	void **bufs;
	int64_t lo, hi;
	_Atomic uint64_t go, done;
	_Atomic int sleeping;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char pad[64];
} xlc_slot;

#define XLC_MAX_WORKERS 63
// A worker spins this many pause instructions (tens of microseconds)
// waiting for its next part before it sleeps: kernels follow one another
// within microseconds during a step.
#define XLC_SPIN 4096

static xlc_slot xlc_slots[XLC_MAX_WORKERS];
static int xlc_nworkers;
static pthread_mutex_t xlc_pool_mu = PTHREAD_MUTEX_INITIALIZER; // one job at a time
static uint64_t xlc_seq;

static void *xlc_worker(void *arg) {
	xlc_slot *s = arg;
	uint64_t last = 0;
	for (;;) {
		uint64_t g;
		int spins = 0;
		while ((g = atomic_load(&s->go)) == last) {
			if (++spins < XLC_SPIN) {
				__builtin_ia32_pause();
				continue;
			}
			pthread_mutex_lock(&s->mu);
			atomic_store(&s->sleeping, 1);
			while (atomic_load(&s->go) == last) {
				pthread_cond_wait(&s->cv, &s->mu);
			}
			atomic_store(&s->sleeping, 0);
			pthread_mutex_unlock(&s->mu);
		}
		last = g;
		((xlc_pool_kernel)s->fn)(s->bufs, s->lo, s->hi);
		atomic_store(&s->done, g);
	}
	return NULL;
}

// xlc_pool_grow starts workers until there are n (at most XLC_MAX_WORKERS);
// it returns how many there are.
static int xlc_pool_grow(int n) {
	pthread_mutex_lock(&xlc_pool_mu);
	if (n > XLC_MAX_WORKERS) n = XLC_MAX_WORKERS;
	while (xlc_nworkers < n) {
		xlc_slot *s = &xlc_slots[xlc_nworkers];
		pthread_mutex_init(&s->mu, NULL);
		pthread_cond_init(&s->cv, NULL);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 8 << 20);
		pthread_t t;
		int err = pthread_create(&t, &attr, xlc_worker, s);
		pthread_attr_destroy(&attr);
		if (err != 0) break;
		xlc_nworkers++;
	}
	n = xlc_nworkers;
	pthread_mutex_unlock(&xlc_pool_mu);
	return n;
}

// xlc_pool_run calls fn on [0, n) split into parts contiguous ranges: part
// 0 on the calling thread, part i on worker i-1 (parts - 1 <= workers).
static void xlc_pool_run(void *fn, void **bufs, int64_t n, int parts) {
	pthread_mutex_lock(&xlc_pool_mu);
	uint64_t seq = ++xlc_seq;
	for (int i = 1; i < parts; i++) {
		xlc_slot *s = &xlc_slots[i - 1];
		s->fn = fn;
		s->bufs = bufs;
		s->lo = n * i / parts;
		s->hi = n * (i + 1) / parts;
		atomic_store(&s->go, seq);
		if (atomic_load(&s->sleeping)) {
			pthread_mutex_lock(&s->mu);
			pthread_cond_signal(&s->cv);
			pthread_mutex_unlock(&s->mu);
		}
	}
	((xlc_pool_kernel)fn)(bufs, 0, n / parts);
	for (int i = 1; i < parts; i++) {
		xlc_slot *s = &xlc_slots[i - 1];
		int spins = 0;
		while (atomic_load(&s->done) != seq) {
			if (++spins < XLC_SPIN) {
				__builtin_ia32_pause();
			} else {
				sched_yield();
			}
		}
	}
	pthread_mutex_unlock(&xlc_pool_mu);
}

// One kernel of a run (xlc_run_all): its range [0, n) in parts parts (1:
// on the calling thread alone).
typedef struct {
	void *fn;
	void **bufs;
	int64_t n;
	int64_t parts;
} xlc_launch;

// xlc_run_all runs count kernels in order, each on the pool when its parts
// say so: a train step's whole sequence in one call from Go.
static void xlc_run_all(xlc_launch *ls, int64_t count) {
	for (int64_t i = 0; i < count; i++) {
		xlc_launch *l = &ls[i];
		if (l->n <= 0) {
			continue;
		}
		if (l->parts <= 1) {
			((xlc_pool_kernel)l->fn)(l->bufs, 0, l->n);
		} else {
			xlc_pool_run(l->fn, l->bufs, l->n, (int)l->parts);
		}
	}
}
*/
import "C"

// The kernels' parallel parts run on a pool of C threads that spin briefly
// between kernels and then sleep: a step launches hundreds of kernels, and
// starting goroutines for each (which the Go scheduler then has to place
// on threads that enter C) cost several microseconds a launch. One job runs
// at a time (executables running concurrently take turns per kernel).

// poolWorkers starts the pool's workers, up to n, and returns how many run.
func poolWorkers(n int) int { return int(C.xlc_pool_grow(C.int(n))) }

// launch is one kernel of runAll's sequence.
type launch = C.xlc_launch

// runAll runs the kernels of ls in order, each split into its parts, in
// one cgo call: with a call per kernel, the pool's workers started each
// kernel microseconds late (bench/NOTES.md).
func runAll(ls []launch) {
	if len(ls) > 0 {
		C.xlc_run_all(&ls[0], C.int64_t(len(ls)))
	}
}
