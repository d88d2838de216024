/* Entry points of the CUDA backend's ops (one .cu file per concept), gathered into the op table by
 * backend.cu. Each has the signature of the gt_ops member of the same name (kernels/ops.h), which
 * is also where its contract lives. Every entry runs on be->stream and returns without
 * synchronizing. */
#ifndef GT_CUDA_OPS_CUH
#define GT_CUDA_OPS_CUH

#include <nvtx3/nvToolsExt.h>

#include "cuda_common.cuh"

/* An NVTX range around one op, so profiles show op names (DESIGN §6). Header-only NVTX: no
 * library to link, and nearly free when no profiler is attached. */
#define GT_NVTX_PUSH(name) nvtxRangePushA("gt." name)
#define GT_NVTX_POP() nvtxRangePop()

/* gemm.cu: the descriptor / heuristic cache that lives in be->gemm. */
extern "C" gt_gemm_cache *gt_gemm_cache_create(void);
extern "C" void gt_gemm_cache_destroy(gt_gemm_cache *cache);

extern "C" void gt_cuda_matmul_fwd(gt_backend *be, void *y, const void *x, const void *w, int N,
                                   int IC, int OC);
extern "C" void gt_cuda_matmul_bwd(gt_backend *be, void *dx, void *dw, const void *dy,
                                   const void *x, const void *w, int N, int IC, int OC);

/* gemv.cu: what matmul_fwd runs for N <= GT_GEMV_MAX_ROWS rows (decode steps) instead of cuBLASLt,
 * with matmul_fwd's arguments (N >= 1, IC >= 1, OC >= 1). 8: its CUDA-core FMAs are N per weight,
 * so at 8 rows they already take about half the FP32 rate at HBM speed, and its N accumulators for
 * 4 rows of W fill a lane's registers; more rows are cuBLASLt's tensor-core tiles. */
#define GT_GEMV_MAX_ROWS 8
/* ... and for weights of fewer elements than this: cuBLASLt already reads a 1 GB lm_head (2048 x
 * 256000 = 2^29 elements) at 4.2 TB/s, where the GEMV measured 3% slower on an H200 (fc1, 2^26,
 * was 1.12x faster with the GEMV). */
#define GT_GEMV_MAX_WEIGHTS ((size_t)1 << 28)
extern "C" void gt_cuda_gemv(gt_backend *be, void *y, const void *x, const void *w, int N, int IC,
                             int OC);

/* elementwise.cu */
extern "C" void gt_cuda_add(gt_backend *be, void *out, const void *a, const void *b, size_t n);
extern "C" void gt_cuda_accumulate(gt_backend *be, void *dst, const void *src, size_t n);

/* embedding.cu */
extern "C" void gt_cuda_embed_fwd(gt_backend *be, void *out, const int32_t *tok, const void *wte,
                                  float scale, int64_t vstart, int V, int N, int C);
extern "C" void gt_cuda_embed_bwd(gt_backend *be, void *dwte, const void *dout, const int32_t *tok,
                                  float scale, int64_t vstart, int V, int N, int C, int pad_id);

/* rmsnorm.cu */
extern "C" void gt_cuda_rmsnorm_fwd(gt_backend *be, void *out, void *rstd, const void *x,
                                    const void *w, float eps, int N, int C);
extern "C" void gt_cuda_rmsnorm_bwd(gt_backend *be, void *dx, void *dw, const void *dout,
                                    const void *x, const void *w, const void *rstd, int N, int C);
extern "C" void gt_cuda_add_rmsnorm_fwd(gt_backend *be, void *res, void *out, void *rstd,
                                        const void *a, const void *b, const void *w, float eps,
                                        int N, int C);

/* rmsnorm_fp8.cu */
extern "C" void gt_cuda_add_rmsnorm_fwd_fp8(gt_backend *be, void *res, void *y, void *y8, void *y8t,
                                            void *rstd, const void *a, const void *b,
                                            const void *w, float eps, int N, int C, gt_dtype fmt,
                                            const float *scale, float *amax);
extern "C" void gt_cuda_rmsnorm_fwd_fp8(gt_backend *be, void *y, void *y8, void *y8t, void *rstd,
                                        const void *x, const void *w, float eps, int N, int C,
                                        gt_dtype fmt, const float *scale, float *amax);

/* rope.cu */
extern "C" void gt_cuda_rope_fwd(gt_backend *be, void *qkv, const int32_t *pos, float theta, int N,
                                 int Hq, int Hkv, int D);
