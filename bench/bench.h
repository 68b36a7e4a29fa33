/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - the iomem benchmark framework.
 *
 * One binary (iomem_bench) holds every benchmark group. A group measures a
 * library kernel ("candidate") against a from-scratch or system baseline in
 * the same run, interleaved A,B,A,B,... (performance-anchors.md §6.5):
 *
 *   - the process is pinned to one CPU (the last allowed one; --no-pin);
 *   - each kernel is calibrated so that one sample lasts ~3 ms;
 *   - ROUNDS rounds (48 by default, 8 with --quick, --rounds N), each runs
 *     A then B; round r runs placement copy r % BENCH_COPIES of each;
 *   - per kernel: median and best (min) ns/op; ratio candidate/baseline from
 *     the medians and from the bests; difference of medians/bests in ns;
 *   - a target (ratio <= x, or difference <= x ns) gives PASS or MISS.
 *     Targets are reported, never fatal: the bench exits 0 on MISS and
 *     non-zero only on an internal error (an allocation returned NULL, a
 *     kernel reported a failure, bad command line).
 *
 * Adding a group is one function plus one line:
 *   1. write `int bench_group_NAME(bench_ctx *ctx)` in bench/bench_NAME.c;
 *      it builds its inputs, calls bench_compare() / bench_exact() and
 *      returns 0 (or -1 after bench_fail());
 *   2. add `X(NAME, "description")` to BENCH_GROUPS below.
 *
 * A kernel is `static BENCH_KERNEL int fn(void *state, uint64_t iters)`: it
 * runs `iters` iterations of the operation in its own loop and returns 0, or
 * non-zero on an internal error. Stamp it out with BENCH_DEFINE_COPIES (see
 * "Code placement" below). Write the candidate and its baseline with the
 * same loop shape (ideally from one macro) and keep results alive with
 * BENCH_ESCAPE() so the compiler cannot delete the work; the escape costs no
 * instruction.
 * Inputs should rotate through a pool of at least BENCH_POOL_BYTES so the
 * branch predictor cannot memorise them (§6.4).
 *
 * POSIX (Linux) only. Statistics use double; the library itself does not.
 */
#ifndef IOMEM_BENCH_H
#define IOMEM_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* ---- the group table: one line per group ------------------------------ */
#define BENCH_GROUPS(X)                                                        \
    X(seggen, "IODMACommand segment generation vs page16/merge/linux/fbsd/xnu models; resume; I/O; bounce") \
    X(alloc, "IOMalloc family vs malloc/aligned_alloc/calloc; aligned footprint")      \
    X(bmheap, "bare-metal O(1) heap vs malloc: hot pair, random live set, worst-case instructions") \
    X(desc, "IOMemoryDescriptor getPhysicalSegment walks (contiguous, scattered, random); memory") \
    X(memmap, "IOMemoryDescriptor_map of a mapped descriptor (reuse) vs a mutex + list lookup") \
    X(cursor, "IOMemoryCursor: resume vs XNU's restart-from-zero, 4096 vs 16 ranges, byte orders") \
    X(iova, "IOMapperIOVMAlloc/Free hot pair on the software IOMMU; 64-page I/O through a mapped IODMACommand") \
    X(range, "IORangeAllocator vs an IOKit-shaped sorted array; cached pair; footprint") \
    X(dmaengine, "POSIX software DMA engine: 1 MiB scattered transfer vs memcpy; 4 KiB submit->callback latency")

typedef struct bench_ctx bench_ctx;

#define BENCH_DECLARE_GROUP_(id, desc) int bench_group_##id(bench_ctx *ctx);
BENCH_GROUPS(BENCH_DECLARE_GROUP_)
#undef BENCH_DECLARE_GROUP_

/* ---- compiler helpers ----------------------------------------------------- */
#if defined(__GNUC__) || defined(__clang__)
/* Make the compiler believe `p` (and any memory) is read and written here.
 * Emits no instruction; keeps malloc/free pairs and stores from being elided. */
#define BENCH_ESCAPE(p) __asm__ __volatile__("" : : "r"(p) : "memory")
/* A compiler barrier for memory only. */
#define BENCH_CLOBBER() __asm__ __volatile__("" : : : "memory")
/* Launder a value through a register so the compiler cannot constant-fold it. */
#define BENCH_OPAQUE(v) __asm__ __volatile__("" : "+r"(v))
#define BENCH_NOINLINE __attribute__((noinline))
/* Declare every timed kernel with BENCH_KERNEL (noinline: a separate,
 * countable function; 64-byte aligned: a known phase against cache lines). */
#define BENCH_KERNEL __attribute__((noinline, aligned(64)))
#define BENCH_UNUSED __attribute__((unused))
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#error "iomem bench needs GCC or Clang (inline asm compiler barriers)"
#endif

/*
 * Code placement. On the reference Zen 5 VM, byte-identical malloc+free
 * loops run at 37 or 46 ns/op depending only on where the loop sits in the
 * binary (6 of 96 placements were slow, deterministically, for every run).
 * A 25% placement effect swamps a 1 ns target, so a kernel is stamped out
 * in BENCH_COPIES copies at different addresses, each with a different loop
 * phase (BENCH_PAD), and round r runs copy r % BENCH_COPIES of both the
 * candidate and the baseline. The median over rounds is then the typical
 * placement, and an unlucky one cannot decide a comparison.
 *
 *   #define MY_DEF(FNAME, K, ...)                                          \
 *       static BENCH_KERNEL int FNAME(void *st, uint64_t iters)            \
 *       { BENCH_PAD(K); ...loop... }
 *   BENCH_DEFINE_COPIES(k_mine, MY_DEF, extra, args)
 *   ... bench_kernel k = {.name = "mine", .copies = k_mine,
 *                         .ncopies = BENCH_COPIES, .state = &st};
 */
