/* matmul_fp8 (kernels/ops.h) through cuBLASLt: D[M,N] = (A[M,K] a_sinv) (B[N,K] b_sinv)^T, both
 * operands FP8 and K-contiguous, D bf16 (overwritten) or the gradients' type (out_grad: accumulated;
 * fp32, or bf16 after set_grad_bf16).
 *
 * Row-major to column-major (as gemm.cu): a row-major X[r, c] is the column-major X^T with leading
 * dimension c. So D[M,N] row-major is the column-major D^T [N, M] (ld N), and
 *   D^T [N,M] = op_T(B stored col-major [K,N], ld K) . A stored col-major [K,M] (ld K)
 * i.e. cuBLASLt's m = N, n = M, k = K, its A = our B (TRANSA = T), its B = our A (TRANSB = N): the
 * "TN" layout, the only one Hopper's FP8 kernels take. Hence its A scale is our b_scale_inv and its
 * B scale our a_scale_inv (CUBLASLT_MATMUL_DESC_{A,B}_SCALE_POINTER, device fp32 scalars: the
 * product is multiplied by both, so they are the inverse scales the operands were cast with).
 *
 * Model calls (N = tokens; Gemma-2B: qkv 2048->2560, o 2048->2048, fc1 2048->32768,
 * fc2 16384->2048):
 *   fprop  y[N,OC]    = x8[N,IC]    . W8[OC,IC]^T    E4M3 x E4M3, bf16 out, fast accumulation
 *   dgrad  dx[N,IC]   = dy8[N,OC]   . W8T[IC,OC]^T   E5M2 x E4M3, bf16 out
 *   wgrad  dW[OC,IC] += dy8T[OC,N]  . x8T[IC,N]^T    E5M2 x E4M3, fp32 (or bf16) out, beta 1 (C = D)
 * Compute type CUBLAS_COMPUTE_32F, scale type fp32, alpha 1. E5M2 x E5M2 does not exist on Hopper.
 *
 * Plans (matmul descriptor, four layouts, the algorithm: the heuristic's first, or the fastest of
 * its candidates where the first call overwrites D, see autotune()) are cached in be->fp8_gemm per
 * (M, N, K, formats, output, fast accumulation, pointer alignments); the scale pointers change from
 * call to call (each GEMM has its own scaling tensors) and are set on the cached descriptor. */
#include <stdlib.h>

#include "cuda_ops.cuh"
#include "lt_plan.cuh"
#include "lt_tune.cuh"
#include "fp8_cuda.h"

/* Everything a plan depends on; made from a zeroed struct so memcmp sees no padding junk. */
typedef struct {
    int32_t m, n, k; /* ours: D[m, n], contraction k */
    int32_t a_fmt, b_fmt; /* gt_dtype of our A and B */
    int32_t out_grad; /* 0: bf16 D (ACT), 1: fp32 gradient, 2: bf16 gradient (set_grad_bf16) */
    int32_t fast_accum;
    int32_t align[3]; /* bytes (1..256) our A, B and D are aligned to */
} fp8_key;

typedef struct {
    fp8_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc, ld; /* cuBLASLt's A (our B), B (our A), C, D */
    cublasLtMatmulAlgo_t algo;
} fp8_plan;

struct gt_fp8_gemm_cache {
    fp8_plan *plans;
    int count, cap;
};

extern "C" void gt_cuda_fp8_release(gt_backend *be) {
    if (be->fp8_sinv) CUDA_CHECK(cudaFree(be->fp8_sinv));
    be->fp8_sinv = NULL;
    gt_fp8_gemm_cache *cache = be->fp8_gemm;
    if (!cache) return;
    for (int i = 0; i < cache->count; i++) {
        fp8_plan *p = &cache->plans[i];
        gt_lt_destroy(p->desc, p->la, p->lb, p->lc, p->ld);
    }
    free(cache->plans);
    free(cache);
    be->fp8_gemm = NULL;
}

static cudaDataType_t fp8_type(gt_dtype f) {
    return f == GT_E5M2 ? CUDA_R_8F_E5M2 : CUDA_R_8F_E4M3;
}

/* D's type and its name in messages, by fp8_key.out_grad. */
static cudaDataType_t out_type(int32_t out_grad) { return out_grad == 1 ? CUDA_R_32F : CUDA_R_16BF; }
static const char *out_name(int32_t out_grad) {
    return out_grad == 0 ? "bf16" : out_grad == 1 ? "fp32 +=" : "bf16 +=";
}


