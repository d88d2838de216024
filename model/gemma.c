/* Forward and backward of Gemma for one micro-batch, written once over the gt_ops interface. */
#include <math.h>
#include <stdlib.h>

#include "model.h"
#include "linear.h"
#include "tp.h"

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])
#define GRAD(m, off) ((char *)(m)->grads + (off) * gt_model_grad_size(m))
#define ROWS(m, kind, base, row, width)                                                            \
    ((char *)(base) + (size_t)(row) * (size_t)(width) * (m)->ops->size[kind])

/* grads: 0 none (forward only), 1 GRAD elements, 2 bf16 (ACT elements, the backend told so). */
static int model_init(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                      int tp_size, int grads, gt_err *err) {
    memset(m, 0, sizeof *m);
    if (gt_config_validate(cfg, "model config", err)) return -1;
    if (gt_layout_init(&m->lay, cfg, tp_rank, tp_size, err)) return -1;
    m->cfg = *cfg;
    m->ops = ops;
    m->be = be;
    m->tp_overlap = 1;
    m->grad_kind = grads == 2 ? GT_ACT : GT_GRAD;
    if (grads == 2) ops->set_grad_bf16(be, 1);
    m->params = ops->alloc(be, m->lay.count * ops->size[GT_ACT]);
    if (grads) m->grads = ops->alloc(be, m->lay.count * gt_model_grad_size(m));
    return 0;
}

int gt_model_init(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                  int tp_size, gt_err *err) {
    return model_init(m, cfg, ops, be, tp_rank, tp_size, 1, err);
}

int gt_model_init_grads(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                        int tp_size, int bf16_grads, gt_err *err) {
    return model_init(m, cfg, ops, be, tp_rank, tp_size, bf16_grads ? 2 : 1, err);
}

size_t gt_model_grad_size(const gt_model *m) { return m->ops->size[m->grad_kind]; }

int gt_model_init_forward(gt_model *m, const gt_config *cfg, const gt_ops *ops, gt_backend *be, int tp_rank,
                          int tp_size, gt_err *err) {
    return model_init(m, cfg, ops, be, tp_rank, tp_size, 0, err);
}

static void free_batch(gt_model *m) {
    const gt_ops *o = m->ops;
    if (!m->acts) return;
    for (int l = 0; l < m->lay.L; l++) {
        gt_layer_acts *a = &m->acts[l];
        void *bufs[] = {a->res, a->ln1, a->rstd1, a->qkv, a->att, a->lse,
                        a->res_mid, a->ln2, a->rstd2, a->fc1, a->h};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->release(m->be, bufs[i]);
    }
    free(m->acts);
    m->acts = NULL;
    void *bufs[] = {m->tokens, m->targets, m->pos, m->seg, m->res_final, m->lnf, m->rstdf,
                    m->dlnf, m->logits, m->ce_parts, m->ce_lse, m->loss_sum, m->tmp,
                    m->dres, m->dbig, m->dsmall, m->ce_part_local};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->release(m->be, bufs[i]);
    m->ce_part_local = NULL;
}

void gt_model_free(gt_model *m) {
    if (!m->ops) return;
    gt_model_fp8_free(m);
    free_batch(m);
    m->ops->release(m->be, m->params);
    m->ops->release(m->be, m->grads);
    m->ops->release(m->be, m->kv_sum);
    m->ops->release(m->be, m->sumsq);
    gt_layout_free(&m->lay);
    m->ops = NULL;
}

static size_t max3(size_t a, size_t b, size_t c) {
    size_t x = a > b ? a : b;
    return x > c ? x : c;
}

