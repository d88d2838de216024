/* matmul_fp8 (kernels/ops.h) through cuBLASLt: D[M,N] = (A[M,K] a_sinv) (B[N,K] b_sinv)^T, both
 * operands FP8 and K-contiguous, D bf16 (overwritten) or fp32 (out_grad: accumulated).
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
 *   wgrad  dW[OC,IC] += dy8T[OC,N]  . x8T[IC,N]^T    E5M2 x E4M3, fp32 out, beta 1 (C = D)
 * Compute type CUBLAS_COMPUTE_32F, scale type fp32, alpha 1. E5M2 x E5M2 does not exist on Hopper.
 *
 * Plans (matmul descriptor, four layouts, the heuristic's algorithm) are cached in be->fp8_gemm per
 * (M, N, K, formats, output, fast accumulation, pointer alignments); the scale pointers change from
 * call to call (each GEMM has its own scaling tensors) and are set on the cached descriptor. */
#include <stdlib.h>

#include "cuda_ops.cuh"
#include "lt_plan.cuh"
#include "fp8_cuda.h"

/* Everything a plan depends on; made from a zeroed struct so memcmp sees no padding junk. */
typedef struct {
    int32_t m, n, k; /* ours: D[m, n], contraction k */
    int32_t a_fmt, b_fmt; /* gt_dtype of our A and B */
    int32_t out_grad, fast_accum;
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


static void choose_algo(gt_backend *be, fp8_plan *p) {
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = be->workspace_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    /* cuBLASLt's A is our B, its B our A; C and D are the same buffer */
    uint32_t al[4] = {(uint32_t)p->key.align[1], (uint32_t)p->key.align[0],
                      (uint32_t)p->key.align[2], (uint32_t)p->key.align[2]};
    static const cublasLtMatmulPreferenceAttributes_t attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr[i], &al[i], sizeof al[i]));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(be->lt, p->desc, p->la, p->lb, p->lc, p->ld, pref,
                                                1, &res, &found));
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    if (found < 1)
        GT_DIE("cuBLASLt has no FP8 algorithm for D[%d,%d] = A[%d,%d] (%s) B[%d,%d]^T (%s), %s out",
               p->key.m, p->key.n, p->key.m, p->key.k, gt_dtype_name((gt_dtype)p->key.a_fmt),
               p->key.n, p->key.k, gt_dtype_name((gt_dtype)p->key.b_fmt),
               p->key.out_grad ? "fp32" : "bf16");
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
    cudaDataType_t out = key->out_grad ? CUDA_R_32F : CUDA_R_16BF;
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&p->la, fp8_type((gt_dtype)key->b_fmt), key->k, key->n, key->k));
    CUBLAS_CHECK(
        cublasLtMatrixLayoutCreate(&p->lb, fp8_type((gt_dtype)key->a_fmt), key->k, key->m, key->k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, out, key->n, key->m, key->n));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->ld, out, key->n, key->m, key->n));
    choose_algo(be, p);
}

static fp8_plan *find_plan(gt_backend *be, const fp8_key *key) {
    if (!be->fp8_gemm) be->fp8_gemm = (gt_fp8_gemm_cache *)gt_calloc(1, sizeof(gt_fp8_gemm_cache));
    gt_fp8_gemm_cache *cache = be->fp8_gemm;
    for (int i = 0; i < cache->count; i++)
        if (memcmp(&cache->plans[i].key, key, sizeof *key) == 0) return &cache->plans[i];
    cache->plans = (fp8_plan *)gt_lt_reserve(cache->plans, cache->count, &cache->cap, sizeof *cache->plans, "FP8 GEMM");
    fp8_plan *p = &cache->plans[cache->count];
    build_plan(be, p, key);
    cache->count++; /* only now: a plan that failed above never enters the cache */
    return p;
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

extern "C" void gt_cuda_matmul_fp8(gt_backend *be, void *d, int out_grad, const void *a,
                                   gt_dtype a_fmt, const float *a_scale_inv, const void *b,
                                   gt_dtype b_fmt, const float *b_scale_inv, int M, int N, int K,
                                   int fast_accum) {
    GT_ASSERT((a_fmt == GT_E4M3 || a_fmt == GT_E5M2) && (b_fmt == GT_E4M3 || b_fmt == GT_E5M2),
              "matmul_fp8: operand formats %s x %s are not FP8", gt_dtype_name(a_fmt),
              gt_dtype_name(b_fmt));
    GT_ASSERT(!(a_fmt == GT_E5M2 && b_fmt == GT_E5M2),
              "matmul_fp8: E5M2 x E5M2 has no Hopper FP8 kernel (one operand must be E4M3)");
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* an empty sum: nothing to add, or a zero product */
        if (!out_grad)
            CUDA_CHECK(cudaMemsetAsync(d, 0, (size_t)M * N * sizeof(__nv_bfloat16), be->stream));
        return;
    }
    /* cuBLASLt's FP8 kernels need 16-element leading dimensions: K for both operands, N for D. */
    GT_ASSERT(K % 16 == 0 && N % 16 == 0,
              "matmul_fp8: D[%d,%d] = A[%d,%d] B[%d,%d]^T: FP8 GEMMs need K and N to be multiples "
              "of 16 (cuBLASLt leading dimensions); run this shape in BF16",
              M, N, M, K, N, K);
    GT_NVTX_PUSH("matmul_fp8");
    fp8_key key;
    memset(&key, 0, sizeof key);
    key.m = M;
    key.n = N;
    key.k = K;
    key.a_fmt = (int32_t)a_fmt;
    key.b_fmt = (int32_t)b_fmt;
    key.out_grad = out_grad ? 1 : 0;
    key.fast_accum = fast_accum ? 1 : 0;
    key.align[0] = gt_lt_alignment(a);
    key.align[1] = gt_lt_alignment(b);
    key.align[2] = gt_lt_alignment(d);
    fp8_plan *p = find_plan(be, &key);
    b_scale_inv = aligned_scale(be, b_scale_inv, 0);
    a_scale_inv = aligned_scale(be, a_scale_inv, 1);
    /* cuBLASLt's A is our B: its A scale is b_scale_inv */
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                &b_scale_inv, sizeof b_scale_inv));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                &a_scale_inv, sizeof a_scale_inv));
    /* weight gradients accumulate unless the step's first micro-batch overwrites (set_dw_accumulate) */
    const float alpha = 1.0f, beta = (out_grad && !be->dw_overwrite) ? 1.0f : 0.0f;
    cublasStatus_t st =
        cublasLtMatmul(be->lt, p->desc, &alpha, b, p->la, a, p->lb, &beta, d, p->lc, d, p->ld,
                       &p->algo, be->workspace, be->workspace_bytes, be->stream);
    if (st != CUBLAS_STATUS_SUCCESS)
        GT_DIE(
            "cublasLtMatmul FP8 D[%d,%d] = A[%d,%d] (%s) B[%d,%d]^T (%s), %s out: status %d (%s)",
            M, N, M, K, gt_dtype_name(a_fmt), N, K, gt_dtype_name(b_fmt),
            out_grad ? "fp32 +=" : "bf16", (int)st, cublasLtGetStatusString(st));
    GT_NVTX_POP();
}