/* cuBLASLt's A is our B, its B our A; C and D are the same buffer */
static void lt_align(const fp8_key *key, int32_t al[4]) {
    al[0] = key->align[1], al[1] = key->align[0], al[2] = key->align[2], al[3] = key->align[2];
}

static void choose_algo(gt_backend *be, fp8_plan *p) {
    int32_t al[4];
    lt_align(&p->key, al);
    cublasLtMatmulHeuristicResult_t res;
    int found = gt_lt_heuristic(be, p->desc, p->la, p->lb, p->lc, p->ld, al, 1, &res);
    if (found < 1)
        GT_DIE("cuBLASLt has no FP8 algorithm for D[%d,%d] = A[%d,%d] (%s) B[%d,%d]^T (%s), %s out",
               p->key.m, p->key.n, p->key.m, p->key.k, gt_dtype_name((gt_dtype)p->key.a_fmt),
               p->key.n, p->key.k, gt_dtype_name((gt_dtype)p->key.b_fmt),
               out_name(p->key.out_grad));
    p->algo = res.algo;
}

static void build_plan(gt_backend *be, fp8_plan *p, const fp8_key *key) {
    p->key = *key;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    int8_t fast = key->fast_accum ? 1 : 0;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast,
                                                sizeof fast));
    /* Stored shapes, column-major: our B as [K, N] (ld K), our A as [K, M] (ld K), D as [N, M]. */
    cudaDataType_t out = out_type(key->out_grad);
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&p->la, fp8_type((gt_dtype)key->b_fmt), key->k, key->n, key->k));
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&p->lb, fp8_type((gt_dtype)key->a_fmt), key->k, key->m, key->k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, out, key->n, key->m, key->n));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->ld, out, key->n, key->m, key->n));
    choose_algo(be, p);
}

static fp8_plan *lookup_plan(gt_backend *be, const fp8_key *key) {
    gt_fp8_gemm_cache *cache = be->fp8_gemm;
    if (!cache) return NULL;
    for (int i = 0; i < cache->count; i++)
        if (memcmp(&cache->plans[i].key, key, sizeof *key) == 0) return &cache->plans[i];
    return NULL;
}

/* The cached plan for key, made (and *fresh set) when there is none. */
static fp8_plan *find_plan(gt_backend *be, const fp8_key *key, int *fresh) {
    fp8_plan *found = lookup_plan(be, key);
    *fresh = !found;
    if (found) return found;
    if (!be->fp8_gemm) be->fp8_gemm = (gt_fp8_gemm_cache *)gt_calloc(1, sizeof(gt_fp8_gemm_cache));
    gt_fp8_gemm_cache *cache = be->fp8_gemm;
    cache->plans = (fp8_plan *)gt_lt_reserve(cache->plans, cache->count, &cache->cap, sizeof *cache->plans, "FP8 GEMM");
    fp8_plan *p = &cache->plans[cache->count];
    build_plan(be, p, key);
    cache->count++; /* only now: a plan that failed above never enters the cache */
    return p;
}

/* Autotuning (off with GT_FP8_AUTOTUNE=0). The heuristic's first algorithm is not always the
 * fastest: on an H100 (cuBLASLt 13.0) its first pick for the wide fprop GEMMs (fc1, lm_head), a
 * 320x128 tile, ran 13-20% slower than a later candidate's 176x128 or 168x128 tile
 * (tests/gpu/bench_gemm_gpu.c, which also found every candidate's output bitwise equal to the
 * first's on the Gemma shapes: the choice changed speed, not results). So a new plan whose first
 * call overwrites its output (fprop, dgrad: bf16 D, beta 0; wgrad while set_dw_accumulate(0), as in
 * every training step's first micro-batch) times the heuristic's candidates once, on that call's
 * own operands and output (the call itself then overwrites D), as lt_tune.cuh describes, keeping
 * the first unless another is more than TUNE_MARGIN faster. Only candidates without split-K (one
 * pass over K, as the first) are tried. A plan first called to accumulate (wgrad, beta 1) keeps the
 * heuristic's first: trial runs would add into the gradient. Which algorithm wins may differ from
 * run to run or rank to rank where two are close. */
#define TUNE_MARGIN 0.03f

