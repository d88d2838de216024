/* The Gemma model of one tensor-parallel rank on one backend: parameters, gradients, the
 * activations of one micro-batch, forward and backward. The same code runs on every backend. */
#ifndef GT_MODEL_H
#define GT_MODEL_H

#include "../comm/group.h"
#include "layout.h"

typedef struct {
    void *res;       /* [N, C] residual entering the layer */
    void *ln1;       /* [N, C]; NULL until QKV reads it in BF16 (not with rmsnorm_fwd_fp8) */
    void *rstd1;     /* [N] STAT */
    void *qkv;       /* [N, Q] after RoPE */
    void *att;       /* [N, Hq*D] */
    void *lse;       /* [B, Hq, T] STAT */
    void *res_mid;   /* [N, C] residual after attention */
    void *ln2;       /* [N, C]; NULL until fc1 reads it in BF16 (not with rmsnorm_fwd_fp8) */
    void *rstd2;     /* [N] STAT */
    void *fc1;       /* [N, 2F] */
    void *h;         /* [N, F] GeGLU output; NULL until fc2 reads it in BF16 (not with geglu_fwd_fp8) */
} gt_layer_acts;

typedef struct {
    gt_config cfg;
    gt_layout lay;
    const gt_ops *ops;
    gt_backend *be;
    void *params; /* [lay.count] ACT */
    void *grads;  /* [lay.count] of grad_kind */
    gt_kind grad_kind; /* GT_GRAD, or GT_ACT with bf16 gradients (gt_model_init_grads) */

    /* micro-batch state, sized by gt_model_alloc_batch */
    int B, T, N;
    int ce_chunk;        /* tokens per lm_head/cross-entropy chunk */
    int ce_chunk_cap;    /* 0, or at most this many tokens per chunk (tests of the chunking) */
    int32_t *tokens, *targets, *pos, *seg; /* [N] device */
    gt_layer_acts *acts; /* [L] */
    void *res_final;     /* [N, C] */
    void *lnf, *rstdf;   /* [N, C], [N] */
    void *dlnf;          /* [N, C] gradient of the final norm output (lm_head backward) */
    void *logits;        /* [ce_chunk, V] */
    void *ce_parts;      /* [tp, ce_chunk, 3] STAT */
    void *ce_lse;        /* [ce_chunk] STAT */
    void *loss_sum;      /* [1] STAT */
    void *tmp;           /* [N, C] projection output */
    void *dres;          /* [N, C] gradient of the residual stream */
    void *dbig;          /* [N, max(2F, Q, C, Hq*D)] */
    void *dsmall;        /* [N, max(F, Hq*D, C)] */
    int has_seg;
    int grads_fresh; /* gradients zeroed lazily: the next micro-batch overwrites them */

    struct gt_fp8 *fp8;   /* FP8 GEMM state (model/fp8.h), NULL: BF16 */

    /* tensor parallelism (NULL or size 1: none) */
    gt_group *tp;
    int tp_overlap;       /* overlap the backward's input-gradient sums with weight-gradient GEMMs */
    int tp_started;       /* a tp sum is in flight (gt_model_tp_sum_start) */
    void *ce_part_local;  /* [ce_chunk, 3] STAT: this rank's partials before the all-gather */
    void *kv_sum;         /* [kv_heads, 2, D, C] GRAD: replicated K/V gradients being summed */
    void *sumsq;          /* [3] STAT: squared gradient norms by replication class */
    gt_group *dp_overlap; /* set for a step's last backward: reduce gradients over dp as it goes */
    gt_group *dp_started; /* the group that backward started reductions on; reduce_grads waits */
    /* ZeRO-1 (gt_model_shard_dp): params and grads hold dp * dp_shard elements (lay.count, then zero
     * padding); dp rank r owns elements [r * dp_shard, (r + 1) * dp_shard) of the sums */
    gt_group *dp_shard_group; /* NULL: gradients are all-reduced, every rank owns everything */
    size_t dp_shard;
} gt_model;

