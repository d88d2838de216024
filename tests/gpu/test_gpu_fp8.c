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
 *  (d) the fused GeGLU + FP8 casts geglu_fwd_fp8 / geglu_bwd_fp8 against their contract, bit for
 *      bit: geglu_fwd / geglu_bwd then fp8_cast on the same device (bytes of h8/h8t, da8/da8t, the
 *      bf16 h / da, amax bits), with every output present, the bf16 output NULL (the model's call),
 *      one FP8 output, amax only, and da aliasing a; at Gemma-2B's N = 4096, F = 16384 (tiled
 *      kernels) and odd shapes (generic kernels, partial tiles, N or F not multiples of 16,
 *      misaligned pointers), both formats, both GELUs. Also against the "cpu" backend's fused op,
 *      which computes in float (not bf16) with libm's tanh/erf: not bit-comparable, so there the
 *      FP8 codes may differ by one code where h sits at an FP8 rounding boundary (counted; a few
 *      percent at most), h / da within bf16 rounding, amax within 2^-7;
 *      then one timing table of the fused ops against the composition at N = 4096, F = 16384;
 *  (e) the fused RMSNorm + FP8 cast rmsnorm_fwd_fp8 against its contract, bit for bit: rmsnorm_fwd
 *      then fp8_cast on the same device (bytes of rstd, y8, y8t, the bf16 y, amax bits), with the
 *      variants of (d); at N = 4096 tokens, C = 2048 and 3072 (Gemma-2B, 7B; tiled kernel) and odd
 *      shapes (partial tiles, N or C not multiples of 16, C not a multiple of 8, misaligned
 *      outputs, misaligned inputs), both formats; against the "cpu" backend's fused op as in (d); then one timing
 *      table against the composition at N = 4096, C = 2048 and 3072;
 *  --small: (a) without the sweeps, (b) without the model shapes, (c), (d) and (e) on small shapes:
 *      for compute-sanitizer;
 *  --geglu: (d) and its timing table only;  --rmsnorm: (e) and its timing table only;
 *  --bench: FP8 GEMM TFLOP/s against BF16 (the same TN shape through matmul_fwd, and the model's
 *      BF16 backward GEMMs through matmul_bwd), the cast kernels' GB/s, and the fused GeGLU and
 *      RMSNorm casts against the op + fp8_cast (CUDA events, 3 warm-ups, median of 20, L2 flushed
 *      before each run).
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

/* ---- (d) fused GeGLU + FP8 casts ---- */

typedef struct {
    int N, F; /* h is [N, F], a [N, 2F] */
    gt_dtype f;
    gt_gelu kind;
    int off;     /* element offset of every buffer: 1 misaligns all pointers (generic kernels) */
    float amax0; /* amax before the call */
} geglu_case;

/* Which outputs a fused call writes. The last writes all: its results are the ones compared with
 * the CPU backend. */
typedef struct {
    int act, q, qt;
    const char *name;
} geglu_variant;

static const geglu_variant GEGLU_VARIANTS[] = {
    {0, 1, 1, "act NULL"}, {0, 1, 0, "fp8 only"},       {0, 0, 1, "transpose only"},
    {0, 0, 0, "amax only"}, {1, 0, 0, "act + amax"},    {1, 1, 1, "all"},
};
#define GEGLU_NV (sizeof GEGLU_VARIANTS / sizeof GEGLU_VARIANTS[0])

/* n random bf16 (bits): uniform sign and mantissa, magnitudes 2^-6 .. 2^3, so h and da reach
 * ~2^6 and the scale fmax / 32 below saturates the largest and sends the smallest to subnormals. */
static uint16_t *rand_bf16(ctx *t, size_t n) {
    uint16_t *b = gt_malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        b[i] = gt_f32_to_bf16(uni(t, -1, 1) * ldexpf(1.0f, (int)(rnd(t) % 10) - 6));
    return b;
}

static float *bf16_to_floats(const uint16_t *b, size_t n) {
    float *f = gt_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = gt_bf16_to_f32(b[i]);
    return f;
}

/* A device buffer of `bytes` bytes filled with 0xa5, so that a byte an op fails to write shows. */
static uint8_t *dpoison(ctx *t, size_t bytes) {
    uint8_t *p = dalloc(t, bytes);
    CK(cudaMemsetAsync(p, 0xa5, bytes, gt_cuda_stream(t->gbe))); /* ordered after alloc's zeroing */
    return p;
}

/* Bytes that differ between two device buffers of n bytes. */
static size_t ddiff(ctx *t, const void *x, const void *y, size_t n) {
    uint8_t *hx = gt_malloc(n), *hy = gt_malloc(n);
    down(t, hx, x, n);
    down(t, hy, y, n);
    size_t d = count_diff(hx, hy, n);
    free(hx), free(hy);
    return d;
}

/* FP8 codes as ordered integers: neighbouring values differ by 1, +0 and -0 are both 0. */
static int code_ord(uint8_t c) { return c & 0x80 ? -(int)(c & 0x7f) : (int)(c & 0x7f); }

