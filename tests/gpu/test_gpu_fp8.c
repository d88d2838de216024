/* The CUDA backend's FP8 ops against the host oracle (kernels/fp8.h, kernels/fp8_scaling.h and the
 * "cpu" backend's emulation, kernels/cpu/fp8.c):
 *  (a) the conversion, bit for bit: 2^24 float bit patterns spread over every exponent plus every
 *      FP8 code and midpoint +-1, 2 ulps, subnormals, max, beyond max, inf, NaN, -0, both formats
 *      (gt_cuda_fp8_convert: the kernels' own conversion); fp8_cast on all 65536 bf16 patterns x
 *      256 scales (2^24 products per format, tiled and generic kernels); fp8_cast's out, transposed
 *      out_t and amax on model-sized, partial-tile, odd and misaligned shapes;
 *  (b) matmul_fp8 against the emulation (exact products summed in double) at Gemma-2B shapes with
 *      N = 4096 tokens (fprop, dgrad, wgrad of qkv, o, fc1, fc2; on a subset of 8 rows) and at odd
 *      16-aligned shapes (all rows); bf16 outputs are compared with the reference rounded to bf16
 *      (rounding alone is ~1.6e-3 rel-norm), tolerance 1e-3; fast accumulation is measured;
 *  (c) fp8_update against gt_fp8_update_arrays bit for bit on random states with zero, inf, NaN and
 *      tiny amaxes, both algorithms, len 1, 5, 300, 1024, with and without reduced amaxes;
 *  --small: (a) without the sweeps, (b) without the model shapes, (c): for compute-sanitizer;
 *  --bench: FP8 GEMM TFLOP/s against BF16 (the same TN shape through matmul_fwd, and the model's
 *      BF16 backward GEMMs through matmul_bwd), and the cast kernels' GB/s (CUDA events,
 *      3 warm-ups, median of 20, L2 flushed before each run).
 * Prints a table; exits non-zero on any failure. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_stream.h"
#include "kernels/cuda/fp8_cuda.h"
#include "kernels/fp8.h"
#include "kernels/fp8_scaling.h"

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) GT_DIE("%s: %s", #call, cudaGetErrorString(e_));                    \
    } while (0)

typedef struct {
    const gt_ops *cpu, *gpu;
    gt_backend *cbe, *gbe;
    uint64_t rng;
    int passed, failed;
} ctx;

/* ---- helpers ---- */