void gt_model_batch_bytes(const gt_layout *L, const size_t size[3], int ce_chunk_cap, int B, int T,
                          gt_batch_bytes *b) {
    size_t N = (size_t)B * T, C = (size_t)L->C, act = size[GT_ACT], st = size[GT_STAT];
    size_t HD = (size_t)L->Hq * L->D;
    memset(b, 0, sizeof *b);
    /* Logits exist one chunk of tokens at a time, at most ~1 GiB of ACT elements (2048 tokens of
     * a 256k vocabulary in bf16): large enough that the lm_head GEMMs run at full speed and its
     * FP32 weight gradient is read and written only a few times per micro-batch. */
    size_t chunk = ((size_t)1 << 30) / act / (size_t)L->V;
    if (chunk > 64) chunk -= chunk % 64;
    if (ce_chunk_cap > 0 && chunk > (size_t)ce_chunk_cap) chunk = (size_t)ce_chunk_cap;
    if (chunk < 1) chunk = 1;
    b->ce_chunk = (int)(chunk < N ? chunk : N);
    size_t cc = (size_t)b->ce_chunk;
    b->ids = N * sizeof(int32_t);
    b->res = N * C * act;
    b->rstd = N * st;
    b->qkv = N * (size_t)L->Q * act;
    b->att = N * HD * act;
    b->lse = N * (size_t)L->Hq * st;
    b->fc1 = N * 2 * (size_t)L->F * act;
    b->ln = N * C * act;
    b->h = N * (size_t)L->F * act;
    b->nc = N * C * act;
    b->rstdf = N * st;
    b->logits = cc * L->V * act;
    b->ce_parts = (size_t)L->tp_size * cc * 3 * st;
    b->ce_lse = cc * st;
    b->loss_sum = st;
    b->dbig = N * max3(2 * (size_t)L->F, (size_t)L->Q, max3(C, HD, 1)) * act;
    b->dsmall = N * max3((size_t)L->F, HD, C) * act;
    b->ce_part_local = L->tp_size > 1 ? cc * 3 * st : 0;
    size_t layer = 2 * b->res + 2 * b->rstd + b->qkv + b->att + b->lse + b->fc1;
    b->total = 4 * b->ids + (size_t)L->L * layer + 5 * b->nc + b->rstdf + b->logits + b->ce_parts + b->ce_lse +
               b->loss_sum + b->dbig + b->dsmall + b->ce_part_local;
    b->bf16_inputs = (size_t)L->L * (2 * b->ln + b->h);
}

void gt_model_alloc_batch(gt_model *m, int B, int T) {
    if (m->acts && m->B == B && m->T == T) return;
    free_batch(m);
    const gt_ops *o = m->ops;
    gt_backend *be = m->be;
    const gt_layout *L = &m->lay;
    gt_batch_bytes z;
    gt_model_batch_bytes(L, o->size, m->ce_chunk_cap, B, T, &z);
    m->B = B;
    m->T = T;
    m->N = B * T;
    m->ce_chunk = z.ce_chunk;
    m->tokens = o->alloc(be, z.ids);
    m->targets = o->alloc(be, z.ids);
    m->pos = o->alloc(be, z.ids);
    m->seg = o->alloc(be, z.ids);
    m->acts = gt_calloc((size_t)L->L, sizeof *m->acts);
    for (int l = 0; l < L->L; l++) {
        gt_layer_acts *a = &m->acts[l];
        a->res = o->alloc(be, z.res);
        a->rstd1 = o->alloc(be, z.rstd);
        a->qkv = o->alloc(be, z.qkv);
        a->att = o->alloc(be, z.att);
        a->lse = o->alloc(be, z.lse);
        a->res_mid = o->alloc(be, z.res);
        a->rstd2 = o->alloc(be, z.rstd);
        a->fc1 = o->alloc(be, z.fc1);
    }
    m->res_final = o->alloc(be, z.nc);
    m->lnf = o->alloc(be, z.nc);
    m->rstdf = o->alloc(be, z.rstdf);
    m->dlnf = o->alloc(be, z.nc);
    m->logits = o->alloc(be, z.logits);
    m->ce_parts = o->alloc(be, z.ce_parts);
    m->ce_lse = o->alloc(be, z.ce_lse);
    m->loss_sum = o->alloc(be, z.loss_sum);
    m->tmp = o->alloc(be, z.nc);
    m->dres = o->alloc(be, z.nc);
    m->dbig = o->alloc(be, z.dbig);
    m->dsmall = o->alloc(be, z.dsmall);
}

/* ln1, ln2 and h exist only while a GEMM reads them in BF16: with FP8 GEMMs fed by the fused norm
 * and GeGLU casts they are never written (Gemma-2B: 3 GB of a micro-batch of 4096 tokens). */
static void *bf16_input(gt_model *m, void **buf, size_t bytes) {
    if (!*buf) *buf = m->ops->alloc(m->be, bytes);
    return *buf;
}

/* gt_batch_bytes' ln (ln1, ln2) and h of the current micro-batch. */
static size_t input_bytes(const gt_model *m, int h) {
    gt_batch_bytes z;
    gt_model_batch_bytes(&m->lay, m->ops->size, m->ce_chunk_cap, m->B, m->T, &z);
    return h ? z.h : z.ln;
}

