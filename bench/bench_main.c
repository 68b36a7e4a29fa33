/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_main.c - driver of iomem_bench: CLI, pinning, calibration,
 * interleaved sampling, statistics, the result table, JSON.
 *
 * This is the one bench translation unit that compiles the library's
 * implementation part (STB pattern).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sched_setaffinity, CPU_SET, sched_getcpu */
#endif

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IOMEM_IMPLEMENTATION
#include "iomem.h"
#include "iomem_dma.h"   /* with iomem_map.h: the DMA and mapping implementations */

#include "bench.h"

/* ---- configuration ---------------------------------------------------------- */
/* 48 rounds = 6 per placement copy. With 16, an A/A control of identical
 * malloc+free kernels wandered by +-0.4 ns (up to 0.75); with 48, by +-0.25,
 * which a 1 ns target needs. A 3 ms sample makes that ~0.3 s per comparison. */
#define BENCH_DEFAULT_ROUNDS 48
#define BENCH_QUICK_ROUNDS 8
#define BENCH_SAMPLE_NS 3000000.0       /* one sample ~3 ms (2-5 ms wanted) */
#define BENCH_QUICK_SAMPLE_NS 2000000.0 /* --quick: ~2 ms */
#define BENCH_MAX_ROUNDS 1000
#define BENCH_NAME_MAX 96

/* ---- the group table (generated from BENCH_GROUPS in bench.h) -------------- */
typedef struct bench_group {
    const char *name;
    const char *desc;
    int (*fn)(bench_ctx *ctx);
} bench_group;

#define BENCH_GROUP_ENTRY_(id, desc) {#id, desc, bench_group_##id},
static const bench_group bench_groups[] = {BENCH_GROUPS(BENCH_GROUP_ENTRY_)};
#undef BENCH_GROUP_ENTRY_
#define BENCH_NGROUPS (sizeof bench_groups / sizeof bench_groups[0])

/* ---- results ---------------------------------------------------------------- */
enum { RES_TIMING = 0, RES_EXACT = 1 };
enum { ST_INFO = -1, ST_MISS = 0, ST_PASS = 1 };

typedef struct bench_result {
    int kind;
    const char *group;
    char name[BENCH_NAME_MAX];
    /* timing */
    char base_name[BENCH_NAME_MAX]; /* "" if no baseline */
    double a_med, a_best, b_med, b_best;
    double ratio_med, ratio_best, diff_med, diff_best, diff_paired;
    double *a_samples, *b_samples;
    int nsamples;
    uint64_t a_iters, b_iters;
    unsigned a_copies, b_copies;
    bench_target target;
    /* exact */
    char family[BENCH_NAME_MAX];
    char unit[16];
    double value, limit;
    int status;
} bench_result;

struct bench_ctx {
    int quick;
    int rounds;
    double sample_ns;
    int progress; /* stderr is a tty */
    const char *group;
    int errors;
    bench_result *res;
    size_t nres, capres;
    char **notes; /* notes of the current group */
    size_t nnotes;
};

int bench_quick(const bench_ctx *ctx) { return ctx->quick; }
int bench_rounds(const bench_ctx *ctx) { return ctx->rounds; }

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "iomem_bench: out of memory\n");
        exit(1);
    }
    return p;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static bench_result *new_result(bench_ctx *ctx, int kind)
{
    if (ctx->nres == ctx->capres) {
        size_t cap = ctx->capres ? ctx->capres * 2 : 32;
        bench_result *r = realloc(ctx->res, cap * sizeof *r);
        if (!r) {
            fprintf(stderr, "iomem_bench: out of memory\n");
            exit(1);
        }
        ctx->res = r;
        ctx->capres = cap;
    }
    bench_result *r = &ctx->res[ctx->nres++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->group = ctx->group;
    r->status = ST_INFO;
    r->a_med = r->a_best = r->b_med = r->b_best = NAN;
    r->ratio_med = r->ratio_best = r->diff_med = r->diff_best = r->diff_paired = NAN;
    r->value = r->limit = NAN;
    return r;
}

void bench_fail(bench_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "iomem_bench: error [%s]: ", ctx->group ? ctx->group : "-");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ctx->errors++;
}

