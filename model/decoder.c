/* KV-cache generation over the op table (model/decoder.h). */
#include "decoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linear.h"
#include "tp.h"

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])

static void *act_alloc(gt_decoder *d, size_t elems) {
    return d->m->ops->alloc(d->m->be, elems * d->m->ops->size[GT_ACT]);
}

static int tp_size(const gt_decoder *d) { return d->m->tp ? d->m->tp->size : 1; }

/* The rows a GEMM over `rows` rows runs on: with FP8, rounded up to 16 (model/linear.c runs FP8
 * only on multiples of 16 rows; decoder.h). */
static int gemm_rows(const gt_decoder *d, int rows) { return d->fp8 ? (rows + 15) / 16 * 16 : rows; }

/* A step activation of R rows of `width`, zeroed: the padding rows a GEMM reads hold finite values. */
static void *step_alloc(gt_decoder *d, int R, size_t width) {
    void *p = act_alloc(d, (size_t)R * width);
    d->m->ops->zero(d->m->be, p, (size_t)R * width * d->m->ops->size[GT_ACT]);
    return p;
}

int gt_decoder_init(gt_decoder *d, gt_model *m, int B, int Tmax, gt_err *err) {
    memset(d, 0, sizeof *d);
    const gt_layout *L = &m->lay;
    if (B < 1) return gt_fail(err, "generate: no sequences");
    if (Tmax < 1 || Tmax > m->cfg.max_position_embeddings)
        return gt_fail(err, "generate: %d positions (prompt + new tokens) exceed the model's context of %d", Tmax,
                       m->cfg.max_position_embeddings);
    const gt_ops *o = m->ops;
    d->m = m;
    d->B = B;
    d->Tmax = Tmax;
    d->V = L->V;
    d->fp8 = m->fp8 != NULL;
    int R = gemm_rows(d, B), prefill = gemm_rows(d, Tmax);
    if (d->fp8) gt_model_fp8_inference(m, R > prefill ? R : prefill);
    size_t cache = (size_t)B * L->Hkv * Tmax * L->D, C = (size_t)L->C;
    d->kc = gt_calloc((size_t)L->L, sizeof *d->kc);
    d->vc = gt_calloc((size_t)L->L, sizeof *d->vc);
    for (int l = 0; l < L->L; l++) {
        d->kc[l] = act_alloc(d, cache);
        d->vc[l] = act_alloc(d, cache);
    }
    d->inputs = o->alloc(m->be, 4 * (size_t)B * sizeof(int32_t));
    d->tok = d->inputs, d->pos = d->inputs + B, d->dst = d->inputs + 2 * B, d->len = d->inputs + 3 * B;
    d->best_val = o->alloc(m->be, (size_t)B * o->size[GT_STAT]);
    d->best_idx = o->alloc(m->be, (size_t)B * sizeof(int32_t));
    if (tp_size(d) > 1) {
        d->gathered_best = o->alloc(m->be, (size_t)tp_size(d) * B * o->size[GT_STAT]);
        d->gathered_idx = o->alloc(m->be, (size_t)tp_size(d) * B * sizeof(int32_t));
    }
    d->prefill_dst = o->alloc(m->be, (size_t)Tmax * sizeof(int32_t));
    d->x = step_alloc(d, R, C);
    d->xmid = step_alloc(d, R, C);
    d->ln = step_alloc(d, R, C);
    d->tmp = step_alloc(d, R, C);
    d->qkv = step_alloc(d, R, (size_t)L->Q);
    d->att = step_alloc(d, R, (size_t)L->Hq * L->D);
    d->fc1 = step_alloc(d, R, 2 * (size_t)L->F);
    d->h = step_alloc(d, R, (size_t)L->F);
    d->rstd = o->alloc(m->be, (size_t)R * o->size[GT_STAT]);
    d->logits = step_alloc(d, R, (size_t)d->V);
    if (tp_size(d) > 1) d->gathered = act_alloc(d, (size_t)tp_size(d) * B * d->V);
    d->host = gt_malloc((size_t)tp_size(d) * B * d->V * sizeof(float));
    /* Graphs where the backend has them, at tp = 1: a captured step holds no collective, whose
     * bookkeeping (the watchdog's) runs on the host. */
    d->graphs = o->graph_begin != NULL && tp_size(d) == 1;
    return 0;
}

