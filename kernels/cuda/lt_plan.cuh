/* What the BF16 (gemm.cu) and FP8 (fp8_gemm.cu) cuBLASLt wrappers share: the handles of one cached
 * GEMM plan's release, and the pointer alignment that is part of a plan's key. */
#ifndef GT_LT_PLAN_CUH
#define GT_LT_PLAN_CUH

#include <stdint.h>
#include <stdlib.h>

#include "cuda_common.cuh"

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

#endif
