/* bench_gemm_gpu: per GEMM, how close matmul_fp8's cached plan (the algorithm its autotuning
 * picked; the heuristic's first with GT_FP8_AUTOTUNE=0) comes to the fastest algorithm cuBLASLt's
 * heuristic offers for the same descriptor, and what FP8 buys over the BF16 GEMM the model would
 * run instead.
 *
 * Shapes: N = 4096 tokens; Gemma-2B (C 2048, q/kv width Q = (8 + 2*1) * 256 = 2560, attention out
 * HD = 8 * 256 = 2048, F 16384, fc1 out 2F, V 256000) and one rank of Gemma-7B at tp = 2
 * (model/layout.c: Hq = 16/2 = 8, Hkv = 16/2 = 8, Q = (8 + 2*8) * 256 = 6144, HD 2048, C 3072,
 * F 24576/2 = 12288, fc1 out 24576, V 256000/2 = 128000). Per GEMM of weight W[OC, IC], the three
 * calls model/fp8.c makes:
 *   fprop  y[N,OC]   = x8[N,IC] W8[OC,IC]^T     E4M3 x E4M3, bf16 out, fast accumulation
 *   dgrad  dx[N,IC]  = dy8[N,OC] W8t[IC,OC]^T   E5M2 x E4M3, bf16 out
 *   wgrad  dW[OC,IC] += dy8t[OC,N] x8t[IC,N]^T  E5M2 x E4M3, fp32 out accumulated (beta 1)
 * and the BF16 GEMM of the same role (matmul_fwd; matmul_bwd's dx; matmul_bwd's dW, fp32 +=).
 *
 * Timing (as tests/gpu/ops_gpu_bench.c): CUDA events on the backend's stream around each run, a
 * 256 MiB memset before each run to flush L2, median of --reps (20) after warm-ups. "ours" is the
 * op itself (gt_ops.matmul_fp8 through its plan cache); the candidates are every algorithm
 * cublasLtMatmulAlgoGetHeuristic returns (up to --algos, default 16) for the descriptor the plan
 * cache builds (kernels/cuda/lt_bench.h); a candidate cuBLASLt refuses to run is skipped and
 * counted. All of one row (the op, the candidates, the BF16 plan) are timed in interleaved rounds
 * (time_jobs), so throttling does not favour whichever runs first.
 *
 * Unless --no-check, every candidate's FP8 output is compared bit for bit with the plan's (first
 * 128 MiB of D): whether swapping algorithms (autotuning, kernels/cuda/fp8_gemm.cu) changes
 * results.
 *
 *   bench_gemm_gpu [--algos N] [--reps N] [--model 2b|7b] [--gemm NAME] [--bf16-best]
 *                  [--no-check] [-v]
 * --bf16-best also sweeps the BF16 GEMM's candidates; -v prints every candidate. Random operands
 * (finite FP8 codes, bf16 in [-1, 1)). Not a test: always exits 0 unless something dies. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_stream.h"
#include "kernels/cuda/lt_bench.h"

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) GT_DIE("%s: %s", #call, cudaGetErrorString(e_));                    \
    } while (0)

#define NTOK 4096
#define WARMUP 3
#define FLUSH_BYTES ((size_t)256 << 20) /* written before each timed run: evicts L2 (50 MB) */
#define POOL_BYTES ((size_t)16 << 20)
#define BEHIND 0.95 /* a plan slower than this fraction of the best gets a note */
#define CHECK_BYTES ((size_t)128 << 20) /* of each D compared bit for bit (--check) */

typedef struct {
    const char *model;
    int C, Q, HD, F, V;
} model_shape;

static const model_shape MODELS[] = {
    {"2B", 2048, 2560, 2048, 16384, 256000},
    {"7B/tp2", 3072, 6144, 2048, 12288, 128000},
};

typedef struct {
    const gt_ops *o;
    gt_backend *be;
    void *flush, *pool8, *pool16;
    int reps, algos, verbose, bf16_best, check;
    uint64_t rng;
} bench;

/* ---- buffers ---- */