void gt_model_release_bf16_inputs(gt_model *m) {
    for (int l = 0; m->acts && l < m->lay.L; l++) {
        gt_layer_acts *a = &m->acts[l];
        void **bufs[] = {&a->ln1, &a->ln2, &a->h};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
            m->ops->release(m->be, *bufs[i]);
            *bufs[i] = NULL;
        }
    }
}

void gt_model_set_batch(gt_model *m, const int32_t *tokens, const int32_t *targets,
                        const int32_t *pos, const int32_t *seg) {
    size_t bytes = (size_t)m->N * sizeof(int32_t);
    m->ops->upload_raw(m->be, m->tokens, tokens, bytes);
    m->ops->upload_raw(m->be, m->targets, targets, bytes);
    m->ops->upload_raw(m->be, m->pos, pos, bytes);
    m->has_seg = seg != NULL;
    if (seg) m->ops->upload_raw(m->be, m->seg, seg, bytes);
    if (seg && m->ops->attention_segments)
        m->ops->attention_segments(m->be, m->seg, seg, m->B, m->T);
}

/* Lazy: the next training forward/backward overwrites the weight gradients instead of adding to
 * them (ops set_dw_accumulate), which saves a pass over the whole FP32 gradient buffer; only the
 * norm gradients, which are always accumulated, are zeroed here. Every other gradient is written
 * by one GEMM per micro-batch (the embedding's first by the lm_head, then added to by the lookup). */
void gt_model_zero_grads(gt_model *m) {
    GT_ASSERT(m->grads, "gradients of a forward-only model (gt_model_init_forward)");
    gt_model_dp_finish(m);
    const gt_ops *o = m->ops;
    const gt_layout *L = &m->lay;
    size_t g = gt_model_grad_size(m), C = (size_t)L->C;
    if (!o->set_dw_accumulate) {
        o->zero(m->be, m->grads, L->count * g);
        return;
    }
    for (int l = 0; l < L->L; l++) {
        o->zero(m->be, GRAD(m, L->layer[l].ln1), C * g);
        o->zero(m->be, GRAD(m, L->layer[l].ln2), C * g);
    }
    o->zero(m->be, GRAD(m, L->lnf), C * g);
    m->grads_fresh = 1;
}

static void dw_accumulate(gt_model *m, int on) {
    if (m->ops->set_dw_accumulate) m->ops->set_dw_accumulate(m->be, on);
}

/* sqrt(hidden_size) rounded to the activation dtype, as HF's normalizer tensor is. */
static float embed_scale(const gt_model *m) {
    float s = sqrtf((float)m->lay.C);
    return m->ops->size[GT_ACT] == 2 ? gt_round_bf16(s) : s;
}

static float attn_scale(const gt_model *m) { return (float)(1.0 / sqrt((double)m->lay.D)); }

/* model.h: one fused pass where the backend has add_rmsnorm_fwd (bit-identical to add then
 * rmsnorm_fwd, kernels/ops.h). */
void gt_model_add_norm(gt_model *m, void *x, const void *a, const void *b, void *y, void *rstd, size_t w, int N) {
    const gt_ops *o = m->ops;
    int C = m->lay.C;
    float eps = (float)m->cfg.rms_norm_eps;
    if (b && o->add_rmsnorm_fwd) {
        o->add_rmsnorm_fwd(m->be, x, y, rstd, a, b, PARAM(m, w), eps, N, C);
        return;
    }
    if (b) o->add(m->be, x, a, b, (size_t)N * C);
    o->rmsnorm_fwd(m->be, y, rstd, x, PARAM(m, w), eps, N, C);
}

/* The norm in front of QKV (ln1, l = 0..L-1) or fc1 (ln2) of layer l, over x = a + b (b NULL: x
 * as it is), and the GEMM after it, into out [N, OC]. In FP8 the GEMM reads only the FP8 copies
 * of its input (the forward x8, the weight gradient x8T) and rmsnorm_bwd needs only the residual
 * and rstd: the fused norm writes the copies and rstd, the ACT norm output is never stored. The
 * residual add is fused into the norm where the backend can (add_rmsnorm_fwd_fp8, add_rmsnorm_fwd:
 * bit-identical to add then the norm). */