/* The GPU's FP8 codes (device, n) against the CPU backend's (host): returns how many differ, and
 * adds to *far those more than one code apart whose values (scaled) also differ by more than tol.
 * Why tol: for gate << 0, gelu(gate) = 0.5 x (1 + tanh(..)) and gelu' cancel catastrophically in
 * fp32 (1 + t with t ~ -1), so both sides carry an absolute error ~1e-7 |x|^k there, not a
 * relative one; E5M2's wide range resolves that noise into many codes near zero. */
static size_t codes_vs_cpu(ctx *t, const uint8_t *dg, const uint8_t *c, size_t n, gt_dtype f,
                           double tol, size_t *far) {
    uint8_t *g = gt_malloc(n);
    down(t, g, dg, n);
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        if (g[i] == c[i]) continue;
        d++;
        *far += abs(code_ord(g[i]) - code_ord(c[i])) > 1 &&
                fabs((double)dec(f, g[i]) - dec(f, c[i])) > tol;
    }
    free(g);
    return d;
}

/* The tolerance of codes_vs_cpu in scaled units: 2^-16 of the largest |value| (the CPU's, of n). */
static double noise_tol(const float *c, size_t n, float scale) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(c[i]));
    return ldexp((double)m * scale, -16);
}

/* ||gpu bf16 - cpu float|| / ||cpu float|| over n elements. */
static double bf16_vs_cpu(ctx *t, const uint16_t *dg, const float *c, size_t n) {
    uint16_t *g = gt_malloc(n * 2);
    down(t, g, dg, n * 2);
    float *gf = bf16_to_floats(g, n);
    double e = rel_err(gf, c, n);
    free(g), free(gf);
    return e;
}

/* One row for the comparison with the CPU backend; err = the fraction of FP8 codes that differ.
 * Passes when no code is "far" (codes_vs_cpu), the ACT output is within bf16 rounding (relative
 * norm 4e-3), amax within 2^-7, and (on 10^4 codes or more: a tiny shape may hit a boundary by
 * chance) fewer than 5% of the codes differ. Seen on an H100: ~1% (bf16 rounding moves a value
 * across an FP8 rounding boundary with probability ~2^-9 / 2^-3 per element). */
static void report_vs_cpu(ctx *t, const char *what, const char *shape, size_t ncodes,
                          size_t code_diff, size_t far, double act_err, float gamax, float camax) {
    double frac = (double)code_diff / (double)ncodes,
           amax_err = fabs((double)gamax - camax) / (camax > 0 ? camax : 1);
    int ok = far == 0 && act_err <= 4e-3 && amax_err <= 1.0 / 128;
    char note[160];
    snprintf(note, sizeof note, "codes differing; %zu far; act rel %.1e; amax rel %.1e", far,
             act_err, amax_err);
    report(t, what, shape, ok ? frac : INFINITY, ncodes >= 10000 ? 0.05 : 1.0, note);
}

static void geglu_names(const geglu_case *c, const char *op, const char *vs, char *what, size_t wn,
                        char *shape, size_t sn) {
    snprintf(what, wn, "%s %s %s %s", op, c->kind == GT_GELU_TANH ? "tanh" : "erf", fname(c->f), vs);
    snprintf(shape, sn, "%dx%d%s%s", c->N, c->F, c->off ? " misaligned" : "",
             c->amax0 > 0 ? " amax0" : "");
}

