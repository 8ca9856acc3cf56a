// driver: times the xlc dot kernels against OpenBLAS sgemm, interleaved.
//
//   driver KERNELS.so TABLE [ROUNDS]
//
// TABLE has one line per kernel: name batch M N K transA transB extent
// floatsA floatsB floatsC strided. A strided kernel (leading dimensions or
// batch strides of the model's layout) reads its own buffers of those
// sizes; OpenBLAS runs the same flops on dense operands, and the results
// are not compared (codegen's tests check those layouts).
// Both sides use 2 threads: the xlc kernel's range is split in two halves
// (the calling thread and one persistent worker); OpenBLAS runs with
// openblas_set_num_threads(2) (batched shapes: one sgemm per batch, and
// also "blas/2t", each thread running single-threaded sgemm on half the
// batches). Each measurement repeats the product for at least 0.1 s; the
// report gives the median over ROUNDS (default 10) rounds. THREADS=1 in
// the environment measures both on one thread instead. Other processes
// skew the figures: before each shape the driver waits (up to a minute)
// until the CPUs are idle, unless NOWAIT is set.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef void (*kern_t)(void **, int64_t, int64_t);
typedef void (*sgemm_t)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*setnt_t)(int);
enum { RowMajor = 101, NoTrans = 111, Trans = 112 };

static sgemm_t sgemm;
static setnt_t set_threads;

typedef struct {
  char name[64];
  int batch, m, n, k, ta, tb, strided;
  int64_t ext, na, nb, nc;
  kern_t fn;
  float *a, *b, *c, *c2; // the kernel's buffers; OpenBLAS reads a and b densely when !strided
  float *da, *db;        // dense operands for OpenBLAS when strided
} shape;

// The worker thread runs one job at a time: spins for a while after each
// job, then sleeps on a condition variable.
typedef void (*job_fn)(void *);
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static _Atomic long posted, finished;
static job_fn job;
static void *job_arg;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *worker(void *unused) {
  (void)unused;
  long seen = 0;
  for (;;) {
    double t0 = now();
    while (atomic_load(&posted) == seen) {
      if (now() - t0 > 2e-4) {
        pthread_mutex_lock(&mu);
        while (atomic_load(&posted) == seen) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
      }
    }
    seen = atomic_load(&posted);
    job(job_arg);
    atomic_store(&finished, seen);
  }
  return NULL;
}