void bench_note(bench_ctx *ctx, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **n = realloc(ctx->notes, (ctx->nnotes + 1) * sizeof *n);
    if (!n) {
        fprintf(stderr, "iomem_bench: out of memory\n");
        exit(1);
    }
    ctx->notes = n;
    ctx->notes[ctx->nnotes] = xcalloc(strlen(buf) + 1, 1);
    memcpy(ctx->notes[ctx->nnotes], buf, strlen(buf) + 1);
    ctx->nnotes++;
}

void bench_exact(bench_ctx *ctx, const char *family, const char *name,
                 double value, const char *unit, double limit)
{
    bench_result *r = new_result(ctx, RES_EXACT);
    copy_str(r->family, sizeof r->family, family);
    copy_str(r->name, sizeof r->name, name);
    copy_str(r->unit, sizeof r->unit, unit);
    r->value = value;
    if (limit >= 0) {
        r->limit = limit;
        r->status = value <= limit ? ST_PASS : ST_MISS;
    }
}

/* ---- statistics --------------------------------------------------------------- */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void stats(const double *v, int n, double *med, double *best)
{
    double *s = xcalloc((size_t)n, sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *best = s[0];
    *med = (n & 1) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
}

/* ---- sampling ----------------------------------------------------------------- */
static double ops_of(const bench_kernel *k) { return k->ops_per_iter > 0 ? k->ops_per_iter : 1.0; }

static bench_kernel_fn copy_of(const bench_kernel *k, unsigned c)
{
    return k->ncopies ? k->copies[c % k->ncopies] : k->fn;
}

/* One timed run of copy `c`; returns elapsed ns, or < 0 if the kernel failed. */
static double time_run(bench_ctx *ctx, const bench_kernel *k, unsigned c, uint64_t iters)
{
    bench_kernel_fn fn = copy_of(k, c);
    uint64_t t0 = bench_now_ns();
    int rc = fn(k->state, iters);
    uint64_t t1 = bench_now_ns();
    if (rc != 0) {
        bench_fail(ctx, "kernel '%s' failed (rc=%d)", k->name, rc);
        return -1.0;
    }
    return (double)(t1 - t0);
}

/* Pick an iteration count so one sample lasts ctx->sample_ns. Also warms up
 * (every copy runs once at the final count / ncopies). */
static int calibrate(bench_ctx *ctx, const bench_kernel *k, uint64_t *iters_out)
{
    const double target = ctx->sample_ns;
    uint64_t iters = 1;
    double t;
    for (;;) {
        t = time_run(ctx, k, 0, iters);
        if (t < 0)
            return -1;
        if (t >= target / 8 || iters >= (UINT64_C(1) << 40))
            break;
        iters *= (t < target / 1000) ? 16 : 2;
    }
    /* two refinement passes at (close to) the final count: warm-up + estimate */
    for (int pass = 0; pass < 2; pass++) {
        double per = t / (double)iters;
        double n = per > 0 ? target / per : (double)iters * 2;
        if (n < 1)
            n = 1;
        if (n > 1e15)
            n = 1e15;
        iters = (uint64_t)n;
        t = time_run(ctx, k, 0, iters);
        if (t < 0)
            return -1;
    }
    for (unsigned c = 1; c < k->ncopies; c++) {
        uint64_t w = iters / k->ncopies;
        if (time_run(ctx, k, c, w ? w : 1) < 0)
            return -1;
    }
    *iters_out = iters;
    return 0;
}

int bench_compare(bench_ctx *ctx, const bench_kernel *cand,
                  const bench_kernel *base, bench_target target)
{
    const int rounds = ctx->rounds;
    bench_result *r;
    uint64_t ia = 0, ib = 0;

    if (ctx->progress)
        fprintf(stderr, "  [%s] %s%s%s ...\n", ctx->group, cand->name,
                base ? " vs " : "", base ? base->name : "");
    if (calibrate(ctx, cand, &ia) != 0)
        return -1;
    if (base && calibrate(ctx, base, &ib) != 0)
        return -1;

    double *sa = xcalloc((size_t)rounds, sizeof *sa);
    double *sb = xcalloc((size_t)rounds, sizeof *sb);
    for (int i = 0; i < rounds; i++) { /* interleaved: A B A B ..., copy i of each */
        double t = time_run(ctx, cand, (unsigned)i, ia);
        if (t < 0)
            goto fail;
        sa[i] = t / ((double)ia * ops_of(cand));
        if (base) {
            t = time_run(ctx, base, (unsigned)i, ib);
            if (t < 0)
                goto fail;
            sb[i] = t / ((double)ib * ops_of(base));
        }
    }

    r = new_result(ctx, RES_TIMING);
    copy_str(r->name, sizeof r->name, cand->name);
    r->a_samples = sa;
    r->nsamples = rounds;
    r->a_iters = ia;
    r->a_copies = cand->ncopies ? cand->ncopies : 1;
    r->target = target;
    stats(sa, rounds, &r->a_med, &r->a_best);
    if (base) {
        copy_str(r->base_name, sizeof r->base_name, base->name);
        r->b_samples = sb;
        r->b_iters = ib;
        r->b_copies = base->ncopies ? base->ncopies : 1;
        stats(sb, rounds, &r->b_med, &r->b_best);
        r->ratio_med = r->a_med / r->b_med;
        r->ratio_best = r->a_best / r->b_best;
        r->diff_med = r->a_med - r->b_med;
        r->diff_best = r->a_best - r->b_best;
        {
            double *d = xcalloc((size_t)rounds, sizeof *d), unused;
            for (int i = 0; i < rounds; i++)
                d[i] = sa[i] - sb[i];
            stats(d, rounds, &r->diff_paired, &unused);
            free(d);
        }
    } else {
        free(sb);
    }
    switch (target.kind) {
    case BENCH_TARGET_RATIO_MAX:
        if (base)
            r->status = r->ratio_med <= target.value ? ST_PASS : ST_MISS;
        break;
    case BENCH_TARGET_DIFF_NS_MAX:
        if (base)
            r->status = r->diff_med <= target.value ? ST_PASS : ST_MISS;
        break;
    default:
        break;
    }
    return 0;
fail:
    free(sa);
    free(sb);
    return -1;
}

int bench_last_stats(const bench_ctx *ctx, bench_stats *out)
{
    for (size_t i = ctx->nres; i-- > 0;) {
        const bench_result *r = &ctx->res[i];
        if (r->kind != RES_TIMING)
            continue;
        out->ns_median = r->a_med;
        out->ns_best = r->a_best;
        out->base_ns_median = r->b_med;
        out->base_ns_best = r->b_best;
        out->ratio_median = r->ratio_med;
        out->ratio_best = r->ratio_best;
        out->diff_median = r->diff_med;
        out->diff_best = r->diff_best;
        out->diff_paired_median = r->diff_paired;
        return 0;
    }
    return -1;
}

/* ---- machine facts ----------------------------------------------------------- */
static int pin_cpu(int *cpu_out, int *nallowed_out)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    *nallowed_out = CPU_COUNT(&set);
    int last = -1;
    for (int c = CPU_SETSIZE - 1; c >= 0; c--)
        if (CPU_ISSET(c, &set)) {
            last = c;
            break;
        }
    if (last < 0)
        return -1;
    CPU_ZERO(&set);
    CPU_SET(last, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return -1;
    *cpu_out = last;
    return 0;
}

/* Core clock estimate from a dependent add chain (1 add per cycle). */
static double estimate_ghz(void)
{
    const uint64_t n = 1000000; /* 8M dependent adds ~ 3 ms */
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        uint64_t x = (uint64_t)rep;
        uint64_t t0 = bench_now_ns();
        for (uint64_t i = 0; i < n; i++) {
#define ADD1_ x += 1; BENCH_OPAQUE(x);
            ADD1_ ADD1_ ADD1_ ADD1_ ADD1_ ADD1_ ADD1_ ADD1_
#undef ADD1_
        }
        uint64_t t1 = bench_now_ns();
        BENCH_ESCAPE(x);
        double ns = (double)(t1 - t0);
        if (ns < best)
            best = ns;
    }
    return best > 0 ? (8.0 * (double)n) / best : 0.0;
}