static void test_geglu_fwd_fp8(ctx *t, const geglu_case *c) {
    const int N = c->N, F = c->F, off = c->off;
    const size_t n = (size_t)N * F;
    uint16_t *ab = rand_bf16(t, 2 * n);
    float scale = fmax_of(c->f) / 32;
    uint16_t *a = dalloc(t, (2 * n + off) * 2);
    up(t, a + off, ab, 2 * n * 2);
    float *dscale = dscalar(t, scale), *damax = dscalar(t, c->amax0), *dfamax = dscalar(t, 0);
    /* the composition */
    uint16_t *h = (uint16_t *)dpoison(t, (n + off) * 2);
    uint8_t *q = dpoison(t, n + off), *qt = dpoison(t, n + off);
    t->gpu->geglu_fwd(t->gbe, h + off, a + off, c->kind, N, F);
    t->gpu->fp8_cast(t->gbe, q + off, qt + off, h + off, N, F, c->f, dscale, damax);
    float want = getf(t, damax);
    /* the fused op, every variant; poisoned outputs */
    uint16_t *fh = (uint16_t *)dalloc(t, (n + off) * 2);
    uint8_t *fq = dalloc(t, n + off), *fqt = dalloc(t, n + off);
    size_t bad = 0;
    for (size_t v = 0; v < GEGLU_NV; v++) {
        const geglu_variant *w = &GEGLU_VARIANTS[v];
        CK(cudaMemsetAsync(fh, 0xa5, (n + off) * 2, gt_cuda_stream(t->gbe)));
        CK(cudaMemsetAsync(fq, 0xa5, n + off, gt_cuda_stream(t->gbe)));
        CK(cudaMemsetAsync(fqt, 0xa5, n + off, gt_cuda_stream(t->gbe)));
        up(t, dfamax, &c->amax0, 4);
        t->gpu->geglu_fwd_fp8(t->gbe, w->act ? fh + off : NULL, w->q ? fq + off : NULL,
                              w->qt ? fqt + off : NULL, a + off, c->kind, N, F, c->f, dscale,
                              dfamax);
        size_t b = bitsf(getf(t, dfamax)) != bitsf(want);
        if (w->act) b += ddiff(t, fh + off, h + off, n * 2);
        if (w->q) b += ddiff(t, fq + off, q + off, n);
        if (w->qt) b += ddiff(t, fqt + off, qt + off, n);
        if (b) printf("  geglu_fwd_fp8 %s: %zu bytes + amax differ\n", w->name, b);
        bad += b;
    }
    char what[80], shape[48];
    geglu_names(c, "geglu_fwd_fp8", "vs comp.", what, sizeof what, shape, sizeof shape);
    report(t, what, shape, (double)bad, 0, "bytes + amax differing from geglu_fwd + fp8_cast");
    /* the CPU backend's fused op, in float */
    float *af = bf16_to_floats(ab, 2 * n), *ch = gt_malloc(n * sizeof(float)), camax = c->amax0;
    uint8_t *cq = gt_malloc(n), *cqt = gt_malloc(n);
    t->cpu->geglu_fwd_fp8(t->cbe, ch, cq, cqt, af, c->kind, N, F, c->f, &scale, &camax);
    size_t far = 0;
    double tol = noise_tol(ch, n, scale);
    size_t cd = codes_vs_cpu(t, fq + off, cq, n, c->f, tol, &far) +
                codes_vs_cpu(t, fqt + off, cqt, n, c->f, tol, &far);
    geglu_names(c, "geglu_fwd_fp8", "vs cpu", what, sizeof what, shape, sizeof shape);
    report_vs_cpu(t, what, shape, 2 * n, cd, far, bf16_vs_cpu(t, fh + off, ch, n), getf(t, dfamax),
                  camax);
    dfree(t, a), dfree(t, dscale), dfree(t, damax), dfree(t, dfamax), dfree(t, h), dfree(t, q),
        dfree(t, qt), dfree(t, fh), dfree(t, fq), dfree(t, fqt);
    free(ab), free(af), free(ch), free(cq), free(cqt);
}

static void test_geglu_bwd_fp8(ctx *t, const geglu_case *c) {
    const int N = c->N, F = c->F, off = c->off;
    const size_t n = (size_t)N * F, n2 = 2 * n; /* da is [N, 2F] */
    uint16_t *ab = rand_bf16(t, n2), *dhb = rand_bf16(t, n);
    float scale = fmax_of(c->f) / 32;
    uint16_t *a = dalloc(t, (n2 + off) * 2), *dh = dalloc(t, (n + off) * 2);
    up(t, a + off, ab, n2 * 2);
    up(t, dh + off, dhb, n * 2);
    float *dscale = dscalar(t, scale), *damax = dscalar(t, c->amax0), *dfamax = dscalar(t, 0);
    /* the composition */
    uint16_t *da = (uint16_t *)dpoison(t, (n2 + off) * 2);
    uint8_t *q = dpoison(t, n2 + off), *qt = dpoison(t, n2 + off);
    t->gpu->geglu_bwd(t->gbe, da + off, dh + off, a + off, c->kind, N, F);
    t->gpu->fp8_cast(t->gbe, q + off, qt + off, da + off, N, 2 * F, c->f, dscale, damax);
    float want = getf(t, damax);
    /* the fused op, every variant, then da aliasing a (a copy of a, overwritten) */
    uint16_t *fda = (uint16_t *)dalloc(t, (n2 + off) * 2);
    uint8_t *fq = dalloc(t, n2 + off), *fqt = dalloc(t, n2 + off);
    size_t bad = 0;
    for (size_t v = 0; v <= GEGLU_NV; v++) {
        const int alias = v == GEGLU_NV;
        const geglu_variant all = {1, 1, 1, "da aliasing a"}, *w = alias ? &all : &GEGLU_VARIANTS[v];
        if (alias) t->gpu->copy(t->gbe, fda, a, (n2 + off) * 2);
        else CK(cudaMemsetAsync(fda, 0xa5, (n2 + off) * 2, gt_cuda_stream(t->gbe)));
        CK(cudaMemsetAsync(fq, 0xa5, n2 + off, gt_cuda_stream(t->gbe)));
        CK(cudaMemsetAsync(fqt, 0xa5, n2 + off, gt_cuda_stream(t->gbe)));
        up(t, dfamax, &c->amax0, 4);
        t->gpu->geglu_bwd_fp8(t->gbe, w->act ? fda + off : NULL, w->q ? fq + off : NULL,
                              w->qt ? fqt + off : NULL, dh + off, alias ? fda + off : a + off,
                              c->kind, N, F, c->f, dscale, dfamax);
        size_t b = bitsf(getf(t, dfamax)) != bitsf(want);
        if (w->act) b += ddiff(t, fda + off, da + off, n2 * 2);
        if (w->q) b += ddiff(t, fq + off, q + off, n2);
        if (w->qt) b += ddiff(t, fqt + off, qt + off, n2);
        if (b) printf("  geglu_bwd_fp8 %s: %zu bytes + amax differ\n", w->name, b);
        bad += b;
        if (v == GEGLU_NV - 1) { /* all outputs: against the CPU backend */
            float *af = bf16_to_floats(ab, n2), *dhf = bf16_to_floats(dhb, n),
                  *cda = gt_malloc(n2 * sizeof(float)), camax = c->amax0;
            uint8_t *cq = gt_malloc(n2), *cqt = gt_malloc(n2);
            t->cpu->geglu_bwd_fp8(t->cbe, cda, cq, cqt, dhf, af, c->kind, N, F, c->f, &scale,
                                  &camax);
            size_t far = 0;
            double tol = noise_tol(cda, n2, scale);
            size_t cd = codes_vs_cpu(t, fq + off, cq, n2, c->f, tol, &far) +
                        codes_vs_cpu(t, fqt + off, cqt, n2, c->f, tol, &far);
            char what[80], shape[48];
            geglu_names(c, "geglu_bwd_fp8", "vs cpu", what, sizeof what, shape, sizeof shape);
            report_vs_cpu(t, what, shape, 2 * n2, cd, far, bf16_vs_cpu(t, fda + off, cda, n2),
                          getf(t, dfamax), camax);
            free(af), free(dhf), free(cda), free(cq), free(cqt);
        }
    }
    char what[80], shape[48];
    geglu_names(c, "geglu_bwd_fp8", "vs comp.", what, sizeof what, shape, sizeof shape);
    report(t, what, shape, (double)bad, 0, "bytes + amax differing from geglu_bwd + fp8_cast");
    dfree(t, a), dfree(t, dh), dfree(t, dscale), dfree(t, damax), dfree(t, dfamax), dfree(t, da),
        dfree(t, q), dfree(t, qt), dfree(t, fda), dfree(t, fq), dfree(t, fqt);
    free(ab), free(dhb);
}