typedef struct {
    gt_backend *be;
    const fp8_plan *p;
    const void *a, *b;
    void *d;
} tune_ctx;

static cublasStatus_t tune_run(void *ctx, const cublasLtMatmulAlgo_t *algo) {
    const tune_ctx *t = (const tune_ctx *)ctx;
    const float alpha = 1.0f, beta = 0.0f;
    const fp8_plan *p = t->p;
    return cublasLtMatmul(t->be->lt, p->desc, &alpha, t->b, p->la, t->a, p->lb, &beta, t->d, p->lc,
                          t->d, p->ld, algo, t->be->workspace, t->be->workspace_bytes,
                          t->be->stream);
}

static void autotune(gt_backend *be, fp8_plan *p, const void *a, const void *b, void *d) {
    int32_t al[4];
    lt_align(&p->key, al);
    cublasLtMatmulHeuristicResult_t cand[GT_TUNE_MAX];
    int n = gt_lt_heuristic(be, p->desc, p->la, p->lb, p->lc, p->ld, al, GT_TUNE_MAX, cand);
    if (n < 2 || memcmp(&cand[0].algo, &p->algo, sizeof p->algo) != 0) return;
    tune_ctx t = {be, p, a, b, d};
    int ok[GT_TUNE_MAX];
    for (int i = 0; i < n; i++) ok[i] = i == 0 || gt_lt_splitk_of(&cand[i].algo) == 1;
    int best = gt_lt_fastest(be, tune_run, &t, cand, n, ok, TUNE_MARGIN);
    if (best) p->algo = cand[best].algo;
}

/* A scale pointer into the middle of a float array (the model's per-tensor scale_inv) is moved to
 * a 16-byte aligned slot of the backend first, in stream order: cuBLASLt's FP8 kernels are not
 * promised to accept any 4-byte aligned scale pointer. */
static const float *aligned_scale(gt_backend *be, const float *s, int slot) {
    if (((uintptr_t)s & 15u) == 0) return s;
    if (!be->fp8_sinv) CUDA_CHECK(cudaMalloc((void **)&be->fp8_sinv, 8 * sizeof(float)));
    float *dst = be->fp8_sinv + 4 * slot;
    CUDA_CHECK(cudaMemcpyAsync(dst, s, sizeof(float), cudaMemcpyDeviceToDevice, be->stream));
    return dst;
}

static void check_args(gt_dtype a_fmt, gt_dtype b_fmt) {
    GT_ASSERT((a_fmt == GT_E4M3 || a_fmt == GT_E5M2) && (b_fmt == GT_E4M3 || b_fmt == GT_E5M2),
              "matmul_fp8: operand formats %s x %s are not FP8", gt_dtype_name(a_fmt),
              gt_dtype_name(b_fmt));
    GT_ASSERT(!(a_fmt == GT_E5M2 && b_fmt == GT_E5M2),
              "matmul_fp8: E5M2 x E5M2 has no Hopper FP8 kernel (one operand must be E4M3)");
}

static void check_shape(int M, int N, int K) {
    /* cuBLASLt's FP8 kernels need 16-element leading dimensions: K for both operands, N for D. */
    GT_ASSERT(K % 16 == 0 && N % 16 == 0,
              "matmul_fp8: D[%d,%d] = A[%d,%d] B[%d,%d]^T: FP8 GEMMs need K and N to be multiples "
              "of 16 (cuBLASLt leading dimensions); run this shape in BF16",
              M, N, M, K, N, K);
}

static fp8_key make_key(const gt_backend *be, void *d, int out_grad, const void *a, gt_dtype a_fmt,
                        const void *b, gt_dtype b_fmt, int M, int N, int K, int fast_accum) {
    fp8_key key;
    memset(&key, 0, sizeof key);
    key.m = M;
    key.n = N;
    key.k = K;
    key.a_fmt = (int32_t)a_fmt;
    key.b_fmt = (int32_t)b_fmt;
    key.out_grad = !out_grad ? 0 : be->grad_bf16 ? 2 : 1;
    key.fast_accum = fast_accum ? 1 : 0;
    key.align[0] = gt_lt_alignment(a);
    key.align[1] = gt_lt_alignment(b);
    key.align[2] = gt_lt_alignment(d);
    return key;
}