static uint64_t rnd(ctx *t) { /* splitmix64 */
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float uni(ctx *t, float lo, float hi) {
    return lo + (hi - lo) * (float)((rnd(t) >> 40) * (1.0 / 16777216.0));
}
static float normal(ctx *t) { /* Box-Muller */
    double u = ((rnd(t) >> 11) + 1.0) * (1.0 / 9007199254740993.0),
           v = (rnd(t) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}
static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bitsf(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static const char *fname(gt_dtype f) { return f == GT_E4M3 ? "E4M3" : "E5M2"; }
static uint8_t enc(gt_dtype f, float x) {
    return f == GT_E4M3 ? gt_f32_to_e4m3(x) : gt_f32_to_e5m2(x);
}
static float dec(gt_dtype f, uint8_t v) {
    return f == GT_E4M3 ? gt_e4m3_to_f32(v) : gt_e5m2_to_f32(v);
}
static float fmax_of(gt_dtype f) { return f == GT_E4M3 ? GT_E4M3_MAX : GT_E5M2_MAX; }
static void *dalloc(ctx *t, size_t bytes) { return t->gpu->alloc(t->gbe, bytes); }
static void dfree(ctx *t, void *p) { t->gpu->release(t->gbe, p); }
static void up(ctx *t, void *d, const void *h, size_t n) { t->gpu->upload_raw(t->gbe, d, h, n); }
static void down(ctx *t, void *h, const void *d, size_t n) {
    t->gpu->download_raw(t->gbe, h, d, n);
}
static float *dscalar(ctx *t, float v) { float *d = dalloc(t, 4); up(t, d, &v, 4); return d; }
static float getf(ctx *t, const float *d) { float v; down(t, &v, d, 4); return v; }
static size_t count_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += a[i] != b[i];
    return c;
}

/* One table row; passes when err <= tol (NaN fails). */
static void report(ctx *t, const char *what, const char *shape, double err, double tol,
                   const char *note) {
    int ok = err <= tol;
    printf("%-34s %-24s %11.3e %9.1e  %-4s %s\n", what, shape, err, tol, ok ? "PASS" : "FAIL",
           note ? note : "");
    *(ok ? &t->passed : &t->failed) += 1;
}

/* ---- (a) conversion ---- */

/* Appends every finite code of f, its neighbours to the next code's midpoint and +-1, 2 ulps around
 * both, both signs; the midpoint beyond max; smallest-subnormal halves. Returns the new count. */
static size_t add_edges(float *x, size_t n, gt_dtype f) {
    uint8_t top = f == GT_E4M3 ? 0x7e : 0x7b;
    for (int c = 0; c <= top; c++) {
        float v = dec(f, (uint8_t)c),
              next = c < top ? dec(f, (uint8_t)(c + 1)) : 2 * v - dec(f, (uint8_t)(c - 1));
        float mid = 0.5f * (v + next); /* exact: FP8 values have at most 4 significant bits */
        float pts[2] = {v, mid};
        for (int p = 0; p < 2; p++) {
            float lo = pts[p], hi = pts[p];
            for (int k = 0; k < 3; k++) {
                for (int s = 0; s < 2; s++) x[n++] = s ? -lo : lo, x[n++] = s ? -hi : hi;
                lo = nextafterf(lo, -INFINITY), hi = nextafterf(hi, INFINITY);
            }
        }
    }
    return n;
}

static void test_convert(ctx *t) {
    const size_t sweep = (size_t)1 << 24, cap = sweep + 16384;
    float *x = gt_malloc(cap * sizeof(float));
    size_t n = 0;
    for (uint32_t k = 0; k < sweep; k++) /* every exponent and sign; low bits vary */
        x[n++] = fbits((k << 8) | (uint32_t)((k * 2654435761u) >> 24));
    n = add_edges(x, n, GT_E4M3);
    n = add_edges(x, n, GT_E5M2);
    const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,
                                0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
                                0x7fffffffu, 0xffffffffu, 0x7f7fffffu, 0xff7fffffu,
                                0x00800000u, 0x00000001u, 0x807fffffu, 0x3f800000u};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[n++] = fbits(special[i]);
    while (n % 4) x[n++] = 0.0f;
    float *dx = dalloc(t, n * sizeof(float));
    uint8_t *dq = dalloc(t, n), *q = gt_malloc(n);
    up(t, dx, x, n * sizeof(float));
    char note[160];
    for (int fi = 0; fi < 2; fi++) {
        gt_dtype f = fi ? GT_E5M2 : GT_E4M3;
        gt_cuda_fp8_convert(t->gbe, dq, dx, n, f); /* the x4 path */
        gt_cuda_fp8_convert(t->gbe, dq + n - 1023, dx + n - 1023, 1023, f); /* the scalar path */
        down(t, q, dq, n);
        size_t bad = 0, bad_nan = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t h = enc(f, x[i]);
            if (h == q[i]) continue;
            bad++;
            bad_nan += isnan(x[i]) != 0;
            if (bad <= 6)
                printf("  %s: float 0x%08x (%g): host 0x%02x, CUDA 0x%02x\n", fname(f), bitsf(x[i]),
                       x[i], h, q[i]);
        }
        snprintf(note, sizeof note, "%zu inputs; %zu of the mismatches are NaN inputs", n, bad_nan);
        report(t, fi ? "convert E5M2 vs kernels/fp8.c" : "convert E4M3 vs kernels/fp8.c",
               "2^24 + edges", (double)bad, 0, note);
    }
    dfree(t, dx), dfree(t, dq), free(q), free(x);
}

/* fp8_cast on all 65536 bf16 patterns x 256 scales: [256,256] (tiled kernel), and on every 4th
 * scale [1,65535] from a 2-byte-offset pointer (generic kernel). */