static void post(job_fn f, void *arg) {
  job = f;
  job_arg = arg;
  pthread_mutex_lock(&mu);
  atomic_fetch_add(&posted, 1);
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

static void wait_worker(void) {
  long p = atomic_load(&posted);
  while (atomic_load(&finished) != p) __builtin_ia32_pause();
}

typedef struct {
  shape *s;
  int64_t lo, hi;
} part;

static void run_part(void *arg) {
  part *p = arg;
  void *bufs[3] = {p->s->a, p->s->b, p->s->c};
  p->s->fn(bufs, p->lo, p->hi);
}

static int nthreads = 2;

static void run_xlc(shape *s) {
  if (nthreads == 1) {
    part me = {s, 0, s->ext};
    run_part(&me);
    return;
  }
  int64_t h = (s->ext + 1) / 2;
  part w = {s, h, s->ext}, me = {s, 0, h};
  post(run_part, &w);
  run_part(&me);
  wait_worker();
}

static void blas_batches(shape *s, int b0, int b1, float *c) {
  int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
  for (int b = b0; b < b1; b++)
    sgemm(RowMajor, s->ta ? Trans : NoTrans, s->tb ? Trans : NoTrans, s->m, s->n, s->k, 1.0f,
          s->da + (size_t)b * s->m * s->k, lda, s->db + (size_t)b * s->k * s->n, ldb, 0.0f,
          c + (size_t)b * s->m * s->n, s->n);
}

static void run_blas(shape *s) { blas_batches(s, 0, s->batch, s->c2); }

typedef struct {
  shape *s;
  int b0, b1;
} bpart;

static void run_bpart(void *arg) {
  bpart *p = arg;
  blas_batches(p->s, p->b0, p->b1, p->s->c2);
}

static void run_blas2(shape *s) {
  bpart w = {s, s->batch / 2, s->batch}, me = {s, 0, s->batch / 2};
  post(run_bpart, &w);
  run_bpart(&me);
  wait_worker();
}

// COLD=1 in the environment evicts the caches (writes a 64 MiB buffer)
// before each timed product, as in a train step where each kernel's
// operands come from memory; only the products are timed.
static char *flushbuf;
static size_t flushn;

static void flush(void) {
  for (size_t i = 0; i < flushn; i += 64) flushbuf[i]++;
}

static double gflops(shape *s, void (*run)(shape *)) {
  double flops = 2.0 * s->batch * s->m * s->n * s->k;
  if (flushbuf) {
    double t = 0;
    int reps = 0;
    run(s);
    do {
      flush();
      double t0 = now();
      run(s);
      t += now() - t0;
      reps++;
    } while (t < 0.05 || reps < 3);
    return flops * reps / t * 1e-9;
  }
  run(s);
  int reps = 0;
  double t0 = now(), t;
  do {
    run(s);
    reps++;
    t = now() - t0;
  } while (t < 0.1 || reps < 3);
  return flops * reps / t * 1e-9;
}

// busy returns the fraction of CPU time the machine spent busy over dt
// seconds (this process sleeps meanwhile).
static double busy(double dt) {
  unsigned long long v[2][10];
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[i][0], &v[i][1], &v[i][2], &v[i][3],
                     &v[i][4], &v[i][5], &v[i][6], &v[i][7], &v[i][8], &v[i][9]) != 10) {
      if (f) fclose(f);
      return 0;
    }
    fclose(f);
    if (i == 0) usleep((useconds_t)(dt * 1e6));
  }
  unsigned long long tot = 0, idle = (v[1][3] - v[0][3]) + (v[1][4] - v[0][4]);
  for (int j = 0; j < 8; j++) tot += v[1][j] - v[0][j];
  return tot ? 1 - (double)idle / tot : 0;
}

// wait_quiet waits (at most 60 s) until other processes leave the CPUs
// nearly idle, since they would skew a measurement; it returns 0 if they
// never did.
static int wait_quiet(void) {
  double t0 = now();
  while (busy(0.25) > 0.1) {
    if (now() - t0 > 60) return 0;
  }
  return 1;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *x, int n) {
  double *y = malloc(n * sizeof *y);
  memcpy(y, x, n * sizeof *y);
  qsort(y, n, sizeof *y, cmpd);
  double m = n % 2 ? y[n / 2] : (y[n / 2 - 1] + y[n / 2]) / 2;
  free(y);
  return m;
}