static const char *compiler_name(void)
{
#if defined(__clang__)
    return "clang " __VERSION__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return __VERSION__;
#endif
}

/* ---- output ------------------------------------------------------------------- */
static const char *status_str(int st)
{
    return st == ST_PASS ? "PASS" : st == ST_MISS ? "MISS" : "info";
}

static void fmt_ns(char *buf, size_t cap, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else if (v >= 1e5)
        snprintf(buf, cap, "%.0f", v);
    else if (v >= 100)
        snprintf(buf, cap, "%.1f", v);
    else
        snprintf(buf, cap, "%.2f", v);
}

static void fmt_target(char *buf, size_t cap, const bench_result *r)
{
    switch (r->target.kind) {
    case BENCH_TARGET_RATIO_MAX:
        snprintf(buf, cap, "ratio<=%.2f", r->target.value);
        break;
    case BENCH_TARGET_DIFF_NS_MAX:
        snprintf(buf, cap, "diff<=%.2fns (%+.2f)", r->target.value, r->diff_med);
        break;
    default:
        snprintf(buf, cap, "-");
        break;
    }
}

static void print_group_tables(bench_ctx *ctx, size_t first)
{
    int wn = 9, wb = 8, wt = 6;
    size_t ntiming = 0, nexact = 0;
    char t[64];
    for (size_t i = first; i < ctx->nres; i++) {
        const bench_result *r = &ctx->res[i];
        if (r->kind != RES_TIMING) {
            nexact++;
            continue;
        }
        ntiming++;
        if ((int)strlen(r->name) > wn)
            wn = (int)strlen(r->name);
        if ((int)strlen(r->base_name) > wb)
            wb = (int)strlen(r->base_name);
        fmt_target(t, sizeof t, r);
        if ((int)strlen(t) > wt)
            wt = (int)strlen(t);
    }
    if (ntiming) {
        printf("%-*s | %12s | %8s | %-*s | %12s | %8s | %-15s | %-*s | %s\n", wn,
               "benchmark", "ns/op median", "best", wb, "baseline", "ns/op median",
               "best", "ratio (best)", wt, "target", "status");
        int dashes = wn + wb + wt + 12 + 8 + 12 + 8 + 15 + 6 + 8 * 3;
        for (int i = 0; i < dashes; i++)
            putchar('-');
        putchar('\n');
        for (size_t i = first; i < ctx->nres; i++) {
            const bench_result *r = &ctx->res[i];
            char am[32], ab[32], bm[32], bb[32], ratio[48];
            if (r->kind != RES_TIMING)
                continue;
            fmt_ns(am, sizeof am, r->a_med);
            fmt_ns(ab, sizeof ab, r->a_best);
            fmt_ns(bm, sizeof bm, r->b_med);
            fmt_ns(bb, sizeof bb, r->b_best);
            if (isnan(r->ratio_med))
                snprintf(ratio, sizeof ratio, "-");
            else
                snprintf(ratio, sizeof ratio, "%.3f (%.3f)", r->ratio_med, r->ratio_best);
            fmt_target(t, sizeof t, r);
            printf("%-*s | %12s | %8s | %-*s | %12s | %8s | %-15s | %-*s | %s\n", wn,
                   r->name, am, ab, wb, r->base_name[0] ? r->base_name : "-", bm, bb,
                   ratio, wt, t, status_str(r->status));
        }
        printf("(ns/op: median and best of %d interleaved samples; ratio = candidate/baseline "
               "of medians, (of bests); diff = difference of medians in ns/op)\n",
               ctx->rounds);
    }
    if (nexact) {
        int we = 12;
        for (size_t i = first; i < ctx->nres; i++)
            if (ctx->res[i].kind == RES_EXACT && (int)strlen(ctx->res[i].name) > we)
                we = (int)strlen(ctx->res[i].name);
        printf("\n%-*s | %10s | %10s | %s\n", we, "exact figure", "value", "limit", "status");
        for (int i = 0; i < we + 10 + 10 + 6 + 9; i++)
            putchar('-');
        putchar('\n');
        for (size_t i = first; i < ctx->nres; i++) {
            const bench_result *r = &ctx->res[i];
            char v[48], l[48];
            if (r->kind != RES_EXACT)
                continue;
            snprintf(v, sizeof v, "%.0f %s", r->value, r->unit);
            if (isnan(r->limit))
                snprintf(l, sizeof l, "-");
            else
                snprintf(l, sizeof l, "<= %.0f", r->limit);
            printf("%-*s | %10s | %10s | %s\n", we, r->name, v, l, status_str(r->status));
        }
    }
    for (size_t i = 0; i < ctx->nnotes; i++) {
        printf("note: %s\n", ctx->notes[i]);
        free(ctx->notes[i]);
    }
    free(ctx->notes);
    ctx->notes = NULL;
    ctx->nnotes = 0;
}