static void drop_graphs(gt_decoder *d) {
    for (int i = 0; i < GT_DECODER_BUCKETS; i++)
        if (d->graph[i]) {
            d->m->ops->graph_destroy(d->m->be, d->graph[i]);
            d->graph[i] = NULL;
        }
}

void gt_decoder_graphs(gt_decoder *d, int on) {
    if (!on) drop_graphs(d);
    d->graphs = on && d->m->ops->graph_begin != NULL && tp_size(d) == 1;
}

void gt_decoder_free(gt_decoder *d) {
    if (!d->m) return;
    drop_graphs(d);
    const gt_ops *o = d->m->ops;
    gt_backend *be = d->m->be;
    for (int l = 0; l < d->m->lay.L; l++) {
        o->release(be, d->kc[l]);
        o->release(be, d->vc[l]);
    }
    free(d->kc);
    free(d->vc);
    void *bufs[] = {d->inputs, d->best_val, d->best_idx, d->gathered_best, d->gathered_idx, d->prefill_dst, d->x, d->xmid, d->ln, d->tmp, d->qkv,
                    d->att, d->fc1, d->h, d->rstd, d->logits, d->gathered};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->release(be, bufs[i]);
    free(d->host);
    d->m = NULL;
}

/* sqrt(hidden_size) rounded to the activation dtype, as HF's normalizer (and model/gemma.c). */
static float embed_scale(const gt_model *m) {
    float s = sqrtf((float)m->lay.C);
    return m->ops->size[GT_ACT] == 2 ? gt_round_bf16(s) : s;
}

static float attn_scale(const gt_model *m) { return (float)(1.0 / sqrt((double)m->lay.D)); }

/* x[B, C] = a + b (b NULL: x as it is), then its norm with the weights at w into d->ln. */
static void add_norm(gt_decoder *d, void *x, const void *a, const void *b, size_t w, int B) {
    gt_model_add_norm(d->m, x, a, b, d->ln, d->rstd, w, B);
}

/* Layer l for the B new tokens: residual in d->x, out d->xmid + d->tmp (the MLP output), which the
 * next layer's first norm, or the final norm, adds into d->x (fused into that norm). Layer 0's
 * input is the embedding in d->x. Its GEMMs run on G rows. */
static void decode_layer(gt_decoder *d, int l, int B) {
    gt_model *m = d->m;
    int G = gemm_rows(d, B);
    const gt_ops *o = m->ops;
    gt_backend *be = m->be;
    const gt_layout *L = &m->lay;
    const gt_layer_offsets *w = &L->layer[l];
    int C = L->C, HD = L->Hq * L->D;
    add_norm(d, d->x, d->xmid, l ? d->tmp : NULL, w->ln1, B);
    gt_linear_fwd(m, l, GT_GEMM_QKV, d->qkv, d->ln, w->qkv, G, C, L->Q, 0);
    if (o->rope_kv_write) {
        o->rope_kv_write(be, d->qkv, d->kc[l], d->vc[l], d->pos, d->dst, (float)m->cfg.rope_theta, B, L->Hq, L->Hkv,
                         L->D, d->Tmax);
    } else {
        o->rope_fwd(be, d->qkv, d->pos, (float)m->cfg.rope_theta, B, L->Hq, L->Hkv, L->D);
        o->kv_write(be, d->kc[l], d->vc[l], d->qkv, d->dst, B, L->Hq, L->Hkv, L->D, d->Tmax);
    }
    o->attention_decode(be, d->att, d->qkv, d->kc[l], d->vc[l], d->len, attn_scale(m), B, L->Hq, L->Hkv, L->D,
                        d->Tmax);
    gt_linear_fwd(m, l, GT_GEMM_O, d->tmp, d->att, w->o, G, HD, C, 0);
    gt_model_tp_sum(m, d->tmp, (size_t)B * C, GT_ACT); /* row-parallel o_proj */
    add_norm(d, d->xmid, d->x, d->tmp, w->ln2, B);
    gt_linear_fwd(m, l, GT_GEMM_FC1, d->fc1, d->ln, w->fc1, G, C, 2 * L->F, 0);
    o->geglu_fwd(be, d->h, d->fc1, m->cfg.act, B, L->F);
    gt_linear_fwd(m, l, GT_GEMM_FC2, d->tmp, d->h, w->fc2, G, L->F, C, 0);
    gt_model_tp_sum(m, d->tmp, (size_t)B * C, GT_ACT); /* row-parallel fc2 */
}

