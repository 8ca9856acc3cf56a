// The GPU emulator's block scheduler, linked into the shared object of a
// module built for the gpu-emu target (codegen/nvptx.go, emu.go).
//
// A kernel function is the GPU lowering's, void thread(void **bufs, int64_t
// n); it reads its thread and block indices, synchronizes and exchanges
// values only through the functions below. xlc_emu_run runs blocks
// [lo, hi) of a grid, one after the other on the calling OS thread. A
// kernel without barriers or shuffles runs its threads in order, each to
// the end. A cooperative kernel runs each thread of a block as a fiber (a
// stack of its own and a minimal x86-64 context switch): a thread runs
// until it waits at a barrier
// (all the block's threads), at a warp exchange (its warp's 32 threads) or
// ends; when every live thread waits, the first warp whose every live
// thread waits at an exchange goes on alone, else the barrier opens once
// every thread of the block waits at it. So the first warp runs as far
// ahead of the others as a GPU may let it, and a missing barrier (within
// a warp's threads or between warps) reads what no thread has written
// yet, deterministically; a barrier that not every thread reaches is
// reported, as a GPU would hang or misbehave.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// xlc_emu_switch saves the callee-saved registers, the SSE and x87 control
// words and the stack pointer of the running context in *from and resumes
// the context whose stack pointer is to (System V x86-64; no signal mask
// is switched, unlike swapcontext, which makes a system call each time).
void xlc_emu_switch(void **from, void *to);
__asm__(".text\n"
	".p2align 4\n"
	".type xlc_emu_switch,@function\n"
	"xlc_emu_switch:\n"
	"\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
	"\tsubq $8, %rsp\n\tstmxcsr (%rsp)\n\tfnstcw 4(%rsp)\n"
	"\tmovq %rsp, (%rdi)\n"
	"\tmovq %rsi, %rsp\n"
	"\tldmxcsr (%rsp)\n\tfldcw 4(%rsp)\n\taddq $8, %rsp\n"
	"\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n"
	"\tret\n"
	".size xlc_emu_switch, .-xlc_emu_switch\n");

typedef void (*xlc_thread_fn)(void **bufs, int64_t n);

enum { RUNNABLE, AT_BARRIER, AT_WARP, DONE };

enum { STACK = 1 << 20, MAX_THREADS = 1024, WARP = 32 };

struct fiber {
	void *sp;  // the saved stack pointer while the fiber waits
	int state;
	char *stack;
};

struct block {
	xlc_thread_fn fn;
	void **bufs;
	int64_t n;
	int32_t threads, ctaid, grid;
	int32_t cur;  // the running thread
	int coop;     // fibers, or threads in order
	void *sched;  // the scheduler's saved stack pointer
	struct fiber *f;
	uint64_t xchg[MAX_THREADS];
	uint32_t frag[MAX_THREADS][6];  // mma: each lane's A and B registers
};

static __thread struct block *cur_block;
static __thread struct fiber *pool;  // this OS thread's fibers and stacks
static __thread int pool_size;

static void die(const char *msg) {
	fprintf(stderr, "xlc: gpu-emu: %s\n", msg);
	abort();
}

static struct fiber *fibers(int n) {
	if (n <= pool_size) return pool;
	struct fiber *p = realloc(pool, n * sizeof *p);
	if (!p) die("out of memory for fibers");
	for (int i = pool_size; i < n; i++) {
		p[i].stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p[i].stack == MAP_FAILED) die("cannot map a fiber's stack");
	}
	pool = p;
	pool_size = n;
	return p;
}

// fiber_main runs a fiber's thread, then returns to the scheduler for
// good.
static void fiber_main(void) {
	struct block *b = cur_block;
	b->fn(b->bufs, b->n);
	struct fiber *f = &b->f[b->cur];
	f->state = DONE;
	xlc_emu_switch(&f->sp, b->sched);
	die("a finished fiber resumed");
}

