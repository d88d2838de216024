/* The compute interface: every op the model needs, implemented once per backend.
 *
 *   kernels/cpu   reference C; two variants: real = float ("cpu") and real = double ("cpu64")
 *   kernels/cuda  CUDA kernels and cuBLASLt; BF16 activations and weights, FP32 accumulation
 *
 * model/ orchestrates forward and backward through this table only, so one model code path runs on
 * every backend (and, with comm/, at every tensor-parallel layout).
 *
 * Buffers are device pointers of the backend (host memory for the CPU backends). Three storage kinds:
 *   ACT   activations and weights      float (cpu), double (cpu64), bf16 (cuda)
 *   GRAD  parameter gradients          float (cpu), double (cpu64), float (cuda)
 *         (after set_grad_bf16(be, 1): parameter gradients are ACT elements instead, see there)
 *   STAT  per-row statistics and loss  float (cpu), double (cpu64), float (cuda)
 * Token ids, targets, positions and segment ids are int32 on every backend.
 *
 * Shapes are row-major. N = tokens in the micro-batch (B*T), C = hidden size, D = head_dim,
 * Hq/Hkv = query/KV heads held by this rank, F = ffn size held by this rank, V = vocab rows of
 * this rank. A weight W of a linear layer is [out, in] (HF layout): y = x W^T.
 *
 * Conventions for backward ops: an input gradient is overwritten unless its comment says "+=";
 * a parameter gradient (GRAD kind) is accumulated (+=), so micro-batches accumulate — except that
 * the weight gradients of matmul_bwd and matmul_fp8 are overwritten while set_dw_accumulate(0) is
 * in force (the first micro-batch of a step, which then needs no zeroing pass). */
#ifndef GT_OPS_H
#define GT_OPS_H

#include "../core/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_backend gt_backend; /* backend state: stream, library handles, workspaces */

typedef enum { GT_ACT = 0, GT_GRAD, GT_STAT } gt_kind;

typedef enum { GT_GELU_TANH = 0, GT_GELU_ERF } gt_gelu;

/* What a device can do at best, for reports: MFU's denominator and the profile's rooflines. */
typedef struct {
    double bf16_flops;      /* dense BF16 tensor FLOP/s */
    double mem_bytes_per_s; /* memory bandwidth (read + write), bytes/s */
} gt_peak;

/* Dense BF16 peak of an H100/H200 SXM: MFU is reported against it (the Megatron convention;
 * DESIGN.md §6). */
#define GT_H100_BF16_FLOPS 989e12

/* How AdamW keeps its state (optim.state; DESIGN.md §5). Bytes per parameter on the GPU, with the
 * bf16 weights and fp32 gradients: 18, 14, 10. */
typedef enum {
    GT_OPT_FP32 = 0,     /* fp32 master weights, fp32 m and v */
    GT_OPT_BF16_MOMENTS, /* fp32 master weights, m and v in bf16 (rounded to nearest even) */
    GT_OPT_BF16          /* no master: bf16 weights updated with stochastic rounding; bf16 m, v */
} gt_opt_state;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_scale; /* gradients are multiplied by this first (clipping, 1/accumulation) */
    int step;         /* 1-based, for bias correction */
    int state;        /* gt_opt_state */
    uint64_t seed;    /* GT_OPT_BF16: stochastic rounding's bits hash (seed, step, index0 + i) */
    uint64_t index0;  /* element 0's index in the parameter buffer (kernels/bf16_round.h) */
} gt_adamw_args;

