/* Test-only candidate lists of cuBLASLt algorithms (lt_bench.h); built by gemm.cu and fp8_gemm.cu
 * with their production plan code (lt_plan.cuh: gt_lt_bench_make). */
#include <stdio.h>
#include <stdlib.h>

#include "lt_plan.cuh"

extern "C" int gt_lt_bench_count(const gt_lt_bench *lb) { return lb->count; }

extern "C" int gt_lt_bench_plan_index(const gt_lt_bench *lb) {
    for (int i = 0; i < lb->count; i++)
        if (memcmp(&lb->cand[i].algo, &lb->plan, sizeof lb->plan) == 0) return i;
    return -1;
}

static const cublasLtMatmulAlgo_t *algo_of(const gt_lt_bench *lb, int i) {
    GT_ASSERT(i >= -1 && i < lb->count, "gt_lt_bench: candidate %d of %d", i, lb->count);
    return i < 0 ? &lb->plan : &lb->cand[i].algo;
}

extern "C" int gt_lt_bench_run(gt_lt_bench *lb, int i) {
    gt_backend *be = lb->be;
    cublasStatus_t st = cublasLtMatmul(be->lt, lb->desc, &lb->alpha, lb->a, lb->la, lb->b, lb->lb,
                                       &lb->beta, lb->c, lb->lc, lb->d, lb->ld, algo_of(lb, i),
                                       be->workspace, be->workspace_bytes, be->stream);
    return (int)st;
}

/* One configuration attribute; the size must match its storage (32 bits; 16 for the cluster
 * shape). */
static int config(const cublasLtMatmulAlgo_t *algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
    size_t written = 0;
    if (attr == CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID) {
        uint16_t v = 0;
        CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(algo, attr, &v, sizeof v, &written));
        return (int)v;
    }
    uint32_t v = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(algo, attr, &v, sizeof v, &written));
    return (int)v;
}

extern "C" void gt_lt_bench_describe(const gt_lt_bench *lb, int i, char *buf, size_t len) {
    const cublasLtMatmulAlgo_t *a = algo_of(lb, i);
    int n = snprintf(buf, len,
                     "algo %d tile %d stages %d splitK %d red %d swz %d cluster %d opt %d",
                     config(a, CUBLASLT_ALGO_CONFIG_ID), config(a, CUBLASLT_ALGO_CONFIG_TILE_ID),
                     config(a, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                     config(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                     config(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
                     config(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                     config(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID),
                     config(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION));
    if (i >= 0 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " ws %zuK waves %.2f", lb->cand[i].workspaceSize >> 10,
                 (double)lb->cand[i].wavesCount);
}

extern "C" void gt_lt_bench_destroy(gt_lt_bench *lb) {
    if (!lb) return;
    gt_lt_destroy(lb->desc, lb->la, lb->lb, lb->lc, lb->ld);
    free(lb);
}