// fiber_start lays out f's stack so that switching to it enters
// fiber_main with the stack aligned as after a call, with the caller's
// control words.
static void fiber_start(struct fiber *f) {
	uint64_t *top = (uint64_t *)(f->stack + STACK);
	*--top = 0;                            // fiber_main's return address
	*--top = (uint64_t)(uintptr_t)fiber_main;  // xlc_emu_switch returns here
	for (int i = 0; i < 6; i++) *--top = 0;  // rbp rbx r12..r15
	uint32_t csr;
	uint16_t cw;
	__asm__ volatile("stmxcsr %0" : "=m"(csr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	*--top = (uint64_t)csr | (uint64_t)cw << 32;
	f->sp = top;
}

// wait parks the running fiber in state s until the scheduler resumes it.
static void wait(int s) {
	struct block *b = cur_block;
	if (!b->coop) die("a kernel without a block model synchronizes");
	struct fiber *f = &b->f[b->cur];
	f->state = s;
	xlc_emu_switch(&f->sp, b->sched);
}

// release resumes what may go on once no fiber can run: the first warp
// waiting whole at an exchange, else the block at its barrier. It returns
// 0 when every thread has ended.
static int release(struct block *b) {
	int live = 0, barrier = 0, done = 0;
	for (int w = 0; w < b->threads; w += WARP) {
		int end = w + WARP < b->threads ? w + WARP : b->threads, waiting = 0, alive = 0;
		for (int i = w; i < end; i++) {
			int s = b->f[i].state;
			alive += s != DONE;
			waiting += s == AT_WARP;
		}
		if (alive > 0 && waiting == alive) {
			for (int i = w; i < end; i++)
				if (b->f[i].state == AT_WARP) b->f[i].state = RUNNABLE;
			return 1;
		}
	}
	for (int i = 0; i < b->threads; i++) {
		int s = b->f[i].state;
		live += s != DONE;
		barrier += s == AT_BARRIER;
		done += s == DONE;
	}
	if (live == 0) return 0;
	if (barrier != live) die("a warp exchange that not every thread of the warp reaches");
	if (done > 0) die("a barrier that not every thread of the block reaches (some have ended)");
	for (int i = 0; i < b->threads; i++) b->f[i].state = RUNNABLE;
	return 1;
}

static void run_block(struct block *b) {
	if (!b->coop) {
		for (b->cur = 0; b->cur < b->threads; b->cur++) b->fn(b->bufs, b->n);
		return;
	}
	for (int i = 0; i < b->threads; i++) {
		fiber_start(&b->f[i]);
		b->f[i].state = RUNNABLE;
	}
	do {
		for (int i = 0; i < b->threads; i++) {
			if (b->f[i].state != RUNNABLE) continue;
			b->cur = i;
			xlc_emu_switch(&b->sched, b->f[i].sp);
		}
	} while (release(b));
}

// xlc_emu_run runs blocks [lo, hi) of a grid of grid blocks of threads
// threads; coop says whether the kernel synchronizes (fibers).
void xlc_emu_run(xlc_thread_fn fn, void **bufs, int64_t n, int64_t lo, int64_t hi, int32_t threads, int32_t grid,
                 int32_t coop) {
	if (threads < 1 || threads > MAX_THREADS) die("a block of more than 1024 threads");
	struct block *b = malloc(sizeof *b);
	if (!b) die("out of memory for a block");
	memset(b, 0, sizeof *b);
	b->fn = fn;
	b->bufs = bufs;
	b->n = n;
	b->threads = threads;
	b->grid = grid;
	b->coop = coop;
	if (coop) b->f = fibers(threads);
	struct block *outer = cur_block;
	cur_block = b;
	for (int64_t k = lo; k < hi; k++) {
		b->ctaid = (int32_t)k;
		run_block(b);
	}
	cur_block = outer;
	free(b);
}

// xlc_emu_sreg reads a special register: 0 tid.x, 1 ntid.x, 2 ctaid.x,
// 3 nctaid.x, 4 laneid, 5 warpid (of the block).
int32_t xlc_emu_sreg(int32_t which) {
	struct block *b = cur_block;
	switch (which) {
	case 0: return b->cur;
	case 1: return b->threads;
	case 2: return b->ctaid;
	case 3: return b->grid;
	case 4: return b->cur % WARP;
	case 5: return b->cur / WARP;
	}
	die("unknown special register");
	return 0;
}

// xlc_emu_barrier is bar.sync 0: every thread of the block.
void xlc_emu_barrier(void) { wait(AT_BARRIER); }

// xlc_emu_syncwarp is bar.warp.sync over the full warp: its lanes' memory
// accesses before it precede those after it.
void xlc_emu_syncwarp(void) { wait(AT_WARP); }

uint64_t xlc_emu_shfl64(int32_t mode, uint64_t val, int32_t arg);

// xlc_emu_shfl is shfl.sync over the full warp: mode 0 idx (from lane
// arg), 1 bfly (lane ^ arg), 2 down (lane + arg), 3 up (lane - arg); a
// source lane outside the warp or the block gives the thread's own value,
// as PTX's clamp does.
uint32_t xlc_emu_shfl(int32_t mode, uint32_t val, int32_t arg) {
	return (uint32_t)xlc_emu_shfl64(mode, val, arg);
}

// xlc_emu_shfl64 is xlc_emu_shfl of a 64-bit value (on the GPU, two
// shuffles of its halves).
uint64_t xlc_emu_shfl64(int32_t mode, uint64_t val, int32_t arg) {
	struct block *b = cur_block;
	int me = b->cur, lane = me % WARP, base = me - lane, src;
	switch (mode) {
	case 0: src = arg & (WARP - 1); break;
	case 1: src = lane ^ arg; break;
	case 2: src = lane + arg; break;
	case 3: src = lane - arg; break;
	default: die("unknown shuffle"); return 0;
	}
	b->xchg[me] = val;
	wait(AT_WARP);
	uint64_t r = val;
	if (src >= 0 && src < WARP && base + src < b->threads) r = b->xchg[base + src];
	wait(AT_WARP);
	return r;
}

// half_to_float widens the half (kind 1) or bfloat16 (kind 0) bits h.
static float half_to_float(int kind, uint32_t h) {
	union { uint32_t u; float f; } v;
	if (kind == 0) {
		v.u = h << 16;
		return v.f;
	}
	uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	if (exp == 0x1f) {
		v.u = sign | 0x7f800000u | (man << 13);
	} else if (exp != 0) {
		v.u = sign | ((exp + 112) << 23) | (man << 13);
	} else if (man == 0) {
		v.u = sign;
	} else {  // subnormal: man · 2^-24
		v.f = (float)man * 0x1p-24f;
		v.u |= sign;
	}
	return v.f;
}

// xlc_emu_mma is mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16} (kind
// 0 bf16, 1 f16) for the calling lane: ab holds its A registers a0..a3 and
// B registers b0, b1 (two elements each, the lower index in the low 16
// bits), c its accumulators; d receives D = A·B + C at its positions. The
// fragments are laid out as PTX's ISA says: with g = lane / 4 and t =
// lane % 4, a0 holds A[g][2t..2t+1], a1 A[g+8][2t..], a2 A[g][2t+8..], a3
// A[g+8][2t+8..]; b0 B[2t..2t+1][g], b1 B[2t+8..][g]; c0, c1 C[g][2t..2t+1]
// and c2, c3 C[g+8][2t..]. Products are exact in float and summed in k
// order.
void xlc_emu_mma(int32_t kind, const uint32_t *ab, const float *c, float *d) {
	struct block *b = cur_block;
	int me = b->cur, lane = me % WARP, base = me - lane;
	if (base + WARP > b->threads) die("mma by a partial warp");
	memcpy(b->frag[me], ab, sizeof b->frag[me]);
	wait(AT_WARP);
	float A[16][16], B[16][8];
	for (int l = 0; l < WARP; l++) {
		const uint32_t *r = b->frag[base + l];
		int g = l / 4, t = l % 4;
		for (int h = 0; h < 2; h++) {
			A[g][2 * t + h] = half_to_float(kind, (r[0] >> (16 * h)) & 0xffff);
			A[g + 8][2 * t + h] = half_to_float(kind, (r[1] >> (16 * h)) & 0xffff);
			A[g][2 * t + 8 + h] = half_to_float(kind, (r[2] >> (16 * h)) & 0xffff);
			A[g + 8][2 * t + 8 + h] = half_to_float(kind, (r[3] >> (16 * h)) & 0xffff);
			B[2 * t + h][g] = half_to_float(kind, (r[4] >> (16 * h)) & 0xffff);
			B[2 * t + 8 + h][g] = half_to_float(kind, (r[5] >> (16 * h)) & 0xffff);
		}
	}
	int g = lane / 4, t = lane % 4;
	for (int i = 0; i < 4; i++) {
		int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
		float sum = 0;
		for (int k = 0; k < 16; k++) sum += A[row][k] * B[k][col];
		d[i] = c[i] + sum;
	}
	wait(AT_WARP);
}

// xlc_emu_ldmatrix is ldmatrix.sync.aligned.m8n8.x{n}.shared.b16 for the
// calling lane (n is 1, 2 or 4): lane 8i + r gives, in p, the address of
// row r of matrix i (eight 16-bit elements, 16-byte aligned), and out[i]
// receives word w of row r of matrix i when the lane is 4r + w, as PTX's
// ISA says. The lanes past 8n give addresses that are not read.
void xlc_emu_ldmatrix(int32_t n, const uint16_t *p, uint32_t *out) {
	struct block *b = cur_block;
	int me = b->cur, lane = me % WARP, base = me - lane;
	if (base + WARP > b->threads) die("ldmatrix by a partial warp");
	if (n != 1 && n != 2 && n != 4) die("ldmatrix of other than 1, 2 or 4 matrices");
	b->xchg[me] = (uint64_t)(uintptr_t)p;
	wait(AT_WARP);
	int r = lane / 4, w = lane % 4;
	for (int i = 0; i < n; i++) {
		uintptr_t row = (uintptr_t)b->xchg[base + 8 * i + r];
		if (row % 16 != 0) die("ldmatrix of a row not 16-byte aligned");
		memcpy(&out[i], (const char *)row + 4 * w, 4);
	}
	wait(AT_WARP);
}