static void test_cast_sweep(ctx *t, gt_dtype f) {
    enum { P = 65536 };
    uint16_t *pat = gt_malloc(P * 2);
    float *v = gt_malloc(P * sizeof(float));
    for (int i = 0; i < P; i++) pat[i] = (uint16_t)i, v[i] = gt_bf16_to_f32((uint16_t)i);
    uint8_t *din = dalloc(t, P * 2), *dout = dalloc(t, P), *dout_t = dalloc(t, P);
    float *dscale = dscalar(t, 1.0f), *damax = dscalar(t, 0.0f);
    up(t, din, pat, P * 2);
    uint8_t *co = gt_malloc(P), *ct = gt_malloc(P), *go = gt_malloc(P), *gtr = gt_malloc(P);
    size_t bad = 0, bad_amax = 0;
    int shown = 0, oracle_nan = 0;
    for (int s = 0; s < 256; s++) {
        float scale = ldexpf(s < 48 ? 1.0f : uni(t, 1.0f, 2.0f), s % 48 - 24), camax = 0.0f,
              zero = 0.0f;
        int generic = s % 4 == 3, rows = generic ? 1 : 256, cols = generic ? P - 1 : 256,
            off = generic;
        up(t, dscale, &scale, 4);
        up(t, damax, &zero, 4);
        t->gpu->fp8_cast(t->gbe, dout, dout_t, din + 2 * off, rows, cols, f, dscale, damax);
        t->cpu->fp8_cast(t->cbe, co, ct, v + off, rows, cols, f, &scale, &camax);
        down(t, go, dout, (size_t)rows * cols);
        down(t, gtr, dout_t, (size_t)rows * cols);
        size_t bo = count_diff(go, co, (size_t)rows * cols),
               bt = count_diff(gtr, ct, (size_t)rows * cols);
        float gamax = getf(t, damax), want = 0.0f;
        for (int i = off; i < P; i++) /* every NaN ignored, signaling ones included */
            if (!isnan(v[i]) && fabsf(v[i]) > want) want = fabsf(v[i]);
        bad += bo + bt;
        bad_amax += bitsf(gamax) != bitsf(want);
        oracle_nan += isnan(camax) != 0;
        if ((bo || bt || bitsf(gamax) != bitsf(want)) && shown++ < 4) /* what differs */
            printf("  %s scale %g%s: amax CUDA 0x%08x want 0x%08x; out %zu, out_t %zu differ\n",
                   fname(f), scale, generic ? " generic" : "", bitsf(gamax), bitsf(want), bo, bt);
    }
    char what[64];
    snprintf(what, sizeof what, "fp8_cast %s bf16 sweep", fname(f));
    /* The oracle's amax is fmaxf(m, |x|); glibc's fmaxf returns NaN for a signaling NaN operand
     * (IEEE 754-2008 maxNum), the GPU's max.f32 ignores every NaN, so on these patterns (sNaN
     * included, which bf16 arithmetic never produces) the amax is checked against a NaN-ignoring
     * max. */
    char note[160];
    snprintf(note, sizeof note,
             "all bf16 patterns; %zu out/out_t bytes, %zu amaxes differ (cpu oracle amax NaN in %d "
             "calls: sNaN)",
             bad, bad_amax, oracle_nan);
    report(t, what, "65536 x 256 scales", (double)(bad + bad_amax), 0, note);
    dfree(t, din), dfree(t, dout), dfree(t, dout_t), dfree(t, dscale), dfree(t, damax);
    free(pat), free(v), free(co), free(ct), free(go), free(gtr);
}

typedef struct {
    int rows, cols;
    gt_dtype f;
    int out, tr, off; /* write out, write out_t, element offset of the input (misaligned) */
    float amax0;
} cast_case;

static void test_cast_case(ctx *t, const cast_case *c) {
    size_t n = (size_t)c->rows * c->cols;
    float *v = gt_malloc((n + 1) * sizeof(float));
    uint16_t *b = gt_malloc((n + 1) * 2);
    for (size_t i = 0; i <= n; i++) {
        b[i] = gt_f32_to_bf16(uni(t, -1, 1) * ldexpf(1.0f, (int)(rnd(t) % 18) - 8));
        v[i] = gt_bf16_to_f32(b[i]);
    }
    float scale = fmax_of(c->f) / 300.0f, camax = c->amax0; /* the largest inputs saturate */
    uint8_t *din = dalloc(t, (n + 1) * 2), *dout = dalloc(t, n + 1), *dout_t = dalloc(t, n + 1);
    float *dscale = dscalar(t, scale), *damax = dscalar(t, c->amax0);
    up(t, din, b, (n + 1) * 2);
    uint8_t *co = gt_malloc(n), *ct = gt_malloc(n), *g = gt_malloc(n);
    t->gpu->fp8_cast(t->gbe, c->out ? dout + c->off : NULL, c->tr ? dout_t : NULL, din + 2 * c->off,
                     c->rows, c->cols, c->f, dscale, damax);
    t->cpu->fp8_cast(t->cbe, co, ct, v + c->off, c->rows, c->cols, c->f, &scale, &camax);
    size_t bad = bitsf(getf(t, damax)) != bitsf(camax);
    if (c->out) down(t, g, dout + c->off, n), bad += count_diff(g, co, n);
    if (c->tr) down(t, g, dout_t, n), bad += count_diff(g, ct, n);
    char what[64], shape[48];
    snprintf(what, sizeof what, "fp8_cast %s%s%s%s", fname(c->f), c->out ? " out" : "",
             c->tr ? " out_t" : "", !c->out && !c->tr ? " amax only" : "");
    snprintf(shape, sizeof shape, "%dx%d%s%s", c->rows, c->cols, c->off ? " misaligned" : "",
             c->amax0 > 0 ? " amax0" : "");
    report(t, what, shape, (double)bad, 0, "bytes + amax differing");
    dfree(t, din), dfree(t, dout), dfree(t, dout_t), dfree(t, dscale), dfree(t, damax);
    free(v), free(b), free(co), free(ct), free(g);
}

/* ---- (b) GEMM ---- */

typedef struct {
    const char *name;
    int M, N, K;
    gt_dtype af, bf;
    int out_grad, fast, role; /* fast: the model's setting; role 0 fprop, 1 dgrad, 2 wgrad */
} gemm_case;

#define E4 GT_E4M3
#define E5 GT_E5M2
/* Gemma-2B's GEMMs at N = 4096 tokens, as model/fp8.c calls matmul_fp8; lm_head (BF16 in the
 * model) only in --bench, to compare with DESIGN.md's figures. */