typedef struct gt_ops {
    const char *name;
    size_t size[3]; /* bytes of one element of each gt_kind */
    /* 1: the ops run on the host CPU (the CPU backends): there is no device memory and no tensor-core
     * peak, so reports (train's progress lines, plots) show host memory and leave MFU out. */
    int on_host;

    /* ---- lifecycle, and facts about the device for reports ---- */
    /* create: the backend state on device ordinal `device` (the CPU backends have one device and
     * ignore it); destroy waits for queued work, then frees everything create made. */
    gt_backend *(*create)(int device);
    void (*destroy)(gt_backend *be);
    /* The CUDA stream every op runs on (a cudaStream_t), so that NCCL collectives queue behind the
     * ops; NULL on the CPU backends, whose collectives run over MPI. */
    void *(*stream)(gt_backend *be);
    /* Device memory in use, in bytes (0 on the CPU backends: host memory is not reported). */
    size_t (*mem_in_use)(gt_backend *be);
    /* Optional (NULL: no device memory to plan for, the CPU backends). mem_free: device memory
     * free now, in bytes; mem_reserve: bytes the backend may still allocate for itself during a
     * step beyond the op buffers (workspaces made on first use), for the memory plan
     * (train/memory_plan.h). */
    size_t (*mem_free)(gt_backend *be);
    size_t (*mem_reserve)(gt_backend *be);
    void (*device_name)(gt_backend *be, char *buf, size_t len);
    gt_peak (*peak)(gt_backend *be);

    /* ---- memory ---- */
    void *(*alloc)(gt_backend *be, size_t bytes); /* zero-filled; dies when out of memory */
    void (*release)(gt_backend *be, void *p);
    void (*zero)(gt_backend *be, void *p, size_t bytes);
    void (*copy)(gt_backend *be, void *dst, const void *src, size_t bytes); /* device to device */
    void (*upload_raw)(gt_backend *be, void *dst, const void *src, size_t bytes);
    void (*download_raw)(gt_backend *be, void *dst, const void *src, size_t bytes);
    /* Host float32 <-> device elements of the given kind (converted, rounded to nearest even). */
    void (*upload)(gt_backend *be, gt_kind kind, void *dst, const float *src, size_t n);
    void (*download)(gt_backend *be, gt_kind kind, float *dst, const void *src, size_t n);
    void (*sync)(gt_backend *be);

    /* ---- elementwise ---- */
    /* out[n] = a[n] + b[n] (ACT); out may alias a or b. */
    void (*add)(gt_backend *be, void *out, const void *a, const void *b, size_t n);
    /* dst[n] += src[n] (ACT). */
    void (*accumulate)(gt_backend *be, void *dst, const void *src, size_t n);

    /* ---- embedding (vocab-parallel: this rank holds rows [vstart, vstart+V)) ---- */
    /* out[N,C] = wte[tok - vstart] * scale, or 0 when tok is outside this rank's rows.
     * scale is sqrt(hidden_size) already rounded to the ACT dtype by the caller. */
    void (*embed_fwd)(gt_backend *be, void *out, const int32_t *tok, const void *wte, float scale,
                      int64_t vstart, int V, int N, int C);
    /* dwte[tok - vstart] += dout * scale (GRAD), except the padding row pad_id (HF padding_idx);
     * pad_id < 0 means none. */
    void (*embed_bwd)(gt_backend *be, void *dwte, const void *dout, const int32_t *tok, float scale,
                      int64_t vstart, int V, int N, int C, int pad_id);

    /* ---- RMSNorm with zero-centered gamma: y = x * rsqrt(mean(x^2) + eps) * (1 + w) ---- */
    /* out[N,C] (ACT), rstd[N] (STAT), x[N,C], w[C]. Computed in fp32 (fp64 on cpu64). */
    void (*rmsnorm_fwd)(gt_backend *be, void *out, void *rstd, const void *x, const void *w,
                        float eps, int N, int C);
    /* dx[N,C] += (ACT), dw[C] += sum_rows dout * xhat (GRAD). */
    void (*rmsnorm_bwd)(gt_backend *be, void *dx, void *dw, const void *dout, const void *x,
                        const void *w, const void *rstd, int N, int C);
    /* Optional (NULL: the model calls add, then rmsnorm_fwd). A residual connection fused into the
     * norm that reads its sum: res[N,C] = a + b (ACT, as add's out; may alias a or b), then
     * rmsnorm_fwd(out, rstd, res, w, eps, N, C). Bit-identical to that composition; one pass over
     * a and b instead of add's pass plus the norm's read of res. (The backward needs no fused op:
     * rmsnorm_bwd's dx += already adds the norm's gradient into the residual gradient.) */
    void (*add_rmsnorm_fwd)(gt_backend *be, void *res, void *out, void *rstd, const void *a,
                            const void *b, const void *w, float eps, int N, int C);

    /* ---- linear layers: y[N,OC] = x[N,IC] W[OC,IC]^T ---- */
    void (*matmul_fwd)(gt_backend *be, void *y, const void *x, const void *w, int N, int IC, int OC);
    /* dx[N,IC] = dy W (ACT, overwritten; skipped when dx is NULL), dw[OC,IC] += dy^T x (GRAD;
     * skipped when dw is NULL). */
    void (*matmul_bwd)(gt_backend *be, void *dx, void *dw, const void *dy, const void *x,
                       const void *w, int N, int IC, int OC);

    /* ---- rotary embedding, in place on the q and k heads of the fused qkv rows ----
     * qkv[N, (Hq + 2*Hkv) * D] is grouped by KV group g = 0..Hkv-1:
     *   [q heads g*G .. g*G+G-1, k_g, v_g], G = Hq / Hkv, each head D wide.
     * pos[N] is each token's position. Angles: pos * theta^(-2i/D) in fp32; element d pairs with
     * d + D/2 (non-interleaved halves). rope_bwd applies the inverse rotation to dqkv. */
    void (*rope_fwd)(gt_backend *be, void *qkv, const int32_t *pos, float theta, int N, int Hq,
                     int Hkv, int D);
    void (*rope_bwd)(gt_backend *be, void *dqkv, const int32_t *pos, float theta, int N, int Hq,
                     int Hkv, int D);

    /* ---- causal attention over B sequences of T tokens (N = B*T) ----
     * qkv as above (after RoPE). out[N, Hq*D] (ACT), head h at columns h*D.
     * lse[B, Hq, T] (STAT): log-sum-exp of each query row's scaled scores, for the backward.
     * seg[N] (may be NULL): segment (document) id of each token; a query attends only to keys at
     * or before it with the same segment id. scale = head_dim^-0.5. Softmax in fp32. */
    void (*attention_fwd)(gt_backend *be, void *out, void *lse, const void *qkv, const int32_t *seg,
                          float scale, int B, int T, int Hq, int Hkv, int D);
    /* dqkv[N, (Hq+2Hkv)*D] (ACT, overwritten: dq, dk, dv in the fused layout). */
    void (*attention_bwd)(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                          const void *out, const void *lse, const int32_t *seg, float scale, int B,
                          int T, int Hq, int Hkv, int D);

    /* Optional (NULL: nothing to prepare). Called once per micro-batch, right after its segment
     * ids are uploaded to seg[N] (the pointer attention_fwd/bwd are then given), with the same ids
     * on the host: a backend may derive what its attention needs for this mask once instead of
     * per call (the CUDA backend: cuDNN's ragged sequence layout). A seg it was not told of still
     * gets the exact contract, from a slower path. */
    void (*attention_segments)(gt_backend *be, const int32_t *seg, const int32_t *seg_host, int B,
                               int T);

    /* ---- GeGLU: h[N,F] = gelu(a[:, 0:F]) * a[:, F:2F], a = fc1 output [N, 2F] ([gate; up]) ---- */
    void (*geglu_fwd)(gt_backend *be, void *h, const void *a, gt_gelu kind, int N, int F);
    /* da[N,2F] (ACT, overwritten). */
    void (*geglu_bwd)(gt_backend *be, void *da, const void *dh, const void *a, gt_gelu kind, int N,
                      int F);

    /* ---- cross-entropy over vocab-parallel logits[N, V] (columns = vocab ids vstart..vstart+V-1)
     * target < 0 (HF's -100) means the token is not a target.
     * ce_partial: part[N,3] (STAT) = (max_v logit, sum_v exp(logit - max), logit[target] if the
     *   target is in this rank's columns else 0), over this rank's columns.
     * ce_finish: parts[tp, N, 3] from every tp rank (tp = 1 without tensor parallelism) ->
     *   lse[N] (STAT), and loss_sum[0] += sum over targets of (lse - logit[target]) (STAT).
     * ce_backward: dlogits[N,V] = (softmax - onehot(target)) * dscale, rows of non-targets 0.
     *   dlogits may alias logits. */
    void (*ce_partial)(gt_backend *be, void *part, const void *logits, const int32_t *target,
                       int64_t vstart, int V, int N);
    void (*ce_finish)(gt_backend *be, void *lse, void *loss_sum, const void *parts,
                      const int32_t *target, int tp, int N);
    void (*ce_backward)(gt_backend *be, void *dlogits, const void *logits, const int32_t *target,
                        const void *lse, float dscale, int64_t vstart, int V, int N);

    /* Weight gradients written by matmul_bwd and matmul_fp8 (their GRAD outputs) are accumulated,
     * the default, or overwritten (accumulate = 0): the first micro-batch of a step overwrites, so
     * the gradient buffer needs no zeroing pass. Other GRAD outputs always accumulate. */
    void (*set_dw_accumulate)(gt_backend *be, int accumulate);
    /* Parameter gradients in bf16 (on = 1; HF's pure-bf16 recipe) instead of GRAD elements: every
     * op's parameter-gradient operand — embed_bwd's dwte, rmsnorm_bwd's dw, matmul_bwd's dw,
     * matmul_fp8's D with out_grad, grad_sumsq's g, adamw's grad — is then an ACT element (bf16 on
     * CUDA; on the CPU backends a `real` rounded to bf16 precision, to nearest even, at every write,
     * as the CUDA backend stores it). Sums are formed in fp32 and rounded once per op call, so each
     * micro-batch (and each lm_head chunk) adds one rounding. For the backend's lifetime: set before
     * any gradient buffer is used (gt_model_init_grads does); 0 restores GRAD. */
    void (*set_grad_bf16)(gt_backend *be, int on);

    /* ---- initialization ----
     * dst[r, c] (ACT, [rows, cols]) = gt_normal_at(key, (row0 + r) * full_cols + col0 + c, std)
     * (kernels/normal_hash.h): the block at (row0, col0) of a full tensor of full_cols columns;
     * row zero_row of the full tensor (if in the block; -1: none) is zero. */
    void (*init_normal)(gt_backend *be, void *dst, int64_t rows, int64_t cols, int64_t full_cols,
                        int64_t row0, int64_t col0, uint64_t key, float std, int64_t zero_row);

    /* ---- optimizer ---- */
    /* out[0] += sum of squares of g[n] (GRAD), accumulated in fp32 (fp64 on cpu64) into a STAT. */
    void (*grad_sumsq)(gt_backend *be, void *out, const void *g, size_t n);
    /* AdamW on n elements: master/m/v fp32 (fp64 on cpu64; the CPU backends use param as master
     * and master is NULL), param (ACT) gets the rounded master. Decoupled weight decay:
     * p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p). With args->state GT_OPT_BF16_MOMENTS or
     * GT_OPT_BF16, m and v are ACT-kind elements (bf16 on CUDA; on the CPU backends `real`s
     * rounded to bf16), math in fp32, stored rounded to nearest even; GT_OPT_BF16 has no master
     * (NULL) and stores param stochastically rounded (kernels/bf16_round.h; on the CPU backends
     * rounded to bf16 precision the same way). */
    void (*adamw)(gt_backend *be, void *param, void *master, void *m, void *v, const void *grad,
                  size_t n, const gt_adamw_args *args);

    /* ---- FP8 (DESIGN.md §4; NULL where a backend has no FP8) ----
     * FP8 buffers hold one byte per element (GT_E4M3 or GT_E5M2). Scales, inverse scales and amax
     * histories are device float arrays of the model's gt_fp8 state.
     * fp8_cast: out[rows,cols] = fp8(in * scale[0]) and/or out_t[cols,rows] = its transpose (either
     *   may be NULL), rounding to nearest even and saturating; amax[0] = max(amax[0], max|in|)
     *   (pre-scale). in is ACT. */
    void (*fp8_cast)(gt_backend *be, void *out, void *out_t, const void *in, int rows, int cols,
                     gt_dtype fmt, const float *scale, float *amax);
    /* D[M,N] = (A[M,K] * a_scale_inv[0]) (B[N,K] * b_scale_inv[0])^T: both operands K-contiguous
     * (the layout Hopper's FP8 tensor cores take). With out_grad, D is a GRAD buffer and the
     * product is accumulated (+=); else D is ACT and overwritten. fast_accum: the forward GEMMs'
     * faster, less exact accumulation (TransformerEngine's setting; off in backward GEMMs). */
    void (*matmul_fp8)(gt_backend *be, void *d, int out_grad, const void *a, gt_dtype a_fmt,
                       const float *a_scale_inv, const void *b, gt_dtype b_fmt,
                       const float *b_scale_inv, int M, int N, int K, int fast_accum);
    /* The delayed-scaling update (kernels/fp8_scaling.h) of tensors [first, first+n) of a state of
     * `count` tensors: history[len][count] (slot 0 of every tensor contiguous, so one all-reduce
     * covers them), scale/scale_inv/fp8_max[count]; reduced[count] (may be NULL) the all-reduced
     * slot 0. algo: gt_amax_algo. One launch for all n tensors. */
    void (*fp8_update)(gt_backend *be, float *history, float *scale, float *scale_inv,
                       const float *fp8_max, const float *reduced, int first, int n, int count,
                       int len, int algo, float margin);
    /* GeGLU fused with the FP8 cast of its output (TransformerEngine-style: the FP8 model's fc2
     * input and fc1 output gradient are never written in ACT only to be re-read by fp8_cast).
     * geglu_fwd_fp8: h[N,F] (ACT, may be NULL) = geglu_fwd's h, rounded to ACT; h8[N,F] =
     *   fp8(h * scale[0]) and h8t[F,N] = its transpose (either may be NULL); amax[0] =
     *   max(amax[0], max|h|) (pre-scale, of the rounded h). Bit-identical to
     *   geglu_fwd(h, a) then fp8_cast(h8, h8t, h, N, F, fmt, scale, amax).
     * geglu_bwd_fp8: da[N,2F] (ACT, may be NULL; may alias a) = geglu_bwd's da, rounded to ACT;
     *   da8[N,2F] = fp8(da * scale[0]) and da8t[2F,N] = its transpose (rows 0..F-1: the gate
     *   gradient's columns, F..2F-1: the up gradient's), either may be NULL; amax as above.
     *   Bit-identical to geglu_bwd(da, dh, a) then fp8_cast(da8, da8t, da, N, 2F, fmt, scale,
     *   amax). */
    void (*geglu_fwd_fp8)(gt_backend *be, void *h, void *h8, void *h8t, const void *a,
                          gt_gelu kind, int N, int F, gt_dtype fmt, const float *scale,
                          float *amax);
    void (*geglu_bwd_fp8)(gt_backend *be, void *da, void *da8, void *da8t, const void *dh,
                          const void *a, gt_gelu kind, int N, int F, gt_dtype fmt,
                          const float *scale, float *amax);
    /* RMSNorm fused with the FP8 cast of its output (the FP8 model's QKV and fc1 inputs are then
     * never written in ACT: their GEMMs read the FP8 copies, their weight gradients the transposed
     * one, and rmsnorm_bwd needs only x and rstd).
     * rmsnorm_fwd_fp8: rstd[N] (STAT) = rmsnorm_fwd's rstd; y[N,C] (ACT, may be NULL) = rmsnorm_fwd's
     *   out, rounded to ACT; y8[N,C] = fp8(y * scale[0]) and y8t[C,N] = its transpose (either may
     *   be NULL); amax[0] = max(amax[0], max|y|) (pre-scale, of the rounded y). Bit-identical to
     *   rmsnorm_fwd(y, rstd, x, w, eps, N, C) then fp8_cast(y8, y8t, y, N, C, fmt, scale, amax). */
    void (*rmsnorm_fwd_fp8)(gt_backend *be, void *y, void *y8, void *y8t, void *rstd,
                            const void *x, const void *w, float eps, int N, int C, gt_dtype fmt,
                            const float *scale, float *amax);
    /* Optional (NULL: the model calls add, then rmsnorm_fwd_fp8). The residual add fused in front of
     * rmsnorm_fwd_fp8, as add_rmsnorm_fwd in front of rmsnorm_fwd: res[N,C] = a + b (ACT, as add's
     * out; may alias a or b), then rmsnorm_fwd_fp8(y, y8, y8t, rstd, res, w, eps, N, C, fmt, scale,
     * amax). Bit-identical to that composition. */
    void (*add_rmsnorm_fwd_fp8)(gt_backend *be, void *res, void *y, void *y8, void *y8t, void *rstd,
                                const void *a, const void *b, const void *w, float eps, int N, int C,
                                gt_dtype fmt, const float *scale, float *amax);

    /* ---- generation: a KV cache of B sequences, kc and vc [B, Hkv, Tmax, D] (ACT) each ----
     * kv_write: row i of qkv[N, (Hq + 2*Hkv) * D] (fused layout as above, after RoPE) stores its
     *   k_g and v_g at kc/vc[b, g, t, :] with b = dst[i] / Tmax, t = dst[i] % Tmax (dst[N] int32).
     * attention_decode: one query row per sequence, q = the q heads of qkv[B, W]; sequence b
     *   attends to its cache positions 0..len[b]-1 (len[B] int32 >= 1; the new token's K/V is
     *   written by kv_write first); out[B, Hq*D] (ACT). Scores, scale and softmax as
     *   attention_fwd's, so a decode row equals the full forward's row of the same prefix. */
    void (*kv_write)(gt_backend *be, void *kc, void *vc, const void *qkv, const int32_t *dst, int N,
                     int Hq, int Hkv, int D, int Tmax);
    /* Optional (NULL: the model calls rope_fwd, then kv_write). Decode's RoPE fused with the cache
     * write: rope_fwd(qkv, pos, theta, N, Hq, Hkv, D), then kv_write(kc, vc, qkv, dst, N, Hq, Hkv,
     * D, Tmax), bit-identical to that composition, in one launch instead of two. */
    void (*rope_kv_write)(gt_backend *be, void *qkv, void *kc, void *vc, const int32_t *pos,
                          const int32_t *dst, float theta, int N, int Hq, int Hkv, int D, int Tmax);
    void (*attention_decode)(gt_backend *be, void *out, const void *qkv, const void *kc,
                             const void *vc, const int32_t *len, float scale, int B, int Hq,
                             int Hkv, int D, int Tmax);
    /* Greedy decoding without moving logits to the host: for each row of x[N, V] (ACT),
     * val[n] (STAT) = its largest value and idx[n] (int32) = the first column holding it. */
    void (*argmax_rows)(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V);

    /* Optional (NULL: no graphs; the caller runs the ops directly). Stream capture of the ops
     * queued between graph_begin and graph_end (no host synchronization or allocation there), and
     * replays of the instantiated graph graph_end returns, on the backend's stream. */
    void (*graph_begin)(gt_backend *be);
    void *(*graph_end)(gt_backend *be);
    void (*graph_launch)(gt_backend *be, void *graph);
    void (*graph_destroy)(gt_backend *be, void *graph);
} gt_ops;

/* The CPU backends' tables (kernels/backend.h picks a backend by name; tests take these
 * directly). Their state is shared: gt_cpu_backend_create() is the tables' create. */
const gt_ops *gt_cpu_ops(void);   /* float */
const gt_ops *gt_cpu64_ops(void); /* double */
gt_backend *gt_cpu_backend_create(void);
void gt_cpu_backend_destroy(gt_backend *be);

#ifdef __cplusplus
}
#endif

#endif