/* Allocates parameters (zero) and gradients for rank tp_rank of tp_size. */
int gt_model_init(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                  int tp_size, gt_err *err);
/* The same for a model that only runs forwards (eval, generate): no gradient buffer (4 bytes per
 * parameter on a GPU), so gt_model_backward and gt_model_zero_grads must not be called on it. */
int gt_model_init_forward(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                          int tp_size, gt_err *err);
void gt_model_free(gt_model *m);

/* gt_model_init with, when bf16_grads is set, the parameter gradients in bf16 (ops.h
 * set_grad_bf16, which it calls; HF's pure-bf16 recipe): half the gradient buffer and the bytes
 * every gradient pass moves, each micro-batch's contribution rounded once. The backend then serves
 * every model's gradients in bf16: one kind per backend. */
int gt_model_init_grads(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                        int tp_size, int bf16_grads, gt_err *err);
/* Bytes of one gradient element (ops->size[grad_kind]). */
size_t gt_model_grad_size(const gt_model *m);

/* Reads this rank's slices of an HF checkpoint (directory with config.json and safetensors). */
int gt_model_load_hf(gt_model *m, const char *dir, gt_err *err);

/* The HF name of the first tensor (in buffer order) of which this rank's slice holds a NaN or an
 * infinity, copied into name (len bytes); 0 when every parameter is finite, 1 when one is not. Reads
 * the parameters back in bounded batches (for a diagnosis, not for every step). */
int gt_model_first_nonfinite(const gt_model *m, char *name, size_t len);

/* HF's random initialization: weights ~ normal(0, initializer_range), norms and the padding row
 * zero. Deterministic for a seed. */
void gt_model_init_random(gt_model *m, uint64_t seed);

/* Copies the full HF tensor `name` of the parameters (grads = 0) or the gradients (grads = 1) of this
 * rank's slices into full[rows*cols] (other ranks' slices are left untouched). */
void gt_model_export_tensor(const gt_model *m, int grads, const char *name, float *full);

/* The inverse: writes this rank's slices of the full HF tensor `name` into the parameters
 * (grads = 0) or gradients (grads = 1). With export, moves a model between layouts. */
void gt_model_import_tensor(gt_model *m, int grads, const char *name, const float *full);

/* Bytes of every buffer gt_model_alloc_batch makes (and of the BF16 GEMM inputs the first BF16
 * forward adds), for micro-batches of B sequences of T tokens on a backend of element sizes
 * size[3] (gt_ops.size): the one computation the allocator and the memory plan
 * (train/memory_plan.h) share. ce_chunk_cap as gt_model's. */
typedef struct {
    int ce_chunk;                        /* tokens per lm_head/cross-entropy chunk */
    size_t ids;                          /* each of tokens, targets, pos, seg */
    size_t res, rstd, qkv, att, lse, fc1; /* per layer (res also res_mid, rstd also rstd2) */
    size_t ln, h;                        /* per layer, BF16 GEMM inputs: ln1 and ln2, h */
    size_t nc;                           /* [N, C] ACT: res_final, lnf, dlnf, tmp, dres */
    size_t rstdf, logits, ce_parts, ce_lse, loss_sum, dbig, dsmall;
    size_t ce_part_local;                /* tp's partials before the all-gather (tp > 1) */
    size_t total;                        /* everything above but the BF16 inputs */
    size_t bf16_inputs;                  /* ln1, ln2, h of every layer */
} gt_batch_bytes;
void gt_model_batch_bytes(const gt_layout *L, const size_t size[3], int ce_chunk_cap, int B, int T,
                          gt_batch_bytes *b);

/* Sizes activation buffers for micro-batches of B sequences of T tokens. The BF16 GEMM inputs ln1,
 * ln2 and h are allocated by the first forward that runs their GEMM in BF16. */
void gt_model_alloc_batch(gt_model *m, int B, int T);

/* Frees ln1, ln2 and h of every layer (FP8 calibration ends: the FP8 GEMMs no longer read them; a
 * later BF16 forward allocates them again). */