static float *randbuf(size_t n) {
  float *p = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
  for (size_t i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX * 2 - 1;
  return p;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s KERNELS.so TABLE [ROUNDS]\n", argv[0]);
    return 2;
  }
  int rounds = argc > 3 ? atoi(argv[3]) : 10;
  if (getenv("COLD") && atoi(getenv("COLD"))) {
    flushn = 64 << 20;
    flushbuf = calloc(flushn, 1);
  }
  if (getenv("THREADS")) nthreads = atoi(getenv("THREADS"));
  if (nthreads != 1 && nthreads != 2) { fprintf(stderr, "THREADS must be 1 or 2\n"); return 2; }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  const char *blasname = getenv("BLAS_LIB") ? getenv("BLAS_LIB") : "libopenblas.so.0";
  void *blas = dlopen(blasname, RTLD_NOW);
  if (!blas) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  sgemm = (sgemm_t)dlsym(blas, "cblas_sgemm");
  set_threads = (setnt_t)dlsym(blas, "openblas_set_num_threads");
  if (!sgemm || !set_threads) { fprintf(stderr, "no cblas_sgemm/openblas_set_num_threads in %s\n", blasname); return 1; }
  char *(*config)(void) = (char *(*)(void))dlsym(blas, "openblas_get_config");
  if (config) printf("OpenBLAS: %s\n", config());

  FILE *f = fopen(argv[2], "r");
  if (!f) { perror(argv[2]); return 1; }
  shape sh[64];
  int ns = 0;
  while (ns < 64 && fscanf(f, "%63s %d %d %d %d %d %d %ld %ld %ld %ld %d", sh[ns].name, &sh[ns].batch, &sh[ns].m,
                           &sh[ns].n, &sh[ns].k, &sh[ns].ta, &sh[ns].tb, &sh[ns].ext, &sh[ns].na, &sh[ns].nb, &sh[ns].nc,
                           &sh[ns].strided) == 12) {
    shape *s = &sh[ns];
    s->fn = (kern_t)dlsym(lib, s->name);
    if (!s->fn) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    size_t da = (size_t)s->batch * s->m * s->k, db = (size_t)s->batch * s->k * s->n, dc = (size_t)s->batch * s->m * s->n;
    s->a = randbuf(s->strided ? (size_t)s->na : da);
    s->b = randbuf(s->strided ? (size_t)s->nb : db);
    s->c = randbuf(s->strided && (size_t)s->nc > dc ? (size_t)s->nc : dc);
    s->c2 = randbuf(dc);
    s->da = s->strided ? randbuf(da) : s->a;
    s->db = s->strided ? randbuf(db) : s->b;
    ns++;
  }
  fclose(f);
  pthread_t th;
  pthread_create(&th, NULL, worker, NULL);

  // Check the results against OpenBLAS.
  set_threads(nthreads);
  for (int i = 0; i < ns; i++) {
    shape *s = &sh[i];
    run_xlc(s);
    run_blas(s);
    if (s->strided) continue;
    size_t n = (size_t)s->batch * s->m * s->n;
    double maxd = 0;
    for (size_t j = 0; j < n; j++) {
      double d = fabs(s->c[j] - s->c2[j]) / (sqrt(s->k) + 1);
      if (!(d <= maxd)) maxd = d;
    }
    if (!(maxd < 1e-4)) { fprintf(stderr, "%s: results differ from OpenBLAS (%g)\n", s->name, maxd); return 1; }
  }

  double *gx = calloc(ns * rounds, sizeof(double)), *gb = calloc(ns * rounds, sizeof(double)),
         *gb2 = calloc(ns * rounds, sizeof(double));
  int loaded = 0;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < ns; i++) {
      shape *s = &sh[i];
      if (!getenv("NOWAIT") && !wait_quiet()) loaded++;
      gx[i * rounds + r] = gflops(s, run_xlc);
      usleep(20000);
      set_threads(nthreads);
      gb[i * rounds + r] = gflops(s, run_blas);
      if (s->batch > 1 && nthreads == 2) {
        usleep(20000);
        set_threads(1);
        gb2[i * rounds + r] = gflops(s, run_blas2);
        set_threads(nthreads);
      }
    }
  }
  printf("%-12s %5s %5s %5s %5s %2s %2s  %8s %8s %8s  %6s\n", "shape", "batch", "M", "N", "K", "tA", "tB", "xlc", "blas", "blas/2t",
         "ratio");
  double lr = 0;
  for (int i = 0; i < ns; i++) {
    shape *s = &sh[i];
    double x = median(gx + i * rounds, rounds), b = median(gb + i * rounds, rounds), b2 = median(gb2 + i * rounds, rounds);
    double best = b2 > b ? b2 : b;
    printf("%-12s %5d %5d %5d %5d %2d %2d  %8.1f %8.1f %8.1f  %6.2f%s\n", s->name, s->batch, s->m, s->n, s->k, s->ta, s->tb, x, b,
           b2, x / best, s->strided ? " *" : "");
    lr += log(x / best);
  }
  if (loaded) printf("warning: %d of %d measurements ran while other processes kept the CPUs busy\n", loaded, rounds * ns);
  printf("GFLOP/s, medians of %d interleaved rounds, %d threads; ratio = xlc / best OpenBLAS; geometric mean ratio %.2f\n"
         "strided shapes (*): the model's layout for xlc, dense operands of the same flops for OpenBLAS\n",
         rounds, nthreads, exp(lr / ns));
  return 0;
}