static uint64_t rnd(bench *b) { /* splitmix64 */
    uint64_t z = (b->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Device buffer of `bytes` filled from a random pool (device-to-device copies). */
static void *bbuf(bench *b, size_t bytes, int bf16) {
    char *p = b->o->alloc(b->be, bytes);
    for (size_t off = 0; off < bytes; off += POOL_BYTES)
        b->o->copy(b->be, p + off, bf16 ? b->pool16 : b->pool8,
                   bytes - off < POOL_BYTES ? bytes - off : POOL_BYTES);
    return p;
}

/* ---- timing ---- */

typedef struct {
    bench *b;
    gt_lt_bench *lb; /* NULL: the op itself */
    int cand;
    void *d;
    const void *a, *bb;
    const float *sa, *sb;
    int M, N, K, out_grad, fast;
    gt_dtype af, bf;
} job;

/* One run enqueued; returns the cuBLAS status (the op itself dies on failure: 0). */
static int run_job(const job *j) {
    if (j->lb) return gt_lt_bench_run(j->lb, j->cand);
    bench *b = j->b;
    b->o->matmul_fp8(b->be, j->d, j->out_grad, j->a, j->af, j->sa, j->bb, j->bf, j->sb, j->M, j->N,
                     j->K, j->fast);
    return 0;
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, c = *(const float *)y;
    return (a > c) - (a < c);
}

/* Times n jobs together: each runs once first (a refused one gets ms[i] = -1 and its cuBLAS status
 * in status[i], and is left out), then WARMUP - 1 warm-up rounds and reps timed rounds; a round
 * runs every job once, each after an L2 flush and between two events, in an order rotated from
 * round to round, so clock and temperature drift hit every job alike (timed one after another
 * instead, the same 3-4 ms lm_head algorithm read up to 17% apart on an H100, first vs later in the
 * sweep). ms[i]: the median of job i's timed runs. */
static void time_jobs(bench *b, const job *jobs, int n, double *ms, int *status) {
    cudaStream_t s = gt_cuda_stream(b->be);
    for (int i = 0; i < n; i++) {
        status[i] = run_job(&jobs[i]);
        ms[i] = status[i] ? -1 : 0;
    }
    CK(cudaStreamSynchronize(s)); /* a launch that failed after all surfaces here */
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float *t = gt_malloc((size_t)n * b->reps * sizeof(float));
    for (int r = 0; r < WARMUP - 1 + b->reps; r++)
        for (int k = 0; k < n; k++) {
            int i = (k + r) % n;
            if (ms[i] < 0) continue;
            CK(cudaMemsetAsync(b->flush, r & 0xff, FLUSH_BYTES, s));
            CK(cudaEventRecord(e0, s));
            int st = run_job(&jobs[i]);
            GT_ASSERT(st == 0, "a GEMM that ran once then returned cuBLAS status %d", st);
            CK(cudaEventRecord(e1, s));
            CK(cudaEventSynchronize(e1));
            if (r >= WARMUP - 1)
                CK(cudaEventElapsedTime(&t[(size_t)i * b->reps + r - (WARMUP - 1)], e0, e1));
        }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    int h = b->reps / 2;
    for (int i = 0; i < n; i++) {
        if (ms[i] < 0) continue;
        float *ti = t + (size_t)i * b->reps;
        qsort(ti, (size_t)b->reps, sizeof *ti, cmp_float);
        ms[i] = b->reps % 2 ? ti[h] : 0.5 * (ti[h - 1] + ti[h]);
    }
    free(t);
}

/* The fastest of ms[0..n) that ran (index in *best, -1 if none); refusals counted in *failed. */
static double fastest(const double *ms, int n, int *best, int *failed) {
    double m = -1;
    *best = -1, *failed = 0;
    for (int i = 0; i < n; i++) {
        if (ms[i] < 0) ++*failed;
        else if (m < 0 || ms[i] < m) m = ms[i], *best = i;
    }
    return m;
}

static void print_candidates(const char *what, gt_lt_bench *lb, const double *ms,
                             const int *status, double flops) {
    int plan = gt_lt_bench_plan_index(lb);
    printf("    %s (* = the plan's algorithm; tile and cluster: enums of cublasLt.h)\n", what);
    for (int i = 0; i < gt_lt_bench_count(lb); i++) {
        char desc[256];
        gt_lt_bench_describe(lb, i, desc, sizeof desc);
        if (ms[i] >= 0)
            printf("      #%-2d%s %9.4f ms %7.1f TFLOP/s  %s\n", i, i == plan ? "*" : " ", ms[i],
                   flops / ms[i] * 1e-9, desc);
        else
            printf("      #%-2d%s refused (cuBLAS status %d)  %s\n", i, i == plan ? "*" : " ",
                   status[i], desc);
    }
}

/* ---- one GEMM ---- */

typedef enum { FPROP = 0, DGRAD, WGRAD } role;
static const char *ROLE[] = {"fprop", "dgrad", "wgrad"};

typedef struct {
    double ours, best, bf16; /* ms */
} row_ms;

/* --check (default): each candidate's D against the plan algorithm's, bit for bit, over D's first
 * CHECK_BYTES (D zeroed before each run, so wgrad's += is a plain product). Returns how many of the
 * candidates that ran differ, listed ("#3 #5 ") in list. */
static int check_outputs(bench *b, gt_lt_bench *lb, void *d, size_t bytes, const double *ms,
                         char *list, size_t len) {
    size_t n = bytes < CHECK_BYTES ? bytes : CHECK_BYTES, used = 0;
    unsigned char *ref = gt_malloc(n), *got = gt_malloc(n);
    int differ = 0;
    list[0] = 0;
    for (int i = -1; i < gt_lt_bench_count(lb); i++) {
        if (i >= 0 && ms[i] < 0) continue;
        b->o->zero(b->be, d, bytes);
        int st = gt_lt_bench_run(lb, i);
        GT_ASSERT(st == 0, "candidate %d ran before, now returns cuBLAS status %d", i, st);
        b->o->download_raw(b->be, i < 0 ? ref : got, d, n);
        if (i >= 0 && memcmp(ref, got, n) != 0) {
            differ++;
            if (used < len) used += (size_t)snprintf(list + used, len - used, "#%d ", i);
        }
    }
    free(ref), free(got);
    return differ;
}

/* The FP8 GEMM D[M,N] = A[M,K] B[N,K]^T of role r for weight W[OC,IC] and its BF16 counterpart,
 * timed together: the op, every FP8 candidate, the BF16 plan (and with --bf16-best every BF16
 * candidate). */
static row_ms bench_row(bench *b, const char *model, const char *gemm, role r, int IC, int OC) {
    const gt_ops *o = b->o;
    gt_backend *be = b->be;
    int M = r == WGRAD ? OC : NTOK, N = r == FPROP ? OC : IC,
        K = r == FPROP ? IC : r == DGRAD ? OC : NTOK;
    int out_grad = r == WGRAD, fast = r == FPROP;
    gt_dtype af = r == FPROP ? GT_E4M3 : GT_E5M2, bf = GT_E4M3;
    double flops = 2.0 * M * N * (double)K;

    /* FP8: the op itself (its cached plan) and the candidates for the same descriptor */
    float sinv = 1.0f / 64;
    float *s = o->alloc(be, 16);
    o->upload_raw(be, s, &sinv, sizeof sinv);
    job op = {0};
    op.b = b, op.M = M, op.N = N, op.K = K, op.out_grad = out_grad, op.fast = fast, op.af = af,
    op.bf = bf;
    op.a = bbuf(b, (size_t)M * K, 0), op.bb = bbuf(b, (size_t)N * K, 0);
    size_t dbytes = (size_t)M * N * (out_grad ? 4 : 2);
    op.d = o->alloc(be, dbytes), op.sa = op.sb = s;
    /* makes the cached plan the candidates name, as the training step's first micro-batch does:
     * overwriting D, so autotuned (then accumulating again, the default, for wgrad's timings) */
    o->set_dw_accumulate(be, 0);
    run_job(&op);
    o->set_dw_accumulate(be, 1);
    gt_lt_bench *lb = gt_cuda_fp8_lt_bench(be, op.d, out_grad, op.a, af, s, op.bb, bf, s, M, N, K,
                                           fast, b->algos);
    int count = gt_lt_bench_count(lb), plan = gt_lt_bench_plan_index(lb);

    /* BF16: the GEMM of the same role, with the plan matmul_fwd / matmul_bwd would cache */
    void *out, *p, *q;
    int Nt = NTOK;
    if (r == FPROP) /* y[N,OC] = x[N,IC] W^T */
        out = o->alloc(be, (size_t)Nt * OC * 2), p = bbuf(b, (size_t)Nt * IC * 2, 1),
        q = bbuf(b, (size_t)OC * IC * 2, 1);
    else if (r == DGRAD) /* dx[N,IC] = dy[N,OC] W */
        out = o->alloc(be, (size_t)Nt * IC * 2), p = bbuf(b, (size_t)Nt * OC * 2, 1),
        q = bbuf(b, (size_t)OC * IC * 2, 1);
    else /* dW[OC,IC] += dy^T x */
        out = o->alloc(be, (size_t)OC * IC * 4), p = bbuf(b, (size_t)Nt * OC * 2, 1),
        q = bbuf(b, (size_t)Nt * IC * 2, 1);
    gt_lt_bench *lb16 = gt_cuda_bf16_lt_bench(be, (gt_lt_role)r, out, p, q, Nt, IC, OC,
                                              b->bf16_best ? b->algos : 1);
    int count16 = b->bf16_best ? gt_lt_bench_count(lb16) : 0;

    /* jobs: [0] the op, [1 .. count] FP8 candidates, [count + 1] the BF16 plan, then BF16
     * candidates */
    int n = count + 2 + count16;
    job *jobs = gt_calloc((size_t)n, sizeof *jobs);
    double *ms = gt_malloc((size_t)n * sizeof *ms);
    int *status = gt_malloc((size_t)n * sizeof *status);
    jobs[0] = op;
    for (int i = 0; i < count; i++) jobs[1 + i].b = b, jobs[1 + i].lb = lb, jobs[1 + i].cand = i;
    jobs[count + 1].b = b, jobs[count + 1].lb = lb16, jobs[count + 1].cand = -1;
    for (int i = 0; i < count16; i++)
        jobs[count + 2 + i].b = b, jobs[count + 2 + i].lb = lb16, jobs[count + 2 + i].cand = i;
    time_jobs(b, jobs, n, ms, status);
    GT_ASSERT(status[count + 1] == 0, "the BF16 plan's algorithm was refused: cuBLAS status %d",
              status[count + 1]);

    row_ms t = {ms[0], -1, ms[count + 1]};
    int best = -1, failed = 0, best16 = -1, failed16 = 0;
    t.best = fastest(ms + 1, count, &best, &failed);
    double bf16_best = fastest(ms + count + 2, count16, &best16, &failed16);
    char best_what[256] = "", shape[48], note[512] = "";
    if (best >= 0) gt_lt_bench_describe(lb, best, best_what, sizeof best_what);
    if (b->verbose) {
        char what[160];
        snprintf(what, sizeof what, "%s %s %s FP8 D[%d,%d] = A[%d,%d] B[%d,%d]^T", model, gemm,
                 ROLE[r], M, N, M, K, N, K);
        print_candidates(what, lb, ms + 1, status + 1, flops);
        if (count16) {
            snprintf(what, sizeof what, "%s %s %s BF16", model, gemm, ROLE[r]);
            print_candidates(what, lb16, ms + count + 2, status + count + 2, flops);
        }
    }

    size_t w = 0;
    if (plan < 0)
        w += (size_t)snprintf(note + w, sizeof note - w, "plan not among the %d candidates; ",
                              count);
    if (t.best > 0 && t.best < BEHIND * t.ours)
        w += (size_t)snprintf(note + w, sizeof note - w, "BEHIND: #%d %.0f%% faster (%s); ", best,
                              100.0 * (t.ours / t.best - 1), best_what);
    if (failed) w += (size_t)snprintf(note + w, sizeof note - w, "%d refused; ", failed);
    if (b->check) {
        char list[128];
        int differ = check_outputs(b, lb, op.d, dbytes, ms + 1, list, sizeof list);
        w += (size_t)snprintf(note + w, sizeof note - w, "%s%s; ",
                              differ ? "D differs from the plan's: " : "D bitwise equal", list);
    }
    if (bf16_best > 0)
        w += (size_t)snprintf(note + w, sizeof note - w,
                              "bf16 best #%d of %d (plan #%d) %.0f TF/s; ", best16, count16,
                              gt_lt_bench_plan_index(lb16), flops / bf16_best * 1e-9);
    snprintf(shape, sizeof shape, "%dx%dx%d", M, N, K);
    printf("%-7s %-7s %-5s %-18s %8.3f %6.0f  %8.3f %6.0f %2d/%-2d %2d  %5.1f%%  %8.3f %6.0f "
           "%5.2fx  %s\n",
           model, gemm, ROLE[r], shape, t.ours, flops / t.ours * 1e-9, t.best,
           t.best > 0 ? flops / t.best * 1e-9 : 0.0, best, count, plan,
           t.best > 0 ? 100.0 * t.best / t.ours : 0.0, t.bf16, flops / t.bf16 * 1e-9,
           t.bf16 / t.ours, note);
    fflush(stdout);

    gt_lt_bench_destroy(lb);
    gt_lt_bench_destroy(lb16);
    o->release(be, (void *)op.a), o->release(be, (void *)op.bb), o->release(be, op.d);
    o->release(be, s);
    o->release(be, out), o->release(be, p), o->release(be, q);
    free(jobs), free(ms), free(status);
    return t;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_gemm_gpu [--algos N (1..%d)] [--reps N] [--model 2b|7b] "
                    "[--gemm qkv|o|fc1|fc2|lm_head] [--bf16-best] [--no-check] [-v]\n",
            GT_LT_BENCH_MAX);
    exit(2);
}

int main(int argc, char **argv) {
    bench b;
    memset(&b, 0, sizeof b);
    b.reps = 20, b.algos = 16, b.rng = 12345, b.check = 1;
    const char *only_model = NULL, *only_gemm = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--algos") && v) b.algos = atoi(v), i++;
        else if (!strcmp(a, "--reps") && v) b.reps = atoi(v), i++;
        else if (!strcmp(a, "--model") && v) only_model = v, i++;
        else if (!strcmp(a, "--gemm") && v) only_gemm = v, i++;
        else if (!strcmp(a, "--bf16-best")) b.bf16_best = 1;
        else if (!strcmp(a, "--no-check")) b.check = 0;
        else if (!strcmp(a, "-v")) b.verbose = 1;
        else usage();
    }
    if (b.algos < 1 || b.algos > GT_LT_BENCH_MAX || b.reps < 1) usage();
    GT_ASSERT(gt_cuda_device_count() > 0, "bench_gemm_gpu needs a CUDA device");
    b.o = gt_cuda_ops();
    b.be = gt_cuda_backend_create(0);
    GT_ASSERT(b.o->matmul_fp8, "the cuda backend has no FP8 GEMM");

    b.flush = b.o->alloc(b.be, FLUSH_BYTES);
    uint8_t *p8 = gt_malloc(POOL_BYTES);
    uint16_t *p16 = gt_malloc(POOL_BYTES);
    for (size_t i = 0; i < POOL_BYTES; i++) p8[i] = (uint8_t)(rnd(&b) & 0xef); /* finite in both */
    for (size_t i = 0; i < POOL_BYTES / 2; i++)
        p16[i] = gt_f32_to_bf16((float)((rnd(&b) >> 40) * (2.0 / 16777216.0) - 1.0));
    b.pool8 = b.o->alloc(b.be, POOL_BYTES), b.pool16 = b.o->alloc(b.be, POOL_BYTES);
    b.o->upload_raw(b.be, b.pool8, p8, POOL_BYTES);
    b.o->upload_raw(b.be, b.pool16, p16, POOL_BYTES);
    free(p8), free(p16);

    char dev[128];
    gt_cuda_device_name(b.be, dev, sizeof dev);
    const char *tune = getenv("GT_FP8_AUTOTUNE");
    printf("bench_gemm_gpu on %s: N=%d tokens; median of %d after %d warm-ups, L2 flushed; "
           "up to %d heuristic candidates per FP8 descriptor; FP8 autotune %s\n",
           dev, NTOK, b.reps, WARMUP, b.algos, tune && !strcmp(tune, "0") ? "off" : "on");
    printf("%-7s %-7s %-5s %-18s %8s %6s  %8s %6s %5s %2s  %6s  %8s %6s %6s  %s\n", "model",
           "gemm", "role", "MxNxK (D=A.B^T)", "ours ms", "TF/s", "best ms", "TF/s", "#best",
           "pl", "%best", "bf16 ms", "TF/s", "x bf16", "note");
    for (size_t mi = 0; mi < sizeof MODELS / sizeof MODELS[0]; mi++) {
        const model_shape *m = &MODELS[mi];
        if (only_model && strcmp(only_model, mi == 0 ? "2b" : "7b") != 0) continue;
        const struct {
            const char *name;
            int IC, OC;
        } G[] = {{"qkv", m->C, m->Q}, {"o", m->HD, m->C}, {"fc1", m->C, 2 * m->F},
                 {"fc2", m->F, m->C}, {"lm_head", m->C, m->V}};
        row_ms layer = {0, 0, 0};
        int layer_rows = 0;
        for (size_t gi = 0; gi < sizeof G / sizeof G[0]; gi++) {
            if (only_gemm && strcmp(only_gemm, G[gi].name) != 0) continue;
            for (int r = 0; r < 3; r++) {
                row_ms t = bench_row(&b, m->model, G[gi].name, (role)r, G[gi].IC, G[gi].OC);
                if (gi < 4) { /* the layer's GEMMs (lm_head runs once per step) */
                    layer.ours += t.ours, layer.bf16 += t.bf16, layer_rows++;
                    layer.best += t.best > 0 && t.best < t.ours ? t.best : t.ours;
                }
            }
        }
        if (layer_rows == 12)
            printf("%-7s one layer's 12 GEMMs: ours %.3f ms, with each GEMM's best %.3f ms "
                   "(%.1f%%), BF16 %.3f ms (FP8 %.2fx)\n",
                   m->model, layer.ours, layer.best, 100.0 * layer.best / layer.ours, layer.bf16,
                   layer.bf16 / layer.ours);
    }
    printf("columns:\n"
           " ours     matmul_fp8 through its cached plan, made by a first call that overwrites D "
           "(as a training step's\n"
           "          first micro-batch), so autotuned unless GT_FP8_AUTOTUNE=0; wgrad then timed "
           "accumulating (fp32 +=)\n"
           " best     the fastest of the heuristic's candidates for the same descriptor; #best: "
           "its index / how many\n"
           " pl       the plan's index among the candidates (0: the heuristic's first; -1: none)\n"
           " %%best    best ms / ours ms\n"
           " bf16     the model's BF16 GEMM of the same role (fprop TN, dgrad NN, wgrad NT fp32 "
           "+=), its cached plan\n"
           " x bf16   bf16 ms / ours ms\n"
           " note     BEHIND: the plan is more than %.0f%% slower than the best candidate; D "
           "bitwise equal: every\n"
           "          candidate's output equals the plan's bit for bit (first %zu MiB of D)\n",
           100.0 * (1 - BEHIND), CHECK_BYTES >> 20);
    b.o->release(b.be, b.flush), b.o->release(b.be, b.pool8), b.o->release(b.be, b.pool16);
    gt_cuda_backend_destroy(b.be);
    return 0;
}