static void norm_linear(gt_model *m, int l, int gemm, void *x, const void *a, const void *b, void **y,
                        void *rstd, size_t w, void *out, int OC, int train) {
    const gt_ops *o = m->ops;
    int N = m->N, C = m->lay.C;
    size_t wgemm = gemm == GT_GEMM_QKV ? m->lay.layer[l].qkv : m->lay.layer[l].fc1;
    gt_fp8_target x8;
    float eps = (float)m->cfg.rms_norm_eps;
    if (o->rmsnorm_fwd_fp8 && gt_linear_fp8_input(m, l, gemm, N, train, &x8)) {
        if (b && o->add_rmsnorm_fwd_fp8) {
            o->add_rmsnorm_fwd_fp8(m->be, x, NULL, x8.x8, x8.x8t, rstd, a, b, PARAM(m, w), eps, N, C, GT_E4M3,
                                   x8.scale, x8.amax);
        } else {
            if (b) o->add(m->be, x, a, b, (size_t)N * C);
            o->rmsnorm_fwd_fp8(m->be, NULL, x8.x8, x8.x8t, rstd, x, PARAM(m, w), eps, N, C, GT_E4M3, x8.scale,
                               x8.amax);
        }
        gt_linear_fwd(m, l, gemm, out, NULL, wgemm, N, C, OC, train);
    } else {
        gt_model_add_norm(m, x, a, b, bf16_input(m, y, input_bytes(m, 0)), rstd, w, m->N);
        gt_linear_fwd(m, l, gemm, out, *y, wgemm, N, C, OC, train);
    }
}

/* Layer l from its input residual a->res to res_mid and, in m->tmp, its MLP output (tp-summed).
 * The layer's output residual res_mid + tmp is the next norm's x = a + b: the next layer's ln1
 * (norm_linear) or the final norm (body_forward) adds it, fused into that norm. Layer 0's input is
 * the embedding (prev_mid NULL); layer l > 0 gets layer l-1's res_mid, and m->tmp still holds
 * layer l-1's MLP output when it starts. */
static void layer_forward(gt_model *m, int l, const void *prev_mid, int train) {
    const gt_ops *o = m->ops;
    gt_backend *be = m->be;
    const gt_layout *L = &m->lay;
    const gt_layer_offsets *w = &L->layer[l];
    gt_layer_acts *a = &m->acts[l];
    int N = m->N, C = L->C, HD = L->Hq * L->D;
    const int32_t *seg = m->has_seg ? m->seg : NULL;

    norm_linear(m, l, GT_GEMM_QKV, a->res, prev_mid, prev_mid ? m->tmp : NULL, &a->ln1, a->rstd1, w->ln1, a->qkv,
                L->Q, train);
    o->rope_fwd(be, a->qkv, m->pos, (float)m->cfg.rope_theta, N, L->Hq, L->Hkv, L->D);
    o->attention_fwd(be, a->att, a->lse, a->qkv, seg, attn_scale(m), m->B, m->T, L->Hq, L->Hkv, L->D);
    gt_linear_fwd(m, l, GT_GEMM_O, m->tmp, a->att, w->o, N, HD, C, train);
    gt_model_tp_sum(m, m->tmp, (size_t)N * C, GT_ACT); /* row-parallel o_proj */
    norm_linear(m, l, GT_GEMM_FC1, a->res_mid, a->res, m->tmp, &a->ln2, a->rstd2, w->ln2, a->fc1, 2 * L->F, train);
    gt_fp8_target h8;
    if (o->geglu_fwd_fp8 && gt_linear_fp8_input(m, l, GT_GEMM_FC2, N, train, &h8)) {
        /* fc2 in FP8 reads only the FP8 copies of h: GeGLU writes them, h itself is never stored */
        o->geglu_fwd_fp8(be, NULL, h8.x8, h8.x8t, a->fc1, m->cfg.act, N, L->F, GT_E4M3, h8.scale, h8.amax);
        gt_linear_fwd(m, l, GT_GEMM_FC2, m->tmp, NULL, w->fc2, N, L->F, C, train);
    } else {
        o->geglu_fwd(be, bf16_input(m, &a->h, input_bytes(m, 1)), a->fc1, m->cfg.act, N, L->F);
        gt_linear_fwd(m, l, GT_GEMM_FC2, m->tmp, a->h, w->fc2, N, L->F, C, train);
    }
    gt_model_tp_sum(m, m->tmp, (size_t)N * C, GT_ACT); /* row-parallel fc2 */
}