/* ---- (e) fused RMSNorm + FP8 cast ---- */

typedef struct {
    int N, C; /* x and y are [N, C] */
    gt_dtype f;
    int off;     /* element offset of the outputs: 1 misaligns y, y8, y8t (generic kernel) */
    int xoff;    /* the same for x and w (the row kernel's scalar path too) */
    float amax0; /* amax before the call */
} rms_case;

#define RMS_EPS 1e-6f

/* rmsnorm_fwd_fp8 against rmsnorm_fwd + fp8_cast on the same device, bit for bit (rstd, y, y8,
 * y8t, amax), for every variant of GEGLU_VARIANTS (act = y); then the last ("all") against the
 * CPU backend's fused op, which computes in float with 1 / sqrtf (the GPU: rsqrtf) and casts the
 * unrounded y: FP8 codes may differ by one where y sits at a rounding boundary (report_vs_cpu),
 * y within bf16 rounding, rstd within 4e-3 too (in fact ~1e-7). x as rand_bf16 (magnitudes
 * 2^-6 .. 2^3), gamma uniform in (-1, 1.5); the scale fmax / 8 saturates the largest |y|. */
static void test_rmsnorm_fwd_fp8(ctx *t, const rms_case *c) {
    const int N = c->N, C = c->C, off = c->off, xoff = c->xoff;
    const size_t n = (size_t)N * C;
    uint16_t *xb = rand_bf16(t, n), *wb = gt_malloc((size_t)C * 2);
    for (int i = 0; i < C; i++) wb[i] = gt_f32_to_bf16(uni(t, -1, 1.5f));
    float scale = fmax_of(c->f) / 8;
    uint16_t *x = dalloc(t, (n + xoff) * 2), *w = dalloc(t, ((size_t)C + xoff) * 2);
    up(t, x + xoff, xb, n * 2);
    up(t, w + xoff, wb, (size_t)C * 2);
    float *dscale = dscalar(t, scale), *damax = dscalar(t, c->amax0), *dfamax = dscalar(t, 0);
    /* the composition */
    uint16_t *y = (uint16_t *)dpoison(t, (n + off) * 2);
    float *rstd = (float *)dpoison(t, ((size_t)N + off) * 4);
    uint8_t *q = dpoison(t, n + off), *qt = dpoison(t, n + off);
    t->gpu->rmsnorm_fwd(t->gbe, y + off, rstd + off, x + xoff, w + xoff, RMS_EPS, N, C);
    t->gpu->fp8_cast(t->gbe, q + off, qt + off, y + off, N, C, c->f, dscale, damax);
    float want = getf(t, damax);
    /* the fused op, every variant; poisoned outputs */
    uint16_t *fy = (uint16_t *)dalloc(t, (n + off) * 2);
    float *frstd = dalloc(t, ((size_t)N + off) * 4);
    uint8_t *fq = dalloc(t, n + off), *fqt = dalloc(t, n + off);
    cudaStream_t s = gt_cuda_stream(t->gbe);
    size_t bad = 0;
    for (size_t v = 0; v < GEGLU_NV; v++) {
        const geglu_variant *k = &GEGLU_VARIANTS[v];
        CK(cudaMemsetAsync(fy, 0xa5, (n + off) * 2, s));
        CK(cudaMemsetAsync(frstd, 0xa5, ((size_t)N + off) * 4, s));
        CK(cudaMemsetAsync(fq, 0xa5, n + off, s));
        CK(cudaMemsetAsync(fqt, 0xa5, n + off, s));
        up(t, dfamax, &c->amax0, 4);
        t->gpu->rmsnorm_fwd_fp8(t->gbe, k->act ? fy + off : NULL, k->q ? fq + off : NULL,
                                k->qt ? fqt + off : NULL, frstd + off, x + xoff, w + xoff,
                                RMS_EPS, N, C, c->f, dscale, dfamax);
        size_t b = bitsf(getf(t, dfamax)) != bitsf(want);
        b += ddiff(t, frstd + off, rstd + off, (size_t)N * 4);
        if (k->act) b += ddiff(t, fy + off, y + off, n * 2);
        if (k->q) b += ddiff(t, fq + off, q + off, n);
        if (k->qt) b += ddiff(t, fqt + off, qt + off, n);
        if (b) printf("  rmsnorm_fwd_fp8 %s: %zu bytes + amax differ\n", k->name, b);
        bad += b;
    }
    char what[80], shape[48];
    snprintf(shape, sizeof shape, "%dx%d%s%s", N, C,
             xoff ? " misaligned" : off ? " y misaligned" : "", c->amax0 > 0 ? " amax0" : "");
    snprintf(what, sizeof what, "rmsnorm_fwd_fp8 %s vs comp.", fname(c->f));
    report(t, what, shape, (double)bad, 0, "bytes + amax differing from rmsnorm_fwd + fp8_cast");
    /* the CPU backend's fused op, in float, against the last variant (every output) */
    float *xf = bf16_to_floats(xb, n), *wf = bf16_to_floats(wb, (size_t)C);
    float *cy = gt_malloc(n * sizeof(float)), *crstd = gt_malloc((size_t)N * sizeof(float));
    float *grstd = gt_malloc((size_t)N * sizeof(float)), camax = c->amax0;
    uint8_t *cq = gt_malloc(n), *cqt = gt_malloc(n);
    t->cpu->rmsnorm_fwd_fp8(t->cbe, cy, cq, cqt, crstd, xf, wf, RMS_EPS, N, C, c->f, &scale,
                            &camax);
    size_t far = 0;
    double tol = noise_tol(cy, n, scale);
    size_t cd = codes_vs_cpu(t, fq + off, cq, n, c->f, tol, &far) +
                codes_vs_cpu(t, fqt + off, cqt, n, c->f, tol, &far);
    down(t, grstd, frstd + off, (size_t)N * 4);
    double act_err = fmax(bf16_vs_cpu(t, fy + off, cy, n), rel_err(grstd, crstd, (size_t)N));
    snprintf(what, sizeof what, "rmsnorm_fwd_fp8 %s vs cpu", fname(c->f));
    report_vs_cpu(t, what, shape, 2 * n, cd, far, act_err, getf(t, dfamax), camax);
    dfree(t, x), dfree(t, w), dfree(t, dscale), dfree(t, damax), dfree(t, dfamax), dfree(t, y),
        dfree(t, rstd), dfree(t, q), dfree(t, qt), dfree(t, fy), dfree(t, frstd), dfree(t, fq),
        dfree(t, fqt);
    free(xb), free(wb), free(xf), free(wf), free(cy), free(crstd), free(grstd), free(cq), free(cqt);
}

