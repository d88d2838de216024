/* Test-only (tests/gpu/bench_gemm_gpu.c; the training path never calls these): the cuBLASLt
 * algorithms the heuristic offers for the exact descriptor a production GEMM builds, each runnable
 * on its own, so a benchmark can compare the algorithm the plan caches (the heuristic's first
 * result) with the fastest of all candidates.
 *
 * A gt_lt_bench owns its own matmul descriptor and layouts, built by the same code as the cached
 * plans of gemm.cu / fp8_gemm.cu (same key, same preference: workspace size and pointer alignments)
 * and bound to the operand pointers given at creation; it leaves the backend's plan caches alone.
 * Destroy it before the backend. */
#ifndef GT_LT_BENCH_H
#define GT_LT_BENCH_H

#include <stddef.h>

#include "../ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GT_LT_BENCH_MAX 64 /* most candidates one gt_lt_bench asks the heuristic for */

typedef struct gt_lt_bench gt_lt_bench;

/* matmul_fp8 with these arguments (kernels/ops.h; same checks). The scale-inverse pointers must be
 * 16-byte aligned. Beta (wgrad accumulation) follows set_dw_accumulate at creation time. */
gt_lt_bench *gt_cuda_fp8_lt_bench(gt_backend *be, void *d, int out_grad, const void *a,
                                  gt_dtype a_fmt, const float *a_scale_inv, const void *b,
                                  gt_dtype b_fmt, const float *b_scale_inv, int M, int N, int K,
                                  int fast_accum, int max_algos);

/* The BF16 GEMMs of the op table, N tokens, weight W[OC, IC]:
 *   GT_LT_FPROP  matmul_fwd:             out = y[N,OC],  p = x[N,IC],  q = W
 *   GT_LT_DGRAD  matmul_bwd's dx:        out = dx[N,IC], p = dy[N,OC], q = W
 *   GT_LT_WGRAD  matmul_bwd's dW (fp32): out = dW[OC,IC], p = dy[N,OC], q = x[N,IC] */
typedef enum { GT_LT_FPROP = 0, GT_LT_DGRAD, GT_LT_WGRAD } gt_lt_role;
gt_lt_bench *gt_cuda_bf16_lt_bench(gt_backend *be, gt_lt_role role, void *out, const void *p,
                                   const void *q, int N, int IC, int OC, int max_algos);

/* Candidates the heuristic returned (0 .. max_algos), best estimate first. */
int gt_lt_bench_count(const gt_lt_bench *lb);
/* The candidate equal to the algorithm the production plan caches, or -1 if none is. */
int gt_lt_bench_plan_index(const gt_lt_bench *lb);
/* Enqueues the GEMM with candidate i (i = -1: the production plan's algorithm) on the backend's
 * stream. Returns the cublasLtMatmul status (0: success) instead of dying: a candidate may refuse
 * to run. */
int gt_lt_bench_run(gt_lt_bench *lb, int i);
/* A one-line description of candidate i (-1: the plan's): algorithm id, tile and stages enums
 * (cublasLt.h), split-K, reduction scheme, swizzle, cluster shape enum, custom option, workspace,
 * waves. */
void gt_lt_bench_describe(const gt_lt_bench *lb, int i, char *buf, size_t len);
void gt_lt_bench_destroy(gt_lt_bench *lb);

#ifdef __cplusplus
}
#endif

#endif