/* lm_head and cross-entropy over chunks of tokens, so that only one chunk of logits exists. */
static double head_forward(gt_model *m, int train, float dscale, float *logits_out) {
    const gt_ops *o = m->ops;
    gt_backend *be = m->be;
    const gt_layout *L = &m->lay;
    int C = L->C;
    /* this rank's real vocabulary columns: the last rank's padding rows take no part */
    int V = gt_model_head_vocab(m);
    o->zero(be, m->loss_sum, o->size[GT_STAT]);
    for (int n0 = 0; n0 < m->N; n0 += m->ce_chunk) {
        int n = m->N - n0 < m->ce_chunk ? m->N - n0 : m->ce_chunk;
        const void *x = ROWS(m, GT_ACT, m->lnf, n0, C);
        const int32_t *tgt = m->targets + n0;
        gt_linear_fwd(m, L->L, 0, m->logits, x, L->wte, n, C, V, train);
        if (logits_out) o->download(be, GT_ACT, logits_out + (size_t)n0 * V, m->logits, (size_t)n * V);
        gt_model_ce_parts(m, m->logits, tgt, n, V);
        o->ce_finish(be, m->ce_lse, m->loss_sum, m->ce_parts, tgt, m->tp ? m->tp->size : 1, n);
        if (!train) continue;
        o->ce_backward(be, m->logits, m->logits, tgt, m->ce_lse, dscale, L->vstart, V, n);
        dw_accumulate(m, !(m->grads_fresh && n0 == 0)); /* the first chunk writes d(wte) */
        gt_linear_bwd(m, L->L, 0, ROWS(m, GT_ACT, m->dlnf, n0, C), m->logits, x, L->wte, n, C, V, 0);
    }
    dw_accumulate(m, 1);
    /* Read the STAT element raw so that the float64 backend keeps its precision. */
    double loss64 = 0;
    float loss32 = 0;
    if (o->size[GT_STAT] == sizeof loss64) o->download_raw(be, &loss64, m->loss_sum, sizeof loss64);
    else o->download_raw(be, &loss32, m->loss_sum, sizeof loss32), loss64 = loss32;
    return loss64;
}

/* Embedding, layers and the final norm (into m->lnf): the forward up to the lm_head. */
static void body_forward(gt_model *m, int train) {
    const gt_ops *o = m->ops;
    const gt_layout *L = &m->lay;
    int N = m->N, C = L->C;
    o->embed_fwd(m->be, m->acts[0].res, m->tokens, PARAM(m, L->wte), embed_scale(m), L->vstart, L->V,
                 N, C);
    gt_model_tp_sum(m, m->acts[0].res, (size_t)N * C, GT_ACT); /* vocab-parallel embedding */
    if (train) gt_model_fp8_before_forward(m);
    for (int l = 0; l < L->L; l++) layer_forward(m, l, l ? m->acts[l - 1].res_mid : NULL, train);
    /* The last layer's output residual, res_final = res_mid + tmp, with the final norm. That norm is
     * never fused with an FP8 cast (the lm_head runs in chunks of ce_chunk tokens, and in FP8
     * (fp8.lm_head) gt_linear_fwd casts each chunk of lnf into FP8 buffers sized for one chunk just
     * before that chunk's GEMMs, so a norm fused over all N tokens would have nowhere to put its FP8
     * copies; in BF16 (the default) the GEMMs read lnf itself), only with the residual add. */
    gt_model_add_norm(m, m->res_final, m->acts[L->L - 1].res_mid, m->tmp, m->lnf, m->rstdf, L->lnf, m->N);
}

void gt_model_forward_body(gt_model *m) { body_forward(m, 0); }

double gt_model_forward(gt_model *m, int train, float dscale, float *logits_out) {
    if (train) gt_model_dp_finish(m); /* the lm_head writes d(wte) */
    body_forward(m, train);
    double loss = head_forward(m, train, dscale, logits_out);
    if (train) gt_model_fp8_after_forward(m); /* the lm_head's backward ran with the forward's scales */
    return loss;
}