/* ---- (f) benchmark ---- */

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
    int kind; /* 0 FP8 GEMM, 1 BF16 matmul_fwd, 2 BF16 matmul_bwd, 3 fp8_cast, 4 copy,
                 5 geglu_fwd_fp8, 6 geglu_fwd + fp8_cast, 7 geglu_bwd_fp8, 8 geglu_bwd + fp8_cast,
                 9 rmsnorm_fwd_fp8, 10 rmsnorm_fwd + fp8_cast */
    void *d, *a, *b, *c, *e, *r;
    float *sa, *sb;
    int M, N, K, out_grad, fast;
    gt_dtype af, bf;
    gt_gelu gelu;
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
    /* GeGLU, N = M rows, F = N: a = a, b = h or da (ACT), d = h8 / da8, c = h8t / da8t, e = dh */
    case 5:
        t->gpu->geglu_fwd_fp8(t->gbe, j->b, j->d, j->c, j->a, j->gelu, j->M, j->N, j->af, j->sa,
                              j->sb);
        break;
    case 6:
        t->gpu->geglu_fwd(t->gbe, j->b, j->a, j->gelu, j->M, j->N);
        t->gpu->fp8_cast(t->gbe, j->d, j->c, j->b, j->M, j->N, j->af, j->sa, j->sb);
        break;
    case 7:
        t->gpu->geglu_bwd_fp8(t->gbe, j->b, j->d, j->c, j->e, j->a, j->gelu, j->M, j->N, j->af,
                              j->sa, j->sb);
        break;
    case 8:
        t->gpu->geglu_bwd(t->gbe, j->b, j->e, j->a, j->gelu, j->M, j->N);
        t->gpu->fp8_cast(t->gbe, j->d, j->c, j->b, j->M, 2 * j->N, j->af, j->sa, j->sb);
        break;
    /* RMSNorm, N = M rows, C = N: a = x, e = w, r = rstd, b = y (ACT), d = y8, c = y8t */
    case 9:
        t->gpu->rmsnorm_fwd_fp8(t->gbe, j->b, j->d, j->c, j->r, j->a, j->e, RMS_EPS, j->M, j->N,
                                j->af, j->sa, j->sb);
        break;
    case 10:
        t->gpu->rmsnorm_fwd(t->gbe, j->b, j->r, j->a, j->e, RMS_EPS, j->M, j->N);
        t->gpu->fp8_cast(t->gbe, j->d, j->c, j->b, j->M, j->N, j->af, j->sa, j->sb);
        break;
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