/* d->logits[B, head_vocab] = lm_head(x[B, C]) (x already through the final norm; with FP8, x holds
 * gemm_rows(B) rows), and the greedy pick of this rank's columns. */
static void lm_head(gt_decoder *d, const void *x, int B) {
    gt_model *m = d->m;
    int vh = gt_model_head_vocab(m);
    gt_linear_fwd(m, m->lay.L, 0, d->logits, x, m->lay.wte, gemm_rows(d, B), m->lay.C, vh, 0);
    m->ops->argmax_rows(m->be, d->best_val, d->best_idx, d->logits, B, vh);
}

/* next[B] = the greedy tokens: the best of every rank's pick, the lowest vocabulary id (rank) on
 * ties, as the first largest logit of the full row. */
static void gather_next(gt_decoder *d, int B, int32_t *next) {
    gt_model *m = d->m;
    const gt_ops *o = m->ops;
    int tp = tp_size(d);
    const void *val = d->best_val;
    const int32_t *idx = d->best_idx;
    if (tp > 1) {
        gt_allgather(m->tp, d->best_val, d->gathered_best, (size_t)B, gt_kind_dtype(m, GT_STAT));
        gt_allgather(m->tp, d->best_idx, d->gathered_idx, (size_t)B, GT_I32);
        val = d->gathered_best, idx = d->gathered_idx;
    }
    float *v = gt_malloc((size_t)tp * B * sizeof(float));
    int32_t *ix = gt_malloc((size_t)tp * B * sizeof(int32_t));
    o->download(m->be, GT_STAT, v, val, (size_t)tp * B);
    o->download_raw(m->be, ix, idx, (size_t)tp * B * sizeof(int32_t));
    for (int b = 0; b < B; b++) {
        int r0 = 0;
        for (int r = 1; r < tp; r++)
            if (v[(size_t)r * B + b] > v[(size_t)r0 * B + b]) r0 = r;
        next[b] = (int32_t)((int64_t)r0 * d->V + ix[(size_t)r0 * B + b]);
    }
    free(ix);
    free(v);
}

/* The ops of one decode step for B rows, inputs in d->tok/pos/dst/len, output in d->logits. */
static void step_ops(gt_decoder *d, int B) {
    gt_model *m = d->m;
    const gt_layout *L = &m->lay;
    m->ops->embed_fwd(m->be, d->x, d->tok, PARAM(m, L->wte), embed_scale(m), L->vstart, L->V, B, L->C);
    gt_model_tp_sum(m, d->x, (size_t)B * L->C, GT_ACT); /* vocab-parallel embedding */
    for (int l = 0; l < L->L; l++) decode_layer(d, l, B);
    add_norm(d, d->x, d->xmid, d->tmp, L->lnf, B); /* the last layer's output residual, then the final norm */
    lm_head(d, d->ln, B);
}

/* logits[B, vocab] (host float) from every rank's d->logits: rank r's block holds rows of its
 * head_vocab columns, r * V .. . */
static void gather_logits(gt_decoder *d, int B, float *logits) {
    gt_model *m = d->m;
    int tp = tp_size(d);
    const void *src = d->logits;
    if (tp > 1) {
        gt_allgather(m->tp, d->logits, d->gathered, (size_t)B * d->V, gt_kind_dtype(m, GT_ACT));
        src = d->gathered;
    }
    size_t block = (size_t)B * d->V;
    for (int r = 0; r < tp; r++)
        m->ops->download(m->be, GT_ACT, d->host + r * block, (const char *)src + r * block * m->ops->size[GT_ACT],
                         block);
    int64_t vocab = m->cfg.vocab_size;
    for (int r = 0; r < tp; r++) {
        int64_t v0 = (int64_t)r * d->V, vh = vocab - v0 < d->V ? vocab - v0 : d->V;
        for (int b = 0; b < B && vh > 0; b++)
            memcpy(logits + b * vocab + v0, d->host + r * block + (size_t)b * vh, (size_t)vh * sizeof(float));
    }
}