/* On entry m->dres = dloss/d(output residual of layer l); on exit = dloss/d(input residual). */
static void layer_backward(gt_model *m, int l) {
    const gt_ops *o = m->ops;
    gt_backend *be = m->be;
    const gt_layout *L = &m->lay;
    const gt_layer_offsets *w = &L->layer[l];
    gt_layer_acts *a = &m->acts[l];
    int N = m->N, C = L->C, HD = L->Hq * L->D;
    const int32_t *seg = m->has_seg ? m->seg : NULL;

    /* MLP: res_out = res_mid + fc2(geglu(fc1(ln2(res_mid)))) */
    gt_linear_bwd(m, l, GT_GEMM_FC2, m->dsmall, m->dres, a->h, w->fc2, N, L->F, C, 0);
    /* fc1 is column-parallel: its d(input) is summed over tp (the last argument of gt_linear_bwd) */
    gt_fp8_target d8;
    if (o->geglu_bwd_fp8 && gt_linear_fp8_grad(m, l, GT_GEMM_FC1, &d8)) {
        /* fc1's backward in FP8 reads only the E5M2 copies of d(fc1): GeGLU's backward writes them */
        o->geglu_bwd_fp8(be, NULL, d8.x8, d8.x8t, m->dsmall, a->fc1, m->cfg.act, N, L->F, GT_E5M2, d8.scale, d8.amax);
        gt_linear_bwd(m, l, GT_GEMM_FC1, m->tmp, NULL, a->ln2, w->fc1, N, C, 2 * L->F, 1);
    } else {
        o->geglu_bwd(be, m->dbig, m->dsmall, a->fc1, m->cfg.act, N, L->F);
        gt_linear_bwd(m, l, GT_GEMM_FC1, m->tmp, m->dbig, a->ln2, w->fc1, N, C, 2 * L->F, 1);
    }
    o->rmsnorm_bwd(be, m->dres, GRAD(m, w->ln2), m->tmp, a->res_mid, PARAM(m, w->ln2), a->rstd2, N, C);

    /* Attention: res_mid = res + o(attn(rope(qkv(ln1(res))))) */
    gt_linear_bwd(m, l, GT_GEMM_O, m->dsmall, m->dres, a->att, w->o, N, HD, C, 0);
    o->attention_bwd(be, m->dbig, m->dsmall, a->qkv, a->att, a->lse, seg, attn_scale(m), m->B, m->T,
                     L->Hq, L->Hkv, L->D);
    o->rope_bwd(be, m->dbig, m->pos, (float)m->cfg.rope_theta, N, L->Hq, L->Hkv, L->D);
    gt_linear_bwd(m, l, GT_GEMM_QKV, m->tmp, m->dbig, a->ln1, w->qkv, N, C, L->Q, 1); /* column-parallel */
    o->rmsnorm_bwd(be, m->dres, GRAD(m, w->ln1), m->tmp, a->res, PARAM(m, w->ln1), a->rstd1, N, C);
}

void gt_model_backward(gt_model *m) {
    GT_ASSERT(m->grads, "backward of a forward-only model (gt_model_init_forward)");
    const gt_ops *o = m->ops;
    const gt_layout *L = &m->lay;
    int N = m->N, C = L->C;
    o->zero(m->be, m->dres, (size_t)N * C * o->size[GT_ACT]);
    dw_accumulate(m, !m->grads_fresh);
    gt_model_tp_sum(m, m->dlnf, (size_t)N * C, GT_ACT); /* vocab-parallel lm_head: d(input) */
    o->rmsnorm_bwd(m->be, m->dres, GRAD(m, L->lnf), m->dlnf, m->res_final, PARAM(m, L->lnf), m->rstdf,
                   N, C);
    for (int l = L->L - 1; l >= 0; l--) {
        layer_backward(m, l);
        size_t end = l + 1 < L->L ? L->layer[l + 1].ln1 : L->lnf;
        gt_model_dp_start(m, L->layer[l].ln1, end - L->layer[l].ln1); /* layer l's gradients are final */
    }
    o->embed_bwd(m->be, GRAD(m, L->wte), m->dres, m->tokens, embed_scale(m), L->vstart, L->V, N, C,
                 m->cfg.pad_token_id);
    dw_accumulate(m, 1);
    m->grads_fresh = 0;
    gt_model_dp_start(m, L->wte, L->layer[0].ln1 - L->wte); /* the tied embedding */
    gt_model_dp_start(m, L->lnf, L->count - L->lnf);        /* the final norm */
    m->dp_overlap = NULL;
    gt_model_fp8_after_backward(m);
}