static void print_summary(const bench_ctx *ctx)
{
    int pass = 0, miss = 0, info = 0;
    printf("\n== summary ==\n");
    for (size_t i = 0; i < ctx->nres; i++) {
        const bench_result *r = &ctx->res[i];
        if (r->kind != RES_TIMING)
            continue;
        if (r->status == ST_PASS)
            pass++;
        else if (r->status == ST_MISS)
            miss++;
        else
            info++;
        if (!r->base_name[0]) {
            printf("  %-4s %s: %.2f ns/op (best %.2f)\n", status_str(r->status), r->name,
                   r->a_med, r->a_best);
        } else if (r->target.kind == BENCH_TARGET_DIFF_NS_MAX) {
            printf("  %-4s %s: %+.2f ns/op vs %s (best %+.2f), %.3fx; target <= %.2f ns\n",
                   status_str(r->status), r->name, r->diff_med, r->base_name, r->diff_best,
                   r->ratio_med, r->target.value);
        } else if (r->target.kind == BENCH_TARGET_RATIO_MAX) {
            printf("  %-4s %s: %.3fx %s (best %.3fx), %+.2f ns/op; target <= %.2fx\n",
                   status_str(r->status), r->name, r->ratio_med, r->base_name, r->ratio_best,
                   r->diff_med, r->target.value);
        } else {
            printf("  %-4s %s: %.3fx %s (best %.3fx), %+.2f ns/op\n", status_str(r->status),
                   r->name, r->ratio_med, r->base_name, r->ratio_best, r->diff_med);
        }
    }
    /* exact figures: one line per family */
    for (size_t i = 0; i < ctx->nres; i++) {
        const bench_result *r = &ctx->res[i];
        if (r->kind != RES_EXACT)
            continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (ctx->res[j].kind == RES_EXACT && !strcmp(ctx->res[j].family, r->family))
                seen = 1;
        if (seen)
            continue;
        int n = 0, p = 0, m = 0;
        double worst = -1e300;
        const char *worst_name = "";
        for (size_t j = i; j < ctx->nres; j++) {
            const bench_result *q = &ctx->res[j];
            if (q->kind != RES_EXACT || strcmp(q->family, r->family))
                continue;
            n++;
            p += q->status == ST_PASS;
            m += q->status == ST_MISS;
            if (!isnan(q->limit) && q->value - q->limit > worst) {
                worst = q->value - q->limit;
                worst_name = q->name;
            }
        }
        pass += p;
        miss += m;
        info += n - p - m;
        if (p + m)
            printf("  %-4s %s: %d/%d within limit (tightest: %s, %+.0f %s vs limit)\n",
                   m ? "MISS" : "PASS", r->family, p, p + m, worst_name, worst, r->unit);
        else
            printf("  info %s: %d figures\n", r->family, n);
    }
    printf("  -> %d PASS, %d MISS, %d informational; %d internal error(s)\n", pass, miss,
           info, ctx->errors);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

/* , "key": number */
static void json_field_num(FILE *f, const char *key, double v)
{
    fprintf(f, ", \"%s\": ", key);
    json_num(f, v);
}

static void json_samples(FILE *f, const double *s, int n)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        json_num(f, s[i]);
    }
    fputc(']', f);
}

