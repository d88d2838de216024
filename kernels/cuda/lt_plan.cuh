/* What the BF16 (gemm.cu) and FP8 (fp8_gemm.cu) cuBLASLt wrappers share: the handles of one cached
 * GEMM plan's release, the pointer alignment that is part of a plan's key, the heuristic query that
 * picks a plan's algorithm, and the test-only candidate list built on it (lt_bench.h). */
#ifndef GT_LT_PLAN_CUH
#define GT_LT_PLAN_CUH

#include <stdint.h>
#include <stdlib.h>

#include "cuda_common.cuh"
#include "lt_bench.h"

static inline void gt_lt_destroy(cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t la,
                                 cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc,
                                 cublasLtMatrixLayout_t ld) {
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lc));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(ld));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(desc));
}

/* Room for one more plan in a cache of *count of *cap plans of `size` bytes (doubling, from 32). */
static inline void *gt_lt_reserve(void *plans, int count, int *cap, size_t size, const char *what) {
    if (count < *cap) return plans;
    int grown_cap = *cap ? 2 * *cap : 32;
    void *grown = realloc(plans, (size_t)grown_cap * size);
    if (!grown) GT_DIE("out of host memory growing the %s plan cache to %d plans", what, grown_cap);
    *cap = grown_cap;
    return grown;
}

/* Largest power of two (at most 256) dividing the address: cuBLASLt kernels may assume up to 256. */
static inline int32_t gt_lt_alignment(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int32_t a = 1;
    while (a < 256 && (u & (uintptr_t)(2 * a - 1)) == 0) a *= 2;
    return a;
}

/* Up to n algorithms from the heuristic for a descriptor, best estimate first, within the backend's
 * workspace and for operands aligned to align[] bytes (cuBLASLt's A, B, C, D). Returns how many. */
static inline int gt_lt_heuristic(gt_backend *be, cublasLtMatmulDesc_t desc,
                                  cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                  cublasLtMatrixLayout_t lc, cublasLtMatrixLayout_t ld,
                                  const int32_t align[4], int n,
                                  cublasLtMatmulHeuristicResult_t *res) {
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = be->workspace_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    static const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++) {
        uint32_t a = (uint32_t)align[i];
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &a, sizeof a));
    }
    int found = 0;
    CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(be->lt, desc, la, lb, lc, ld, pref, n, res, &found));
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    return found;
}

/* Test-only (lt_bench.h): one GEMM's own descriptor and layouts (owned), its operands in cuBLASLt's
 * terms, the production plan's algorithm and the heuristic's candidates. */
struct gt_lt_bench {
    gt_backend *be;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc, ld;
    const void *a, *b, *c;
    void *d;
    float alpha, beta;
    cublasLtMatmulAlgo_t plan;
    int count;
    cublasLtMatmulHeuristicResult_t cand[GT_LT_BENCH_MAX];
};

/* A gt_lt_bench taking over a freshly built plan's handles; asks for up to max_algos candidates. */
static inline gt_lt_bench *gt_lt_bench_make(gt_backend *be, cublasLtMatmulDesc_t desc,
                                            cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                            cublasLtMatrixLayout_t lc, cublasLtMatrixLayout_t ld,
                                            const int32_t align[4], cublasLtMatmulAlgo_t plan,
                                            int max_algos) {
    gt_lt_bench *r = (gt_lt_bench *)gt_calloc(1, sizeof *r);
    r->be = be;
    r->desc = desc, r->la = la, r->lb = lb, r->lc = lc, r->ld = ld;
    r->plan = plan;
    int n = max_algos < 1 ? 1 : max_algos > GT_LT_BENCH_MAX ? GT_LT_BENCH_MAX : max_algos;
    r->count = gt_lt_heuristic(be, desc, la, lb, lc, ld, align, n, r->cand);
    return r;
}

#endif