static const gemm_case MODEL[] = {
    {"qkv fprop", 4096, 2560, 2048, E4, E4, 0, 1, 0},
    {"qkv dgrad", 4096, 2048, 2560, E5, E4, 0, 0, 1},
    {"qkv wgrad", 2560, 2048, 4096, E5, E4, 1, 0, 2},
    {"o fprop", 4096, 2048, 2048, E4, E4, 0, 1, 0},
    {"o dgrad", 4096, 2048, 2048, E5, E4, 0, 0, 1},
    {"o wgrad", 2048, 2048, 4096, E5, E4, 1, 0, 2},
    {"fc1 fprop", 4096, 32768, 2048, E4, E4, 0, 1, 0},
    {"fc1 dgrad", 4096, 2048, 32768, E5, E4, 0, 0, 1},
    {"fc1 wgrad", 32768, 2048, 4096, E5, E4, 1, 0, 2},
    {"fc2 fprop", 4096, 2048, 16384, E4, E4, 0, 1, 0},
    {"fc2 dgrad", 4096, 16384, 2048, E5, E4, 0, 0, 1},
    {"fc2 wgrad", 2048, 16384, 4096, E5, E4, 1, 0, 2},
    {"lm_head fprop", 4096, 256000, 2048, E4, E4, 0, 1, 0},
    {"lm_head dgrad", 4096, 2048, 256000, E5, E4, 0, 0, 1},
    {"lm_head wgrad", 256000, 2048, 4096, E5, E4, 1, 0, 2},
};
#define MODEL_TESTED 12 /* without lm_head */

/* n FP8 codes of normal(0, fmax/8) values, from a table (fast for the 134M-element operands). */
static void fill_codes(ctx *t, uint8_t *p, size_t n, gt_dtype f) {
    uint8_t table[4096];
    for (int i = 0; i < 4096; i++) table[i] = enc(f, normal(t) * fmax_of(f) / 8);
    for (size_t i = 0; i < n; i += 4) {
        uint64_t r = rnd(t);
        for (size_t j = i; j < i + 4 && j < n; j++, r >>= 12) p[j] = table[r & 4095];
    }
}

static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]), den += (double)ref[i] * ref[i];
    return isfinite(num) ? sqrt(num / (den > 0 ? den : 1)) : INFINITY;
}

static void test_gemm(ctx *t, const gemm_case *c, int subset) {
    int M = c->M, N = c->N, K = c->K, R = subset && M > subset ? subset : M;
    size_t na = (size_t)M * K, nb = (size_t)N * K;
    uint8_t *A = gt_malloc(na), *B = gt_malloc(nb), *Asub = gt_malloc((size_t)R * K);
    fill_codes(t, A, na, c->af);
    fill_codes(t, B, nb, c->bf);
    int *rows = gt_malloc((size_t)R * sizeof(int));
    for (int j = 0; j < R; j++)
        rows[j] = R == M ? j : (int)(((long long)j * M) / R + (j * 7919) % (M / R));
    for (int j = 0; j < R; j++) memcpy(Asub + (size_t)j * K, A + (size_t)rows[j] * K, K);
    float asinv = 8.0f / fmax_of(c->af) * 0.75f, bsinv = 8.0f / fmax_of(c->bf) * 1.25f;
    /* fp32 output: D starts at values of the product's size, on both sides */
    size_t dsz = (size_t)M * N * (c->out_grad ? 4 : 2);
    float *ref = gt_malloc((size_t)R * N * sizeof(float)),
          *got = gt_malloc((size_t)R * N * sizeof(float));
    float *d0 = c->out_grad ? gt_malloc((size_t)M * N * sizeof(float)) : NULL;
    void *dA = dalloc(t, na), *dB = dalloc(t, nb), *dD = dalloc(t, dsz);
    float *da_s = dscalar(t, asinv), *db_s = dscalar(t, bsinv);
    up(t, dA, A, na);
    up(t, dB, B, nb);
    if (d0) {
        for (size_t i = 0; i < (size_t)M * N; i++) d0[i] = uni(t, -1, 1) * sqrtf((float)K);
        up(t, dD, d0, dsz);
        for (int j = 0; j < R; j++)
            memcpy(ref + (size_t)j * N, d0 + (size_t)rows[j] * N, (size_t)N * 4);
    }
    t->cpu->matmul_fp8(t->cbe, ref, c->out_grad, Asub, c->af, &asinv, B, c->bf, &bsinv, R, N, K, 0);
    char shape[64], what[64], note[96];
    snprintf(shape, sizeof shape, "%dx%dx%d%s", M, N, K, R < M ? " (8 rows)" : "");
    for (int fast = 0; fast <= !c->out_grad; fast++) {
        t->gpu->matmul_fp8(t->gbe, dD, c->out_grad, dA, c->af, da_s, dB, c->bf, db_s, M, N, K,
                           fast);
        double err_raw;
        if (c->out_grad) {
            for (int j = 0; j < R; j++)
                down(t, got + (size_t)j * N, (float *)dD + (size_t)rows[j] * N, (size_t)N * 4);
            err_raw = rel_err(got, ref, (size_t)R * N);
            snprintf(note, sizeof note, "fp32 +=");
        } else {
            uint16_t *h = gt_malloc((size_t)N * 2);
            for (int j = 0; j < R; j++) {
                down(t, h, (uint16_t *)dD + (size_t)rows[j] * N, (size_t)N * 2);
                for (int i = 0; i < N; i++) got[(size_t)j * N + i] = gt_bf16_to_f32(h[i]);
            }
            free(h);
            err_raw = rel_err(got, ref, (size_t)R * N);
            float *rb = gt_malloc((size_t)R * N * sizeof(float));
            for (size_t i = 0; i < (size_t)R * N; i++) rb[i] = gt_round_bf16(ref[i]);
            double e = rel_err(got, rb, (size_t)R * N);
            snprintf(note, sizeof note, "bf16; vs unrounded ref %.2e", err_raw);
            err_raw = e;
            free(rb);
        }
        snprintf(what, sizeof what, "matmul_fp8 %s %sx%s%s", c->name, fname(c->af), fname(c->bf),
                 fast ? " fast" : "");
        report(t, what, shape, err_raw, fast ? 2e-2 : 1e-3, note);
    }
    if (c->out_grad && R == M && t->gpu->set_dw_accumulate) { /* the first micro-batch overwrites */
        t->gpu->set_dw_accumulate(t->gbe, 0), t->cpu->set_dw_accumulate(t->cbe, 0);
        t->gpu->matmul_fp8(t->gbe, dD, 1, dA, c->af, da_s, dB, c->bf, db_s, M, N, K, 0);
        t->cpu->matmul_fp8(t->cbe, ref, 1, Asub, c->af, &asinv, B, c->bf, &bsinv, R, N, K, 0);
        t->gpu->set_dw_accumulate(t->gbe, 1), t->cpu->set_dw_accumulate(t->cbe, 1);
        down(t, got, dD, (size_t)M * N * 4);
        snprintf(what, sizeof what, "matmul_fp8 %s %sx%s", c->name, fname(c->af), fname(c->bf));
        report(t, what, shape, rel_err(got, ref, (size_t)M * N), 1e-3, "fp32 = (dw overwrite)");
    }
    dfree(t, dA), dfree(t, dB), dfree(t, dD), dfree(t, da_s), dfree(t, db_s);
    free(A), free(B), free(Asub), free(rows), free(ref), free(got), free(d0);
}