/* cuBLASLt's A is our B: its A scale is b_scale_inv */
static void set_scales(cublasLtMatmulDesc_t desc, const float *a_scale_inv,
                       const float *b_scale_inv) {
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                &b_scale_inv, sizeof b_scale_inv));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                &a_scale_inv, sizeof a_scale_inv));
}

extern "C" void gt_cuda_matmul_fp8(gt_backend *be, void *d, int out_grad, const void *a,
                                   gt_dtype a_fmt, const float *a_scale_inv, const void *b,
                                   gt_dtype b_fmt, const float *b_scale_inv, int M, int N, int K,
                                   int fast_accum) {
    check_args(a_fmt, b_fmt);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* an empty sum: nothing to add, or a zero product */
        if (!out_grad)
            CUDA_CHECK(cudaMemsetAsync(d, 0, (size_t)M * N * sizeof(__nv_bfloat16), be->stream));
        return;
    }
    check_shape(M, N, K);
    GT_NVTX_PUSH("matmul_fp8");
    fp8_key key = make_key(be, d, out_grad, a, a_fmt, b, b_fmt, M, N, K, fast_accum);
    int fresh = 0;
    fp8_plan *p = find_plan(be, &key, &fresh);
    b_scale_inv = aligned_scale(be, b_scale_inv, 0);
    a_scale_inv = aligned_scale(be, a_scale_inv, 1);
    set_scales(p->desc, a_scale_inv, b_scale_inv);
    /* weight gradients accumulate unless the step's first micro-batch overwrites (set_dw_accumulate) */
    const float alpha = 1.0f, beta = (out_grad && !be->dw_overwrite) ? 1.0f : 0.0f;
    if (fresh && beta == 0.0f && be->fp8_autotune) autotune(be, p, a, b, d);
    cublasStatus_t st =
        cublasLtMatmul(be->lt, p->desc, &alpha, b, p->la, a, p->lb, &beta, d, p->lc, d, p->ld,
                       &p->algo, be->workspace, be->workspace_bytes, be->stream);
    if (st != CUBLAS_STATUS_SUCCESS)
        GT_DIE(
            "cublasLtMatmul FP8 D[%d,%d] = A[%d,%d] (%s) B[%d,%d]^T (%s), %s out: status %d (%s)",
            M, N, M, K, gt_dtype_name(a_fmt), N, K, gt_dtype_name(b_fmt),
            out_name(key.out_grad), (int)st, cublasLtGetStatusString(st));
    GT_NVTX_POP();
}

/* Test-only (lt_bench.h): the descriptor matmul_fp8 would cache for these arguments, built anew
 * (the cache is left alone), and the heuristic's candidates for it. The plan's algorithm is the
 * cached one where matmul_fp8 already ran this GEMM (autotuned), else the heuristic's first. */
extern "C" gt_lt_bench *gt_cuda_fp8_lt_bench(gt_backend *be, void *d, int out_grad, const void *a,
                                             gt_dtype a_fmt, const float *a_scale_inv,
                                             const void *b, gt_dtype b_fmt,
                                             const float *b_scale_inv, int M, int N, int K,
                                             int fast_accum, int max_algos) {
    check_args(a_fmt, b_fmt);
    GT_ASSERT(M > 0 && N > 0 && K > 0, "gt_cuda_fp8_lt_bench: empty GEMM %dx%dx%d", M, N, K);
    check_shape(M, N, K);
    GT_ASSERT(((uintptr_t)a_scale_inv & 15u) == 0 && ((uintptr_t)b_scale_inv & 15u) == 0,
              "gt_cuda_fp8_lt_bench: scale-inverse pointers must be 16-byte aligned");
    fp8_key key = make_key(be, d, out_grad, a, a_fmt, b, b_fmt, M, N, K, fast_accum);
    fp8_plan p;
    build_plan(be, &p, &key);
    set_scales(p.desc, a_scale_inv, b_scale_inv);
    int32_t al[4];
    lt_align(&key, al);
    const fp8_plan *cached = lookup_plan(be, &key);
    gt_lt_bench *r = gt_lt_bench_make(be, p.desc, p.la, p.lb, p.lc, p.ld, al,
                                      cached ? cached->algo : p.algo, max_algos);
    r->a = b, r->b = a, r->c = d, r->d = d;
    r->alpha = 1.0f;
    r->beta = (out_grad && !be->dw_overwrite) ? 1.0f : 0.0f;
    return r;
}