static void bench_open(ctx *t, bench *b) {
    b->t = t;
    b->flush = dalloc(t, FLUSH_BYTES);
    uint8_t *p8 = gt_malloc(POOL_BYTES);
    uint16_t *p16 = gt_malloc(POOL_BYTES);
    for (size_t i = 0; i < POOL_BYTES; i++)
        p8[i] = (uint8_t)(rnd(t) & 0xef); /* finite in both formats */
    for (size_t i = 0; i < POOL_BYTES / 2; i++) p16[i] = gt_f32_to_bf16(uni(t, -1, 1));
    b->pool8 = dalloc(t, POOL_BYTES), b->pool16 = dalloc(t, POOL_BYTES);
    up(t, b->pool8, p8, POOL_BYTES), up(t, b->pool16, p16, POOL_BYTES);
    free(p8), free(p16);
}

static void bench_close(bench *b) {
    dfree(b->t, b->flush), dfree(b->t, b->pool8), dfree(b->t, b->pool16);
}

/* The fused GeGLU casts against geglu + fp8_cast at Gemma-2B's N = 4096, F = 16384 (the model's
 * formats: E4M3 forward, E5M2 backward). GB/s counts the bytes each version must move: per element
 * of h, fused forward 4 read + 2 written (h8, h8t) + 2 with h; composition 4 + 2 (geglu) + 2 + 2
 * (cast). Fused backward 6 read + 4 written (+ 4 with da); composition 6 + 4 + 4 + 4. */
static void bench_geglu(bench *b) {
    ctx *t = b->t;
    const int N = 4096, F = 16384;
    const size_t n = (size_t)N * F;
    char dev[128];
    gt_cuda_device_name(t->gbe, dev, sizeof dev);
    printf("\n=== fused GeGLU + FP8 cast on %s, N=%d F=%d (median of %d after %d warm-ups, L2 "
           "flushed)\n",
           dev, N, F, REPS, WARMUP);
    printf("%-46s %9s %9s %8s\n", "", "ms", "GB/s", "speedup");
    job j = {0};
    j.M = N, j.N = F;
    j.a = bbuf(b, 2 * n * 2, 1), j.e = bbuf(b, n * 2, 1), j.b = dalloc(t, 2 * n * 2);
    j.d = dalloc(t, 2 * n), j.c = dalloc(t, 2 * n);
    j.sa = dscalar(t, 100.0f), j.sb = dscalar(t, 0.0f);
    for (int bwd = 0; bwd < 2; bwd++)
        for (int k = 0; k < 2; k++) {
            j.gelu = k ? GT_GELU_ERF : GT_GELU_TANH, j.af = bwd ? GT_E5M2 : GT_E4M3;
            const char *op = bwd ? "geglu_bwd" : "geglu_fwd", *kn = k ? "erf" : "tanh";
            const double rd = bwd ? 6 : 4, wr = bwd ? 4 : 2, act = bwd ? 4 : 2;
            j.kind = bwd ? 8 : 6;
            double tc = time_job(b, &j), bc = (double)n * (rd + wr + 2 * act);
            void *keep = j.b;
            j.kind = bwd ? 7 : 5;
            double tf1 = time_job(b, &j), b1 = (double)n * (rd + wr + act); /* with h / da */
            j.b = NULL;
            double tf0 = time_job(b, &j), b0 = (double)n * (rd + wr); /* the model's call */
            j.b = keep;
            char line[64];
            snprintf(line, sizeof line, "%s + fp8_cast %s %s", op, kn, fname(j.af));
            printf("%-46s %9.3f %9.1f %8s\n", line, tc, bc / tc * 1e-6, "1.00x");
            snprintf(line, sizeof line, "%s_fp8 %s %s (%s + fp8 + fp8t)", op, kn, fname(j.af),
                     bwd ? "da" : "h");
            printf("%-46s %9.3f %9.1f %7.2fx\n", line, tf1, b1 / tf1 * 1e-6, tc / tf1);
            snprintf(line, sizeof line, "%s_fp8 %s %s (fp8 + fp8t)", op, kn, fname(j.af));
            printf("%-46s %9.3f %9.1f %7.2fx\n", line, tf0, b0 / tf0 * 1e-6, tc / tf0);
        }
    dfree(t, j.a), dfree(t, j.e), dfree(t, j.b), dfree(t, j.d), dfree(t, j.c), dfree(t, j.sa),
        dfree(t, j.sb);
}