static int write_json(const bench_ctx *ctx, const char *path, int cpu, double ghz)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "iomem_bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"schema\": \"iomem-bench/1\",\n  \"compiler\": ");
    json_str(f, compiler_name());
    fprintf(f, ",\n  \"cpu\": %d,\n  \"ghz_estimate\": ", cpu);
    json_num(f, ghz);
    fprintf(f, ",\n  \"rounds\": %d,\n  \"quick\": %s,\n  \"results\": [", ctx->rounds,
            ctx->quick ? "true" : "false");
    for (size_t i = 0; i < ctx->nres; i++) {
        const bench_result *r = &ctx->res[i];
        char t[64];
        fprintf(f, "%s\n    {\"group\": ", i ? "," : "");
        json_str(f, r->group);
        fputs(", \"name\": ", f);
        json_str(f, r->name);
        if (r->kind == RES_TIMING) {
            fputs(", \"kind\": \"timing\"", f);
            json_field_num(f, "ns_median", r->a_med);
            json_field_num(f, "ns_best", r->a_best);
            fputs(", \"baseline\": ", f);
            if (r->base_name[0])
                json_str(f, r->base_name);
            else
                fputs("null", f);
            json_field_num(f, "baseline_ns_median", r->b_med);
            json_field_num(f, "baseline_ns_best", r->b_best);
            json_field_num(f, "ratio_median", r->ratio_med);
            json_field_num(f, "ratio_best", r->ratio_best);
            json_field_num(f, "diff_ns_median", r->diff_med);
            json_field_num(f, "diff_ns_best", r->diff_best);
            json_field_num(f, "diff_ns_paired_median", r->diff_paired);
            fputs(", \"target\": ", f);
            if (r->target.kind == BENCH_TARGET_NONE) {
                fputs("null", f);
            } else {
                snprintf(t, sizeof t, "%s <= %g%s",
                         r->target.kind == BENCH_TARGET_RATIO_MAX ? "ratio_median"
                                                                  : "diff_ns_median",
                         r->target.value,
                         r->target.kind == BENCH_TARGET_RATIO_MAX ? "" : " ns");
                json_str(f, t);
            }
            fprintf(f, ", \"pass\": %s", r->status == ST_PASS   ? "true"
                                         : r->status == ST_MISS ? "false"
                                                                : "null");
            fprintf(f, ", \"iters\": %llu, \"baseline_iters\": %llu, \"copies\": %u, "
                       "\"baseline_copies\": %u, \"samples_ns\": ",
                    (unsigned long long)r->a_iters, (unsigned long long)r->b_iters,
                    r->a_copies, r->b_copies);
            json_samples(f, r->a_samples, r->nsamples);
            fputs(", \"baseline_samples_ns\": ", f);
            json_samples(f, r->b_samples, r->nsamples);
            fputc('}', f);
        } else {
            fputs(", \"kind\": \"exact\", \"family\": ", f);
            json_str(f, r->family);
            json_field_num(f, "value", r->value);
            fputs(", \"unit\": ", f);
            json_str(f, r->unit);
            fputs(", \"target\": ", f);
            if (isnan(r->limit)) {
                fputs("null", f);
            } else {
                snprintf(t, sizeof t, "value <= %.0f", r->limit);
                json_str(f, t);
            }
            json_field_num(f, "limit", r->limit);
            fprintf(f, ", \"pass\": %s}", r->status == ST_PASS   ? "true"
                                          : r->status == ST_MISS ? "false"
                                                                 : "null");
        }
    }
    fprintf(f, "\n  ],\n  \"internal_errors\": %d\n}\n", ctx->errors);
    if (fclose(f) != 0) {
        fprintf(stderr, "iomem_bench: error writing %s\n", path);
        return -1;
    }
    return 0;
}