#define BENCH_COPIES 8
/* K*16 no-op instructions (executed once per call, not per iteration). */
#define BENCH_PAD(K) __asm__ __volatile__(".rept " #K "*16\n\tnop\n\t.endr" : : : "memory")
#define BENCH_DEFINE_COPIES(NAME, DEF, ...)                                     \
    DEF(NAME##_c0, 0, __VA_ARGS__)                                              \
    DEF(NAME##_c1, 1, __VA_ARGS__)                                              \
    DEF(NAME##_c2, 2, __VA_ARGS__)                                              \
    DEF(NAME##_c3, 3, __VA_ARGS__)                                              \
    DEF(NAME##_c4, 4, __VA_ARGS__)                                              \
    DEF(NAME##_c5, 5, __VA_ARGS__)                                              \
    DEF(NAME##_c6, 6, __VA_ARGS__)                                              \
    DEF(NAME##_c7, 7, __VA_ARGS__)                                              \
    static const bench_kernel_fn NAME[BENCH_COPIES] = {                         \
        NAME##_c0, NAME##_c1, NAME##_c2, NAME##_c3,                             \
        NAME##_c4, NAME##_c5, NAME##_c6, NAME##_c7};

/* Inputs must rotate through at least this many bytes (§6.4). */
#define BENCH_POOL_BYTES (512u * 1024u)

/* ---- kernels, targets, results -------------------------------------------- */
typedef int (*bench_kernel_fn)(void *state, uint64_t iters);

typedef struct bench_kernel {
    const char *name;              /* shown in the table and JSON */
    bench_kernel_fn fn;            /* runs `iters` iterations (if no copies) */
    void *state;                   /* passed to the kernel */
    double ops_per_iter;           /* ops counted per iteration (0 means 1) */
    const bench_kernel_fn *copies; /* placement copies (BENCH_DEFINE_COPIES) */
    unsigned ncopies;              /* 0: use fn */
} bench_kernel;

typedef enum bench_target_kind {
    BENCH_TARGET_NONE = 0,     /* informational */
    BENCH_TARGET_RATIO_MAX,    /* median(cand)/median(base) <= value */
    BENCH_TARGET_DIFF_NS_MAX   /* median(cand)-median(base) <= value ns/op */
} bench_target_kind;

typedef struct bench_target {
    bench_target_kind kind;
    double value;
} bench_target;

#define BENCH_INFO ((bench_target){BENCH_TARGET_NONE, 0.0})
#define BENCH_RATIO_LE(x) ((bench_target){BENCH_TARGET_RATIO_MAX, (x)})
#define BENCH_DIFF_NS_LE(x) ((bench_target){BENCH_TARGET_DIFF_NS_MAX, (x)})

/*
 * Measure `cand` against `base` (interleaved ABAB) and record a result row.
 * `base` may be NULL: the candidate alone is measured (informational).
 * Returns 0, or -1 if a kernel failed (the failure is recorded; the caller
 * should clean up and return -1).
 */
int bench_compare(bench_ctx *ctx, const bench_kernel *cand,
                  const bench_kernel *base, bench_target target);

/* The figures of the last bench_compare() of this context, e.g. to check an
 * A/A control. Returns 0, or -1 if there is none. */
typedef struct bench_stats {
    double ns_median, ns_best;           /* candidate, ns/op */
    double base_ns_median, base_ns_best; /* baseline (NaN without one) */
    double ratio_median, ratio_best;     /* candidate / baseline */
    double diff_median, diff_best;       /* candidate - baseline, ns/op */
    double diff_paired_median;           /* median over rounds of (A_r - B_r) */
} bench_stats;
int bench_last_stats(const bench_ctx *ctx, bench_stats *out);

/*
 * Record an exact (non-timing) figure, e.g. a byte count, checked against
 * `value <= limit`. `family` groups rows in the summary ("aligned footprint").
 * Pass limit < 0 for an informational figure.
 */
void bench_exact(bench_ctx *ctx, const char *family, const char *name,
                 double value, const char *unit, double limit);

/* Record an internal error (printed, makes the exit status non-zero). */
void bench_fail(bench_ctx *ctx, const char *fmt, ...) BENCH_PRINTF(2, 3);

/* Print an informational line under the current group. */
void bench_note(bench_ctx *ctx, const char *fmt, ...) BENCH_PRINTF(2, 3);

/* Options a group may look at. */
int bench_quick(const bench_ctx *ctx);
int bench_rounds(const bench_ctx *ctx);

/* ---- small utilities -------------------------------------------------------- */
uint64_t bench_now_ns(void); /* clock_gettime(CLOCK_MONOTONIC) */

/* xorshift64 (Marsaglia); state must be non-zero. Fixed seeds make inputs
 * identical from run to run and for candidate and baseline. */
static inline uint64_t bench_xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Uniform-ish integer in [lo, hi] (modulo bias is irrelevant here). */
static inline uint64_t bench_rand_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + bench_xorshift64(s) % (hi - lo + 1u);
}

#endif /* IOMEM_BENCH_H */