/* The fused RMSNorm cast against rmsnorm_fwd + fp8_cast at N = 4096 tokens, C = 2048 (Gemma-2B)
 * and 3072 (Gemma-7B), E4M3 (the QKV / fc1 inputs). GB/s counts the bytes each version moves in
 * DRAM terms, per element of y: fused 2 (pass 1 reads x) + 2 (pass 2 reads x again) + 2 written
 * (y8, y8t) + 2 with y; composition 2 + 2 (rmsnorm_fwd: x, y) + 2 + 2 (fp8_cast: y, y8 + y8t). */
static void bench_rmsnorm(bench *b) {
    ctx *t = b->t;
    const int N = 4096, Cs[2] = {2048, 3072};
    char dev[128];
    gt_cuda_device_name(t->gbe, dev, sizeof dev);
    printf("\n=== fused RMSNorm + FP8 cast on %s, N=%d (median of %d after %d warm-ups, L2 "
           "flushed)\n",
           dev, N, REPS, WARMUP);
    printf("%-46s %9s %9s %8s\n", "", "ms", "GB/s", "speedup");
    for (int i = 0; i < 2; i++) {
        const int C = Cs[i];
        const size_t n = (size_t)N * C;
        job j = {0};
        j.M = N, j.N = C, j.af = GT_E4M3;
        j.a = bbuf(b, n * 2, 1), j.e = bbuf(b, (size_t)C * 2, 1), j.r = dalloc(t, (size_t)N * 4);
        j.b = dalloc(t, n * 2), j.d = dalloc(t, n), j.c = dalloc(t, n);
        j.sa = dscalar(t, 100.0f), j.sb = dscalar(t, 0.0f);
        j.kind = 10;
        double tc = time_job(b, &j), bc = (double)n * 8;
        void *keep = j.b;
        j.kind = 9;
        double tf1 = time_job(b, &j), b1 = (double)n * 8; /* with y */
        j.b = NULL;
        double tf0 = time_job(b, &j), b0 = (double)n * 6; /* the model's call */
        j.b = keep;
        char line[64];
        snprintf(line, sizeof line, "rmsnorm_fwd + fp8_cast C=%d", C);
        printf("%-46s %9.3f %9.1f %8s\n", line, tc, bc / tc * 1e-6, "1.00x");
        snprintf(line, sizeof line, "rmsnorm_fwd_fp8 C=%d (y + fp8 + fp8t)", C);
        printf("%-46s %9.3f %9.1f %7.2fx\n", line, tf1, b1 / tf1 * 1e-6, tc / tf1);
        snprintf(line, sizeof line, "rmsnorm_fwd_fp8 C=%d (fp8 + fp8t)", C);
        printf("%-46s %9.3f %9.1f %7.2fx\n", line, tf0, b0 / tf0 * 1e-6, tc / tf0);
        dfree(t, j.a), dfree(t, j.e), dfree(t, j.r), dfree(t, j.b), dfree(t, j.d), dfree(t, j.c),
            dfree(t, j.sa), dfree(t, j.sb);
    }
}

static void run_bench(ctx *t) {
    bench b;
    bench_open(t, &b);
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
    dfree(t, c.a), dfree(t, c.d);
    bench_geglu(&b);
    bench_rmsnorm(&b);
    bench_close(&b);
}