extern "C" void gt_cuda_rope_bwd(gt_backend *be, void *dqkv, const int32_t *pos, float theta, int N,
                                 int Hq, int Hkv, int D);
extern "C" void gt_cuda_rope_kv_write(gt_backend *be, void *qkv, void *kc, void *vc, const int32_t *pos,
                                      const int32_t *dst, float theta, int N, int Hq, int Hkv, int D, int Tmax);

/* geglu.cu */
extern "C" void gt_cuda_geglu_fwd(gt_backend *be, void *h, const void *a, gt_gelu kind, int N,
                                  int F);
extern "C" void gt_cuda_geglu_bwd(gt_backend *be, void *da, const void *dh, const void *a,
                                  gt_gelu kind, int N, int F);

/* cross_entropy.cu */
extern "C" void gt_cuda_ce_partial(gt_backend *be, void *part, const void *logits,
                                   const int32_t *target, int64_t vstart, int V, int N);
extern "C" void gt_cuda_ce_finish(gt_backend *be, void *lse, void *loss_sum, const void *parts,
                                  const int32_t *target, int tp, int N);
extern "C" void gt_cuda_ce_backward(gt_backend *be, void *dlogits, const void *logits,
                                    const int32_t *target, const void *lse, float dscale,
                                    int64_t vstart, int V, int N);

/* optimizer.cu */
extern "C" void gt_cuda_grad_sumsq(gt_backend *be, void *out, const void *g, size_t n);
extern "C" void gt_cuda_set_dw_accumulate(gt_backend *be, int accumulate);
extern "C" void gt_cuda_set_grad_bf16(gt_backend *be, int on);
extern "C" void gt_cuda_init_normal(gt_backend *be, void *dst, int64_t rows, int64_t cols, int64_t full_cols,
                                    int64_t row0, int64_t col0, uint64_t key, float std, int64_t zero_row);
extern "C" void gt_cuda_adamw(gt_backend *be, void *param, void *master, void *m, void *v,
                              const void *grad, size_t n, const gt_adamw_args *args);

/* fp8_cast.cu, fp8_gemm.cu, fp8_update.cu (more FP8 entry points: fp8_cuda.h) */
extern "C" void gt_cuda_fp8_cast(gt_backend *be, void *out, void *out_t, const void *in, int rows,
                                 int cols, gt_dtype fmt, const float *scale, float *amax);
extern "C" void gt_cuda_matmul_fp8(gt_backend *be, void *d, int out_grad, const void *a,
                                   gt_dtype a_fmt, const float *a_scale_inv, const void *b,
                                   gt_dtype b_fmt, const float *b_scale_inv, int M, int N, int K,
                                   int fast_accum);
extern "C" void gt_cuda_fp8_update(gt_backend *be, float *history, float *scale, float *scale_inv,
                                   const float *fp8_max, const float *reduced, int first, int n,
                                   int count, int len, int algo, float margin);

/* geglu_fp8.cu */
extern "C" void gt_cuda_geglu_fwd_fp8(gt_backend *be, void *h, void *h8, void *h8t, const void *a,
                                      gt_gelu kind, int N, int F, gt_dtype fmt,
                                      const float *scale, float *amax);
extern "C" void gt_cuda_geglu_bwd_fp8(gt_backend *be, void *da, void *da8, void *da8t,
                                      const void *dh, const void *a, gt_gelu kind, int N, int F,
                                      gt_dtype fmt, const float *scale, float *amax);

/* attention_decode.cu: the KV cache's writes, decode attention, and CUDA graphs of the stream */
extern "C" void gt_cuda_kv_write(gt_backend *be, void *kc, void *vc, const void *qkv, const int32_t *dst, int N,
                                 int Hq, int Hkv, int D, int Tmax);
extern "C" void gt_cuda_attention_decode(gt_backend *be, void *out, const void *qkv, const void *kc, const void *vc,
                                         const int32_t *len, float scale, int B, int Hq, int Hkv, int D, int Tmax);
extern "C" void gt_cuda_argmax_rows(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V);
extern "C" void gt_cuda_graph_begin(gt_backend *be);
extern "C" void *gt_cuda_graph_end(gt_backend *be);
extern "C" void gt_cuda_graph_launch(gt_backend *be, void *graph);
extern "C" void gt_cuda_graph_destroy(gt_backend *be, void *graph);

#endif
