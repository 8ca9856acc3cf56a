// peak measures the FMA peak of this machine in GFLOP/s: each of THREADS
// threads runs independent chains of vector fused multiply-adds (12 chains,
// enough to cover the FMA latency on every x86 core seen here), 256-bit
// (ymm) or, with -DZMM and AVX-512, 512-bit (zmm). It prints the best of
// TRIALS runs: a peak is a ceiling, and on a shared VM one run with a
// descheduled thread measured half of it. Build: cc -O2 -mavx2 -mfma
// [-mavx512f -DZMM] peak.c -lpthread.
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef ZMM
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define SUM(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float SUM(__m256 v) { float f[8]; _mm256_storeu_ps(f, v); return f[0] + f[7]; }
#endif

enum { CHAINS = 12, TRIALS = 9 };
static long iters = 200000000L / CHAINS;
static float sink[64];

#define STEP(a) a = FMA(a, x, y); __asm__ volatile("" : "+v"(a))

static void *run(void *arg) {
	long id = (long)arg;
	vec x = SET1(0.999999f), y = SET1(1e-7f);
	vec a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4), a5 = SET1(5);
	vec a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);
	for (long i = 0; i < iters; i++) {
		// Twelve independent chains; the empty asm keeps each one live
		// and in its register, so the compiler cannot fold the loop.
		STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
		STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
	}
	vec s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));
	s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));
	sink[id] = SUM(s);
	return NULL;
}

// trial runs n threads once and returns their GFLOP/s.
static double trial(int n) {
	pthread_t t[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, run, (void *)i);
	for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
	return 2.0 * LANES * CHAINS * iters * n / s / 1e9;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 2;
	if (n < 1 || n > 64) {
		fprintf(stderr, "peak: threads must be 1 to 64\n");
		return 2;
	}
	double best = 0;
	for (int i = 0; i < TRIALS; i++) {
		double g = trial(n);
		if (g > best) best = g;
	}
	printf("%.1f\n", best);
	return 0;
}