int main(int argc, char **argv) {
    int bench_only = argc > 1 && strcmp(argv[1], "--bench") == 0;
    int small = argc > 1 && strcmp(argv[1], "--small") == 0; /* compute-sanitizer: small shapes */
    int geglu_only = argc > 1 && strcmp(argv[1], "--geglu") == 0;
    int rms_only = argc > 1 && strcmp(argv[1], "--rmsnorm") == 0;
    int fused_only = geglu_only || rms_only; /* one fused-op section, without (a) - (c) */
    GT_ASSERT(gt_cuda_device_count() > 0, "test_gpu_fp8 needs a CUDA device");
    ctx t = {gt_cpu_ops(), gt_cuda_ops(), gt_cpu_backend_create(), gt_cuda_backend_create(0), 12345, 0, 0};
    GT_ASSERT(t.gpu->fp8_cast && t.gpu->matmul_fp8 && t.gpu->fp8_update && t.gpu->geglu_fwd_fp8 &&
                  t.gpu->geglu_bwd_fp8 && t.gpu->rmsnorm_fwd_fp8,
              "the cuda backend has no FP8 ops");
    if (bench_only) {
        run_bench(&t);
    } else {
        printf("%-34s %-24s %11s %9s  %-4s %s\n", "test", "shape", "err/diffs", "tol", "", "note");
        if (!small && !fused_only) {
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
        for (size_t i = 0; i < sizeof C / sizeof C[0] && !fused_only; i++)
            if (!small || (size_t)C[i].rows * C[i].cols <= 65536) test_cast_case(&t, &C[i]);
        for (int i = 0; i < MODEL_TESTED && !small && !fused_only; i++) test_gemm(&t, &MODEL[i], 8);
        const gemm_case O[] = {
            {"odd", 1, 16, 16, E4, E4, 0, 0, 0},      {"odd", 33, 48, 80, E4, E4, 0, 0, 0},
            {"odd", 272, 144, 208, E5, E4, 0, 0, 0},  {"odd", 100, 400, 1008, E4, E5, 0, 0, 0},
            {"odd", 17, 4112, 48, E5, E4, 1, 0, 0},   {"odd", 240, 96, 1040, E4, E5, 1, 0, 0},
        };
        for (size_t i = 0; i < sizeof O / sizeof O[0] && !fused_only; i++) test_gemm(&t, &O[i], 0);
        const int lens[] = {1, 5, 300, 1024};
        for (int li = 0; li < 4 && !fused_only; li++)
            for (int algo = 0; algo < 2; algo++)
                test_update(&t, lens[li], algo, (float)(li & 1) * 2, (li + algo) & 1);
        /* N, F of h; the first is Gemma-2B's (tiled); then partial tiles (tiled), F or N not a
         * multiple of 16 and misaligned pointers (generic) */
        const int GS[][3] = {{4096, 16384, 0}, {144, 272, 0}, {16, 16, 0}, {272, 144, 0},
                             {17, 40, 0},      {40, 48, 0},   {33, 7, 0},  {1, 1, 0},
                             {64, 64, 1}};
        for (size_t i = 0; i < sizeof GS / sizeof GS[0] && !rms_only; i++)
            for (int k = 0; k < 2; k++)
                for (int fi = 0; fi < 2; fi++) {
                    if (small && (size_t)GS[i][0] * GS[i][1] > 65536) continue;
                    geglu_case g = {GS[i][0], GS[i][1], fi ? E5 : E4,
                                    k ? GT_GELU_ERF : GT_GELU_TANH, GS[i][2],
                                    (i + k + fi) % 4 == 3 ? 1e6f : 0.0f};
                    test_geglu_fwd_fp8(&t, &g);
                    test_geglu_bwd_fp8(&t, &g);
                }
        /* N, C of y, output and input offsets: Gemma-2B's and Gemma-7B's hidden sizes at 4096
         * tokens (tiled); partial tiles (tiled); N or C not a multiple of 16 (generic; C = 40 and
         * 2056 with the row kernel's 16-byte path, C = 7 without); misaligned outputs (generic,
         * the row kernel's 16-byte sum with its scalar output loop); everything misaligned
         * (generic, scalar row kernel) */
        const int RS[][4] = {{4096, 2048, 0, 0}, {4096, 3072, 0, 0}, {144, 272, 0, 0},
                             {16, 16, 0, 0},     {272, 144, 0, 0},   {17, 40, 0, 0},
                             {40, 48, 0, 0},     {48, 40, 0, 0},     {64, 2056, 0, 0},
                             {33, 7, 0, 0},      {1, 1, 0, 0},       {64, 64, 1, 0},
                             {64, 64, 1, 1}};
        for (size_t i = 0; i < sizeof RS / sizeof RS[0] && !geglu_only; i++)
            for (int fi = 0; fi < 2; fi++) {
                if (small && (size_t)RS[i][0] * RS[i][1] > 65536) continue;
                rms_case r = {RS[i][0], RS[i][1], fi ? E5 : E4, RS[i][2], RS[i][3],
                              (i + fi) % 4 == 3 ? 1e6f : 0.0f};
                test_rmsnorm_fwd_fp8(&t, &r);
            }
        printf("test_gpu_fp8: %d passed, %d failed\n", t.passed, t.failed);
        if (!small) { /* the timing lines (not pass/fail) */
            bench b;
            bench_open(&t, &b);
            if (!rms_only) bench_geglu(&b);
            if (!geglu_only) bench_rmsnorm(&b);
            bench_close(&b);
        }
    }
    gt_cuda_fp8_release(t.gbe);
    gt_cuda_backend_destroy(t.gbe);
    gt_cpu_backend_destroy(t.cbe);
    return t.failed ? 1 : 0;
}