/* ---- main --------------------------------------------------------------------- */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: iomem_bench [options]\n"
            "  --json FILE      also write every figure as JSON to FILE\n"
            "  --filter SUBSTR  run only the groups whose name contains SUBSTR\n"
            "  --quick          fewer rounds (%d) and shorter samples: a smoke test\n"
            "  --rounds N       interleaved rounds per comparison (default %d)\n"
            "  --no-pin         do not pin to a CPU (default: the last allowed CPU)\n"
            "  --list           list the groups and exit\n"
            "  --help           this text\n"
            "Targets are reported (PASS/MISS) but do not change the exit status;\n"
            "the exit status is non-zero only on an internal error.\n"
            "groups:\n",
            BENCH_QUICK_ROUNDS, BENCH_DEFAULT_ROUNDS);
    for (size_t i = 0; i < BENCH_NGROUPS; i++)
        fprintf(f, "  %-10s %s\n", bench_groups[i].name, bench_groups[i].desc);
}

int main(int argc, char **argv)
{
    bench_ctx ctx;
    const char *json = NULL, *filter = NULL;
    int pin = 1, rounds = 0;

    memset(&ctx, 0, sizeof ctx);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            for (size_t g = 0; g < BENCH_NGROUPS; g++)
                printf("%s\n", bench_groups[g].name);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            ctx.quick = 1;
        } else if (!strcmp(a, "--no-pin")) {
            pin = 0;
        } else if (!strcmp(a, "--json") && i + 1 < argc) {
            json = argv[++i];
        } else if (!strncmp(a, "--json=", 7)) {
            json = a + 7;
        } else if (!strcmp(a, "--filter") && i + 1 < argc) {
            filter = argv[++i];
        } else if (!strncmp(a, "--filter=", 9)) {
            filter = a + 9;
        } else if ((!strcmp(a, "--rounds") && i + 1 < argc) || !strncmp(a, "--rounds=", 9)) {
            const char *v = a[8] == '=' ? a + 9 : argv[++i];
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > BENCH_MAX_ROUNDS) {
                fprintf(stderr, "iomem_bench: --rounds wants 1..%d\n", BENCH_MAX_ROUNDS);
                return 2;
            }
            rounds = (int)n;
        } else {
            fprintf(stderr, "iomem_bench: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    {
        int matches = 0;
        for (size_t g = 0; g < BENCH_NGROUPS; g++)
            matches += !filter || strstr(bench_groups[g].name, filter) != NULL;
        if (!matches) {
            fprintf(stderr, "iomem_bench: no group matches filter '%s' (see --list)\n", filter);
            return 2;
        }
    }
    ctx.rounds = rounds ? rounds : ctx.quick ? BENCH_QUICK_ROUNDS : BENCH_DEFAULT_ROUNDS;
    ctx.sample_ns = ctx.quick ? BENCH_QUICK_SAMPLE_NS : BENCH_SAMPLE_NS;
    ctx.progress = isatty(2);

    int cpu = -1, nallowed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("iomem_bench: IOKit memory/DMA API benchmarks (candidate vs baseline, one binary)\n");
    printf("compiler: %s", compiler_name());
#if !defined(__OPTIMIZE__)
    printf("  [WARNING: built without optimisation]");
#endif
#if defined(IOMEM__DEBUG) /* iomem.h's resolved IOMEM_DEBUG (0 or 1) */
#if IOMEM__DEBUG
    printf("  [WARNING: IOMEM_DEBUG is on: the debug layer is measured]");
#endif
#endif
    printf("\n");
    if (pin) {
        if (pin_cpu(&cpu, &nallowed) == 0) {
            printf("cpu: pinned to CPU %d (last of %d allowed)\n", cpu, nallowed);
        } else {
            fprintf(stderr, "iomem_bench: warning: could not pin: %s\n", strerror(errno));
            cpu = sched_getcpu();
            printf("cpu: NOT pinned (sched_setaffinity failed); now on CPU %d\n", cpu);
        }
    } else {
        cpu = sched_getcpu();
        printf("cpu: not pinned (--no-pin); now on CPU %d\n", cpu);
    }
    double ghz = estimate_ghz();
    printf("core clock estimate: %.2f GHz (dependent add chain)\n", ghz);
    printf("method: %d interleaved rounds (A B A B ...) of ~%.0f ms samples per kernel, "
           "round r runs placement copy r%%%d%s\n",
           ctx.rounds, ctx.sample_ns / 1e6, BENCH_COPIES, ctx.quick ? " [--quick]" : "");

    for (size_t g = 0; g < BENCH_NGROUPS; g++) {
        const bench_group *grp = &bench_groups[g];
        if (filter && !strstr(grp->name, filter))
            continue;
        ctx.group = grp->name;
        size_t first = ctx.nres;
        printf("\n== %s: %s ==\n", grp->name, grp->desc);
        int rc = grp->fn(&ctx);
        if (rc != 0 && ctx.errors == 0)
            bench_fail(&ctx, "group returned %d", rc);
        print_group_tables(&ctx, first);
    }
    print_summary(&ctx);
    if (json && write_json(&ctx, json, cpu, ghz) != 0)
        ctx.errors++;
    else if (json)
        printf("json: %s\n", json);

    for (size_t i = 0; i < ctx.nres; i++) {
        free(ctx.res[i].a_samples);
        free(ctx.res[i].b_samples);
    }
    free(ctx.res);
    return ctx.errors ? 1 : 0;
}