/* ---- (c) scaling update ---- */

static float random_amax(ctx *t) {
    switch (rnd(t) % 16) {
    case 0: return 0.0f;
    case 1: return INFINITY;
    case 2: return NAN;
    case 3: return 1e-40f; /* a subnormal: 448 / it overflows, scale becomes FLT_MAX */
    case 4: return 3e38f;
    default: return uni(t, 0, 1) * ldexpf(1.0f, (int)(rnd(t) % 40) - 20);
    }
}

static void test_update(ctx *t, int len, int algo, float margin, int with_reduced) {
    enum { COUNT = 300, FIRST = 7, NT = 281 };
    size_t nh = (size_t)len * COUNT;
    float *h = gt_malloc(nh * 4), *sc = gt_malloc(COUNT * 4), *si = gt_malloc(COUNT * 4),
          *mx = gt_malloc(COUNT * 4), *red = gt_malloc(COUNT * 4), *gh = gt_malloc(nh * 4),
          *gs = gt_malloc(COUNT * 4), *gi = gt_malloc(COUNT * 4);
    for (size_t i = 0; i < nh; i++) h[i] = rnd(t) % 8 ? uni(t, 0, 4) : random_amax(t);
    for (int i = 0; i < COUNT; i++) {
        h[i] = random_amax(t); /* slot 0 */
        sc[i] = uni(t, 0.5f, 100.0f), si[i] = 1.0f / sc[i],
        mx[i] = i % 3 ? GT_E4M3_MAX : GT_E5M2_MAX;
        red[i] = rnd(t) % 3 ? random_amax(t) : 0.0f; /* 0: fall back to the local slot 0 */
    }
    float *dh = dalloc(t, nh * 4), *ds = dalloc(t, COUNT * 4), *di = dalloc(t, COUNT * 4),
          *dm = dalloc(t, COUNT * 4), *dr = dalloc(t, COUNT * 4);
    up(t, dh, h, nh * 4), up(t, ds, sc, COUNT * 4), up(t, di, si, COUNT * 4),
        up(t, dm, mx, COUNT * 4), up(t, dr, red, COUNT * 4);
    const float *r = with_reduced ? red : NULL;
    for (int rep = 0; rep < 3; rep++) { /* repeated updates walk the roll through the history */
        gt_fp8_update_arrays(h, sc, si, mx, r, FIRST, NT, COUNT, len, (gt_amax_algo)algo, margin);
        t->gpu->fp8_update(t->gbe, dh, ds, di, dm, with_reduced ? dr : NULL, FIRST, NT, COUNT, len,
                           algo, margin);
    }
    down(t, gh, dh, nh * 4), down(t, gs, ds, COUNT * 4), down(t, gi, di, COUNT * 4);
    size_t bad = 0;
    for (size_t i = 0; i < nh; i++) bad += bitsf(gh[i]) != bitsf(h[i]);
    for (int i = 0; i < COUNT; i++)
        bad += (bitsf(gs[i]) != bitsf(sc[i])) + (bitsf(gi[i]) != bitsf(si[i]));
    char shape[64];
    snprintf(shape, sizeof shape, "len %d margin %g%s", len, margin,
             with_reduced ? " reduced" : "");
    report(t, algo == GT_AMAX_MAX ? "fp8_update max" : "fp8_update most_recent", shape, (double)bad,
           0, "3 updates; history, scale, scale_inv bits");
    dfree(t, dh), dfree(t, ds), dfree(t, di), dfree(t, dm), dfree(t, dr);
    free(h), free(sc), free(si), free(mx), free(red), free(gh), free(gs), free(gi);
}

