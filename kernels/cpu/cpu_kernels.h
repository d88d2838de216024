/* Internal declarations of the CPU reference kernels, one function per gt_ops entry (kernels/ops.h
 * is the contract: shapes, layouts, which gradients are overwritten and which accumulate). Each
 * name carries the CPU_FN suffix of its build (_f32 or _f64); cpu_ops.c collects them into the
 * table. All buffers are host memory of `real` elements, whatever their gt_kind. */
#ifndef GT_CPU_KERNELS_H
#define GT_CPU_KERNELS_H

#include "cpu_bf16.h"
#include "cpu_real.h"
#include "kernels/ops.h"

/* The CPU backends' state: how parameter gradients are written (ops.h set_dw_accumulate,
 * set_grad_bf16). */
struct gt_backend {
    int dw_overwrite;
    int grad_bf16;
};

/* A parameter gradient's value as stored: rounded to bf16 precision with set_grad_bf16 (cpu_bf16.h),
 * else as it is. */
static inline real cpu_grad_store(const gt_backend *be, real x) { return be->grad_bf16 ? cpu_bf16_rne(x) : x; }

/* matmul.c */
void CPU_FN(cpu_set_dw_accumulate)(gt_backend *be, int accumulate);
void CPU_FN(cpu_set_grad_bf16)(gt_backend *be, int on);

/* init.c */
void CPU_FN(cpu_init_normal)(gt_backend *be, void *dst, int64_t rows, int64_t cols, int64_t full_cols,
                             int64_t row0, int64_t col0, uint64_t key, float std, int64_t zero_row);

/* memory.c */
void *CPU_FN(cpu_alloc)(gt_backend *be, size_t bytes);
void CPU_FN(cpu_release)(gt_backend *be, void *p);
void CPU_FN(cpu_zero)(gt_backend *be, void *p, size_t bytes);
void CPU_FN(cpu_copy)(gt_backend *be, void *dst, const void *src, size_t bytes);
void CPU_FN(cpu_upload_raw)(gt_backend *be, void *dst, const void *src, size_t bytes);
void CPU_FN(cpu_download_raw)(gt_backend *be, void *dst, const void *src, size_t bytes);
void CPU_FN(cpu_upload)(gt_backend *be, gt_kind kind, void *dst, const float *src, size_t n);
void CPU_FN(cpu_download)(gt_backend *be, gt_kind kind, float *dst, const void *src, size_t n);
void CPU_FN(cpu_sync)(gt_backend *be);

/* elementwise.c */
void CPU_FN(cpu_add)(gt_backend *be, void *out, const void *a, const void *b, size_t n);
void CPU_FN(cpu_accumulate)(gt_backend *be, void *dst, const void *src, size_t n);

/* embedding.c */
void CPU_FN(cpu_embed_fwd)(gt_backend *be, void *out, const int32_t *tok, const void *wte,
                           float scale, int64_t vstart, int V, int N, int C);
void CPU_FN(cpu_embed_bwd)(gt_backend *be, void *dwte, const void *dout, const int32_t *tok,
                           float scale, int64_t vstart, int V, int N, int C, int pad_id);

/* rmsnorm.c */
void CPU_FN(cpu_rmsnorm_fwd)(gt_backend *be, void *out, void *rstd, const void *x, const void *w,
                             float eps, int N, int C);
void CPU_FN(cpu_rmsnorm_bwd)(gt_backend *be, void *dx, void *dw, const void *dout, const void *x,
                             const void *w, const void *rstd, int N, int C);
void CPU_FN(cpu_add_rmsnorm_fwd)(gt_backend *be, void *res, void *out, void *rstd, const void *a,
                                 const void *b, const void *w, float eps, int N, int C);
void CPU_FN(cpu_rmsnorm_fwd_fp8)(gt_backend *be, void *y, void *y8, void *y8t, void *rstd,
                                 const void *x, const void *w, float eps, int N, int C, gt_dtype fmt,
                                 const float *scale, float *amax);
void CPU_FN(cpu_add_rmsnorm_fwd_fp8)(gt_backend *be, void *res, void *y, void *y8, void *y8t,
                                     void *rstd, const void *a, const void *b, const void *w,
                                     float eps, int N, int C, gt_dtype fmt, const float *scale,
                                     float *amax);

/* matmul.c */
void CPU_FN(cpu_matmul_fwd)(gt_backend *be, void *y, const void *x, const void *w, int N, int IC,
                            int OC);