void gt_model_release_bf16_inputs(gt_model *m);

/* Uploads a micro-batch: tokens, targets (next token id, or -1 for none), positions, and segment
 * ids (NULL: every sequence is one segment), each [B*T] host arrays. */
void gt_model_set_batch(gt_model *m, const int32_t *tokens, const int32_t *targets,
                        const int32_t *pos, const int32_t *seg);

/* Forward pass. Returns the sum of the next-token losses of the micro-batch's targets.
 * With train set, also runs the lm_head / cross-entropy backward with dloss = dscale per target
 * (1 / targets of the whole global batch), leaving gt_model_backward the rest.
 * logits_out (may be NULL): receives all [N, V] logits of this rank as float, V = this rank's real
 * vocabulary columns (its padding rows, if any, produce none). */
double gt_model_forward(gt_model *m, int train, float dscale, float *logits_out);
/* The evaluation forward without the lm_head: m->lnf[N, C] = the final norm's output, and every
 * layer's acts[l].qkv (after RoPE) for a KV cache (model/decoder.h). */
void gt_model_forward_body(gt_model *m);
/* x[N, C] = a + b, then the RMSNorm of x with the weights at parameter offset w into y (ACT) and
 * rstd (STAT); b NULL: x already holds the norm's input, nothing is added. The forward's BF16 and the
 * decoder's residual adds go through it (the FP8 forward's norm writes its FP8 copies instead). */
void gt_model_add_norm(gt_model *m, void *x, const void *a, const void *b, void *y, void *rstd, size_t w, int N);

/* Backward pass after a training forward: accumulates into m->grads. */
void gt_model_backward(gt_model *m);

void gt_model_zero_grads(gt_model *m);

/* Makes the model tensor-parallel over group tp (whose size must equal the layout's tp_size). */
void gt_model_set_tp(gt_model *m, gt_group *tp);

/* Before the last micro-batch's backward of a step: that backward starts the dp all-reduce of each
 * layer's gradients as soon as the layer is done (on NCCL, on its own stream, overlapping the
 * layers still to come); gt_model_reduce_grads then only waits for them. */
void gt_model_overlap_dp(gt_model *m, gt_group *dp);
/* Whether the backward sums column-parallel input gradients over tp while the weight gradients'
 * GEMMs run (default on; the results are the same either way). */
void gt_model_overlap_tp(gt_model *m, int on);

/* Once per optimizer step, after all micro-batches: all-reduces every gradient over dp (NULL: no
 * dp; already started by an overlapped backward: waits for it), then sums the gradients of K/V heads
 * replicated across tp ranks (num_kv_heads < tp). Sharded over dp (gt_model_shard_dp): reduce-scatters
 * them instead, and only the rank's own range (gt_model_shard_range) holds the sums afterwards. */
void gt_model_reduce_grads(gt_model *m, gt_group *dp);

/* Squared L2 norm of the whole model's gradient, each parameter counted once across tp ranks
 * (replicated norms and K/V heads are not counted twice); identical on every rank. Sharded over dp:
 * each rank's range is summed, then the sums over dp. */
double gt_model_grad_sumsq(gt_model *m);

/* ZeRO-1 (model/dp_shard.c): splits the parameter and gradient buffers into dp->size equal blocks
 * (padding them to dp->size * ceil(count / dp->size) elements, contents kept), dp rank r owning
 * block r: from then on gradients are reduced onto their owner only (overlapped: each layer's by its
 * backward) and gt_model_dp_gather_params brings the owners' parameters to every rank. No-op for
 * NULL or a group of one. Call once, before anything keeps pointers into m->params or m->grads. */
void gt_model_shard_dp(gt_model *m, gt_group *dp);
/* The rank's own elements [lo, hi) of the buffers (lo <= hi <= lay.count; all of them unsharded). */
void gt_model_shard_range(const gt_model *m, size_t *lo, size_t *hi);
/* Sharded: every rank's block of the parameters to every rank (all-gather over dp, in place). */
void gt_model_dp_gather_params(gt_model *m);

#endif