/* ---- (d) benchmark ---- */

#define WARMUP 3
#define REPS 20
#define FLUSH_BYTES ((size_t)256 << 20)
#define POOL_BYTES ((size_t)16 << 20)

typedef struct {
    ctx *t;
    void *flush, *pool8, *pool16; /* L2 flush buffer; random FP8 codes / bf16 values */
} bench;

/* Device buffer filled from a random pool (device-to-device copies). */
static void *bbuf(bench *b, size_t bytes, int bf16) {
    char *p = dalloc(b->t, bytes);
    for (size_t off = 0; off < bytes; off += POOL_BYTES)
        b->t->gpu->copy(b->t->gbe, p + off, bf16 ? b->pool16 : b->pool8,
                        bytes - off < POOL_BYTES ? bytes - off : POOL_BYTES);
    return p;
}

typedef struct {
    int kind; /* 0 FP8 GEMM, 1 BF16 matmul_fwd, 2 BF16 matmul_bwd, 3 fp8_cast, 4 copy */
    void *d, *a, *b, *c;
    float *sa, *sb;
    int M, N, K, out_grad, fast;
    gt_dtype af, bf;
} job;

static void run_job(ctx *t, const job *j) {
    switch (j->kind) {
    case 0:
        t->gpu->matmul_fp8(t->gbe, j->d, j->out_grad, j->a, j->af, j->sa, j->b, j->bf, j->sb, j->M,
                           j->N, j->K, j->fast);
        break;
    case 1: t->gpu->matmul_fwd(t->gbe, j->d, j->a, j->b, j->M, j->K, j->N); break;
    case 2: /* dx, dW, dy, x, W */
        t->gpu->matmul_bwd(t->gbe, j->c, j->d, j->a, j->b, j->sa, j->M, j->K, j->N);
        break;
    case 3: t->gpu->fp8_cast(t->gbe, j->d, j->c, j->a, j->M, j->N, j->af, j->sa, j->sb); break;
    default: t->gpu->copy(t->gbe, j->d, j->a, (size_t)j->M * j->N); break;
    }
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? -1 : a > b;
}