void gt_decoder_prefill(gt_decoder *d, int b, const int32_t *ids, int n, float *logits, int32_t *next) {
    gt_model *m = d->m;
    const gt_ops *o = m->ops;
    const gt_layout *L = &m->lay;
    GT_ASSERT(b >= 0 && b < d->B && n >= 1 && n <= d->Tmax, "prefill: sequence %d of %d, %d tokens of %d", b,
              d->B, n, d->Tmax);
    /* T = n tokens, or with FP8 n padded to 16 by token 0 at positions n.. (after the prompt: causal
     * attention keeps them out of its rows, and only its n rows of K/V are cached) */
    int T = gemm_rows(d, n);
    int32_t *buf = gt_malloc(4 * (size_t)T * sizeof(int32_t));
    int32_t *tok = buf, *tgt = buf + T, *pos = buf + 2 * T, *dst = buf + 3 * T;
    for (int t = 0; t < T; t++) tok[t] = t < n ? ids[t] : 0, tgt[t] = -1, pos[t] = t, dst[t] = b * d->Tmax + t;
    gt_model_alloc_batch(m, 1, T);
    gt_model_set_batch(m, tok, tgt, pos, NULL);
    o->upload_raw(m->be, d->prefill_dst, dst, (size_t)n * sizeof(int32_t));
    gt_model_forward_body(m);
    for (int l = 0; l < L->L; l++)
        o->kv_write(m->be, d->kc[l], d->vc[l], m->acts[l].qkv, d->prefill_dst, n, L->Hq, L->Hkv, L->D, d->Tmax);
    size_t row = (size_t)L->C * o->size[GT_ACT];
    const void *last = (const char *)m->lnf + (size_t)(n - 1) * row;
    if (d->fp8) { /* the lm_head's GEMM reads 16 rows: the last one first in d->ln */
        o->copy(m->be, d->ln, last, row);
        last = d->ln;
    }
    lm_head(d, last, 1);
    if (logits) gather_logits(d, 1, logits);
    if (next) gather_next(d, 1, next);
    free(buf);
}

/* Bucket i holds steps of up to 2^i rows (the last one: d->B). */
static int bucket_of(const gt_decoder *d, int B, int *rows) {
    int i = 0;
    while ((1 << i) < B) i++;
    *rows = (1 << i) < d->B ? 1 << i : d->B;
    return i;
}

void gt_decoder_step(gt_decoder *d, int B, const int32_t *tok, const int32_t *pos, float *logits, int32_t *next) {
    gt_model *m = d->m;
    const gt_ops *o = m->ops;
    GT_ASSERT(B >= 1 && B <= d->B, "decode step of %d sequences, cache of %d", B, d->B);
    int rows = B, bucket = 0;
    if (d->graphs) bucket = bucket_of(d, B, &rows);
    /* Rows B..rows-1 of a bucket are padding: they write their K/V at the last cache position of
     * their sequence, which a sequence reads only after writing it itself. */
    int32_t *buf = gt_malloc(4 * (size_t)rows * sizeof(int32_t));
    int32_t *t = buf, *p = buf + rows, *dst = buf + 2 * rows, *len = buf + 3 * rows;
    for (int b = 0; b < rows; b++) {
        int real = b < B;
        GT_ASSERT(!real || (pos[b] >= 0 && pos[b] < d->Tmax), "decode: sequence %d at position %d of %d", b,
                  real ? pos[b] : 0, d->Tmax);
        t[b] = real ? tok[b] : 0;
        p[b] = real ? pos[b] : d->Tmax - 1;
        dst[b] = b * d->Tmax + p[b];
        len[b] = p[b] + 1;
    }
    /* rows of d->inputs are d->B apart: four uploads where the bucket is smaller than the cache */
    size_t bytes = (size_t)rows * sizeof(int32_t);
    if (rows == d->B) o->upload_raw(m->be, d->inputs, buf, 4 * bytes);
    else
        for (int k = 0; k < 4; k++) o->upload_raw(m->be, d->inputs + (size_t)k * d->B, buf + (size_t)k * rows, bytes);
    free(buf);
    if (!d->graphs) {
        step_ops(d, rows);
    } else if (d->graph[bucket]) {
        o->graph_launch(m->be, d->graph[bucket]);
    } else {
        /* The first step of a bucket runs directly (the GEMMs' plans and workspaces are made
         * then), and is captured for every later one. */
        step_ops(d, rows);
        o->graph_begin(m->be);
        step_ops(d, rows);
        d->graph[bucket] = o->graph_end(m->be);
    }
    if (logits) gather_logits(d, B, logits);
    if (next) gather_next(d, B, next);
}