void CPU_FN(cpu_matmul_bwd)(gt_backend *be, void *dx, void *dw, const void *dy, const void *x,
                            const void *w, int N, int IC, int OC);

/* rope.c */
void CPU_FN(cpu_rope_fwd)(gt_backend *be, void *qkv, const int32_t *pos, float theta, int N, int Hq,
                          int Hkv, int D);
void CPU_FN(cpu_rope_bwd)(gt_backend *be, void *dqkv, const int32_t *pos, float theta, int N,
                          int Hq, int Hkv, int D);

/* attention.c */
void CPU_FN(cpu_attention_fwd)(gt_backend *be, void *out, void *lse, const void *qkv,
                               const int32_t *seg, float scale, int B, int T, int Hq, int Hkv,
                               int D);
void CPU_FN(cpu_attention_bwd)(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                               const void *out, const void *lse, const int32_t *seg, float scale,
                               int B, int T, int Hq, int Hkv, int D);

/* attention_decode.c */
void CPU_FN(cpu_kv_write)(gt_backend *be, void *kc, void *vc, const void *qkv, const int32_t *dst,
                          int N, int Hq, int Hkv, int D, int Tmax);
void CPU_FN(cpu_attention_decode)(gt_backend *be, void *out, const void *qkv, const void *kc,
                                  const void *vc, const int32_t *len, float scale, int B, int Hq,
                                  int Hkv, int D, int Tmax);
void CPU_FN(cpu_argmax_rows)(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V);

/* geglu.c */
void CPU_FN(cpu_geglu_fwd)(gt_backend *be, void *h, const void *a, gt_gelu kind, int N, int F);
void CPU_FN(cpu_geglu_bwd)(gt_backend *be, void *da, const void *dh, const void *a, gt_gelu kind,
                           int N, int F);
void CPU_FN(cpu_geglu_fwd_fp8)(gt_backend *be, void *h, void *h8, void *h8t, const void *a,
                               gt_gelu kind, int N, int F, gt_dtype fmt, const float *scale,
                               float *amax);
void CPU_FN(cpu_geglu_bwd_fp8)(gt_backend *be, void *da, void *da8, void *da8t, const void *dh,
                               const void *a, gt_gelu kind, int N, int F, gt_dtype fmt,
                               const float *scale, float *amax);

/* cross_entropy.c */
void CPU_FN(cpu_ce_partial)(gt_backend *be, void *part, const void *logits, const int32_t *target,
                            int64_t vstart, int V, int N);
void CPU_FN(cpu_ce_finish)(gt_backend *be, void *lse, void *loss_sum, const void *parts,
                           const int32_t *target, int tp, int N);
void CPU_FN(cpu_ce_backward)(gt_backend *be, void *dlogits, const void *logits,
                             const int32_t *target, const void *lse, float dscale, int64_t vstart,
                             int V, int N);

/* optimizer.c */
void CPU_FN(cpu_grad_sumsq)(gt_backend *be, void *out, const void *g, size_t n);
void CPU_FN(cpu_adamw)(gt_backend *be, void *param, void *master, void *m, void *v,
                       const void *grad, size_t n, const gt_adamw_args *args);

/* fp8.c */
void CPU_FN(cpu_fp8_cast)(gt_backend *be, void *out, void *out_t, const void *in, int rows, int cols,
                          gt_dtype fmt, const float *scale, float *amax);
/* One row of fp8_cast, the code fp8_cast and the fused casts share: x[cols] -> out[cols] and
 * out_t[c * ld_t] (either may be NULL), *m = max(*m, max|x|). */
void CPU_FN(cpu_fp8_cast_row)(uint8_t *out, uint8_t *out_t, size_t ld_t, const real *x, int cols,
                              gt_dtype fmt, const float *scale, float *m);
void CPU_FN(cpu_matmul_fp8)(gt_backend *be, void *d, int out_grad, const void *a, gt_dtype a_fmt,
                            const float *a_scale_inv, const void *b, gt_dtype b_fmt,
                            const float *b_scale_inv, int M, int N, int K, int fast_accum);
void CPU_FN(cpu_fp8_update)(gt_backend *be, float *history, float *scale, float *scale_inv,
                            const float *fp8_max, const float *reduced, int first, int n, int count,
                            int len, int algo, float margin);

#endif