/* Median milliseconds of REPS timed runs after WARMUP, L2 flushed before each. */
static double time_job(bench *b, const job *j) {
    ctx *t = b->t;
    cudaStream_t s = gt_cuda_stream(t->gbe);
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float ms[REPS];
    for (int r = 0; r < WARMUP + REPS; r++) {
        CK(cudaMemsetAsync(b->flush, r & 0xff, FLUSH_BYTES, s));
        CK(cudaEventRecord(e0, s));
        run_job(t, j);
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        if (r >= WARMUP) CK(cudaEventElapsedTime(&ms[r - WARMUP], e0, e1));
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    qsort(ms, REPS, sizeof ms[0], cmp_float);
    return 0.5 * (ms[REPS / 2 - 1] + ms[REPS / 2]);
}

static void bench_one_gemm(bench *b, const gemm_case *g) {
    ctx *t = b->t;
    double flops = 2.0 * g->M * g->N * (double)g->K;
    float *s = dscalar(t, 1.0f / 64);
    job j = {0};
    j.M = g->M, j.N = g->N, j.K = g->K, j.af = g->af, j.bf = g->bf, j.out_grad = g->out_grad,
    j.fast = g->fast;
    j.a = bbuf(b, (size_t)g->M * g->K, 0), j.b = bbuf(b, (size_t)g->N * g->K, 0);
    j.d = dalloc(t, (size_t)g->M * g->N * (g->out_grad ? 4 : 2)), j.sa = j.sb = s;
    double t8 = time_job(b, &j);
    dfree(t, j.a), dfree(t, j.b), dfree(t, j.d);
    /* BF16, the same TN shape: y[M,N] = x[M,K] w[N,K]^T */
    job h = {0};
    h.kind = 1, h.M = g->M, h.N = g->N, h.K = g->K;
    h.a = bbuf(b, (size_t)g->M * g->K * 2, 1), h.b = bbuf(b, (size_t)g->N * g->K * 2, 1);
    h.d = dalloc(t, (size_t)g->M * g->N * 2);
    double t16 = time_job(b, &h);
    dfree(t, h.a), dfree(t, h.b), dfree(t, h.d);
    /* BF16 as the model runs it: dgrad = (dx + dW) - dW of matmul_bwd, wgrad = dW alone */
    double tm = t16;
    if (g->role) {
        int Nt = g->role == 1 ? g->M : g->K, IC = g->N, OC = g->role == 1 ? g->K : g->M;
        job w = {0};
        w.kind = 2, w.M = Nt, w.K = IC, w.N = OC;
        w.a = bbuf(b, (size_t)Nt * OC * 2, 1), w.b = bbuf(b, (size_t)Nt * IC * 2, 1),
        w.sa = bbuf(b, (size_t)OC * IC * 2, 1);
        w.d = dalloc(t, (size_t)OC * IC * 4);
        double tw = time_job(b, &w);
        tm = tw;
        if (g->role == 1) {
            w.c = dalloc(t, (size_t)Nt * IC * 2);
            tm = time_job(b, &w) - tw;
            dfree(t, w.c);
        }
        dfree(t, w.a), dfree(t, w.b), dfree(t, w.sa), dfree(t, w.d);
    }
    printf("%-16s %6d %6d %6d  %-9s %8.3f %8.1f   %8.1f %8.1f   %5.2fx\n", g->name, g->M, g->N,
           g->K, g->fast ? "fast" : (g->out_grad ? "fp32 +=" : "bf16"), t8, flops / t8 * 1e-9,
           flops / t16 * 1e-9, flops / tm * 1e-9, t16 / t8);
    dfree(t, s);
}

static void bench_cast(bench *b, const char *name, int rows, int cols, gt_dtype f, int out,
                       int tr) {
    ctx *t = b->t;
    size_t n = (size_t)rows * cols;
    job j = {0};
    j.kind = 3, j.M = rows, j.N = cols, j.af = f;
    j.a = bbuf(b, n * 2, 1), j.d = out ? dalloc(t, n) : NULL, j.c = tr ? dalloc(t, n) : NULL;
    j.sa = dscalar(t, 100.0f), j.sb = dscalar(t, 0.0f);
    double ms = time_job(b, &j), bytes = (double)n * (2 + out + tr);
    printf("%-34s %6dx%-6d %8.3f ms %8.1f GB/s\n", name, rows, cols, ms, bytes / ms * 1e-6);
    dfree(t, j.a), dfree(t, j.d), dfree(t, j.c), dfree(t, j.sa), dfree(t, j.sb);
}

static void run_bench(ctx *t) {
    bench b = {t, NULL, NULL, NULL};
    b.flush = dalloc(t, FLUSH_BYTES);
    uint8_t *p8 = gt_malloc(POOL_BYTES);
    uint16_t *p16 = gt_malloc(POOL_BYTES);
    for (size_t i = 0; i < POOL_BYTES; i++)
        p8[i] = (uint8_t)(rnd(t) & 0xef); /* finite in both formats */
    for (size_t i = 0; i < POOL_BYTES / 2; i++) p16[i] = gt_f32_to_bf16(uni(t, -1, 1));
    b.pool8 = dalloc(t, POOL_BYTES), b.pool16 = dalloc(t, POOL_BYTES);
    up(t, b.pool8, p8, POOL_BYTES), up(t, b.pool16, p16, POOL_BYTES);
    free(p8), free(p16);
    char dev[128];
    gt_cuda_device_name(t->gbe, dev, sizeof dev);
    printf("\n=== bench on %s (median of %d after %d warm-ups, L2 flushed; TFLOP/s)\n", dev, REPS,
           WARMUP);
    printf("%-16s %6s %6s %6s  %-9s %8s %8s   %8s %8s   %6s\n", "GEMM D=A.B^T", "M", "N", "K",
           "fp8 out", "fp8 ms", "FP8", "BF16 TN", "BF16 mdl", "vs TN");
    for (size_t i = 0; i < sizeof MODEL / sizeof MODEL[0]; i++) bench_one_gemm(&b, &MODEL[i]);
    printf(
        "(BF16 TN: matmul_fwd of the same M,N,K; BF16 mdl: what the model runs in BF16 -- dgrad =\n"
        " matmul_bwd(dx+dW) - matmul_bwd(dW), wgrad = matmul_bwd(dW only, fp32 +=))\n\n");
    bench_cast(&b, "cast x E4M3 out+out_t", 4096, 2048, GT_E4M3, 1, 1);
    bench_cast(&b, "cast fc2 in E4M3 out+out_t", 4096, 16384, GT_E4M3, 1, 1);
    bench_cast(&b, "cast dy fc1 E5M2 out+out_t", 4096, 32768, GT_E5M2, 1, 1);
    bench_cast(&b, "cast W fc1 E4M3 out+out_t", 32768, 2048, GT_E4M3, 1, 1);
    bench_cast(&b, "cast E4M3 out only", 4096, 16384, GT_E4M3, 1, 0);
    bench_cast(&b, "cast E4M3 out_t only", 4096, 16384, GT_E4M3, 0, 1);
    bench_cast(&b, "amax only", 4096, 16384, GT_E4M3, 0, 0);
    bench_cast(&b, "cast generic (cols%16!=0) out+out_t", 4096, 2040, GT_E4M3, 1, 1);
    job c = {0};
    c.kind = 4, c.M = 1 << 15, c.N = 1 << 15; /* 1 GiB */
    c.a = bbuf(&b, (size_t)1 << 30, 1), c.d = dalloc(t, (size_t)1 << 30);
    double ms = time_job(&b, &c);
    printf("%-34s %13s %8.3f ms %8.1f GB/s\n", "d2d copy (ceiling, read+write)", "1 GiB", ms,
           2.0 * (1 << 30) / ms * 1e-6);
    dfree(t, c.a), dfree(t, c.d), dfree(t, b.flush), dfree(t, b.pool8), dfree(t, b.pool16);
}

int main(int argc, char **argv) {
    int bench_only = argc > 1 && strcmp(argv[1], "--bench") == 0;
    int small = argc > 1 && strcmp(argv[1], "--small") == 0; /* compute-sanitizer: small shapes */
    GT_ASSERT(gt_cuda_device_count() > 0, "test_gpu_fp8 needs a CUDA device");
    ctx t = {gt_cpu_ops(), gt_cuda_ops(), gt_cpu_backend_create(), gt_cuda_backend_create(0),
             12345, 0, 0};
    GT_ASSERT(t.gpu->fp8_cast && t.gpu->matmul_fp8 && t.gpu->fp8_update,
              "the cuda backend has no FP8 ops");
    if (bench_only) {
        run_bench(&t);
    } else {
        printf("%-34s %-24s %11s %9s  %-4s %s\n", "test", "shape", "err/diffs", "tol", "", "note");
        if (!small) {
            test_convert(&t);
            test_cast_sweep(&t, GT_E4M3);
            test_cast_sweep(&t, GT_E5M2);
        }
        /* rows, cols, format, out, out_t, input offset, initial amax */
        const cast_case C[] = {
            {16, 16, E4, 1, 1, 0, 0}, {128, 128, E5, 1, 1, 0, 0}, {144, 272, E4, 1, 1, 0, 0},
            {272, 144, E5, 1, 1, 0, 2}, {4096, 2048, E4, 1, 1, 0, 0}, {4096, 2560, E5, 1, 1, 0, 0},
            {2048, 4096, E4, 0, 1, 0, 0}, {4096, 2048, E5, 1, 0, 0, 0}, {1, 1, E4, 1, 1, 0, 0},
            {4096, 2048, E4, 0, 0, 0, 0}, {333, 77, E4, 0, 0, 1, 1e30f}, {3, 5, E5, 1, 1, 0, 0},
            {17, 33, E4, 1, 1, 0, 0}, {129, 7, E5, 1, 1, 0, 0}, {64, 64, E4, 1, 1, 1, 0},
        };
        for (size_t i = 0; i < sizeof C / sizeof C[0]; i++)
            if (!small || (size_t)C[i].rows * C[i].cols <= 65536) test_cast_case(&t, &C[i]);
        for (int i = 0; i < MODEL_TESTED && !small; i++) test_gemm(&t, &MODEL[i], 8);
        const gemm_case O[] = {
            {"odd", 1, 16, 16, E4, E4, 0, 0, 0},      {"odd", 33, 48, 80, E4, E4, 0, 0, 0},
            {"odd", 272, 144, 208, E5, E4, 0, 0, 0},  {"odd", 100, 400, 1008, E4, E5, 0, 0, 0},
            {"odd", 17, 4112, 48, E5, E4, 1, 0, 0},   {"odd", 240, 96, 1040, E4, E5, 1, 0, 0},
        };
        for (size_t i = 0; i < sizeof O / sizeof O[0]; i++) test_gemm(&t, &O[i], 0);
        const int lens[] = {1, 5, 300, 1024};
        for (int li = 0; li < 4; li++)
            for (int algo = 0; algo < 2; algo++)
                test_update(&t, lens[li], algo, (float)(li & 1) * 2, (li + algo) & 1);
        printf("test_gpu_fp8: %d passed, %d failed\n", t.passed, t.failed);
    }
    gt_cuda_fp8_release(t.gbe);
    gt_cuda_backend_destroy(t.gbe);
    gt_cpu_backend_destroy(t.cbe);
    return t.failed ? 1 : 0;
}
