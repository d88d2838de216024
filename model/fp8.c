#include "fp8.h"

#include <stdlib.h>

#include "tp.h"

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])
#define GRAD(m, off) ((char *)(m)->grads + (off) * (m)->ops->size[GT_GRAD])

/* GEMM slot s = l * GT_GEMMS + g; the lm_head, when in FP8, is slot 4 L. Tensors: forward 2s (input)
 * and 2s + 1 (weight), gradient 2 S + s, for S slots (model/fp8.h). */
static int t_in(int s) { return 2 * s; }
static int t_w(int s) { return 2 * s + 1; }
static int t_grad(const gt_fp8 *f, int s) { return 2 * f->slots + s; }

/* The lm_head's real vocabulary columns on this rank: the last rank's padding rows take no part. */
int gt_model_head_vocab(const gt_model *m) {
    const gt_layout *L = &m->lay;
    int64_t v = m->cfg.vocab_size - L->vstart;
    return (int)(v < L->V ? v : L->V);
}

/* Input and output widths of the GEMM in slot s, and its weight's offset. */
static void gemm_dims(const gt_model *m, int s, int *ic, int *oc, size_t *w_off) {
    const gt_layout *L = &m->lay;
    int C = L->C, HD = L->Hq * L->D;
    if (s == GT_GEMMS * L->L) {
        *ic = C, *oc = gt_model_head_vocab(m), *w_off = L->wte;
        return;
    }
    const gt_layer_offsets *w = &L->layer[s / GT_GEMMS];
    switch (s % GT_GEMMS) {
    case GT_GEMM_QKV: *ic = C, *oc = L->Q, *w_off = w->qkv; break;
    case GT_GEMM_O: *ic = HD, *oc = C, *w_off = w->o; break;
    case GT_GEMM_FC1: *ic = C, *oc = 2 * L->F, *w_off = w->fc1; break;
    default: *ic = L->F, *oc = C, *w_off = w->fc2; break;
    }
}

static int fp8_shape_ok(int N, int IC, int OC) { return N % 16 == 0 && IC % 16 == 0 && OC % 16 == 0; }

static float *alloc_floats(gt_model *m, size_t n) { return m->ops->alloc(m->be, n * sizeof(float)); }

static void fill(gt_model *m, float *dst, float v, size_t n) {
    float *h = gt_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = v;
    m->ops->upload_raw(m->be, dst, h, n * sizeof(float));
    free(h);
}

void gt_model_enable_fp8(gt_model *m, const gt_fp8_recipe *r, gt_group *amax_group) {
    GT_ASSERT(m->ops->fp8_cast && m->ops->matmul_fp8 && m->ops->fp8_update,
              "backend %s has no FP8 ops", m->ops->name);
    gt_fp8 *f = gt_calloc(1, sizeof *f);
    int S = GT_GEMMS * m->lay.L + (r->lm_head ? 1 : 0);
    f->recipe = *r;
    f->slots = S;
    f->count = 3 * S;
    f->len = r->history_len;
    f->amax_group = amax_group;
    f->history = alloc_floats(m, (size_t)f->len * f->count);
    f->scale = alloc_floats(m, (size_t)f->count);
    f->scale_inv = alloc_floats(m, (size_t)f->count);
    f->fp8_max = alloc_floats(m, (size_t)f->count);
    f->reduced = alloc_floats(m, (size_t)f->count);
    f->eval_amax = alloc_floats(m, 1);
    f->w_sinv = alloc_floats(m, 2 * (size_t)S);
    f->x_sinv = alloc_floats(m, 2 * (size_t)S);
    fill(m, f->scale, 1.0f, (size_t)f->count);
    fill(m, f->scale_inv, 1.0f, (size_t)f->count);
    fill(m, f->fp8_max, 448.0f, 2 * (size_t)S);
    fill(m, f->fp8_max + 2 * S, 57344.0f, (size_t)S);
    f->w8 = gt_calloc((size_t)S, sizeof(void *));
    f->w8t = gt_calloc((size_t)S, sizeof(void *));
    f->x8t = gt_calloc((size_t)S, sizeof(void *));
    f->fp8_used = gt_calloc((size_t)S, sizeof(int));
    for (int s = 0; s < S; s++) {
        int ic, oc;
        size_t off;
        gemm_dims(m, s, &ic, &oc, &off);
        f->w8[s] = m->ops->alloc(m->be, (size_t)ic * oc);
        f->w8t[s] = m->ops->alloc(m->be, (size_t)ic * oc);
    }
    f->weights_stale = 1;
    m->fp8 = f;
}

static void free_acts(gt_model *m) {
    gt_fp8 *f = m->fp8;
    for (int s = 0; s < f->slots; s++) m->ops->release(m->be, f->x8t[s]), f->x8t[s] = NULL;
    m->ops->release(m->be, f->x8);
    m->ops->release(m->be, f->dy8);
    m->ops->release(m->be, f->dy8t);
    f->x8 = f->dy8 = f->dy8t = NULL;
    f->n_tokens = 0;
}

void gt_model_fp8_free(gt_model *m) {
    gt_fp8 *f = m->fp8;
    if (!f) return;
    free_acts(m);
    for (int s = 0; s < f->slots; s++) m->ops->release(m->be, f->w8[s]), m->ops->release(m->be, f->w8t[s]);
    float *bufs[] = {f->history, f->scale, f->scale_inv, f->fp8_max, f->reduced, f->eval_amax, f->w_sinv, f->x_sinv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) m->ops->release(m->be, bufs[i]);
    free(f->w8), free(f->w8t), free(f->x8t), free(f->fp8_used);
    free(f);
    m->fp8 = NULL;
}

void gt_model_fp8_calibrate(gt_model *m, int on) {
    if (m->fp8->calibrating && !on) gt_model_release_bf16_inputs(m);
    m->fp8->calibrating = on;
}
void gt_model_fp8_weights_changed(gt_model *m) {
    if (m->fp8) m->fp8->weights_stale = 1;
}

/* Scratch for x8, dy8 and dy8T: the largest operand of any GEMM, where the lm_head's is one chunk
 * of tokens times the vocabulary ([ce_chunk, V]); x8T per GEMM for the N tokens of a micro-batch. */
static void size_acts(gt_model *m, int N) {
    gt_fp8 *f = m->fp8;
    if (f->n_tokens == N) return;
    free_acts(m);
    size_t widest = 0;
    for (int s = 0; s < f->slots; s++) {
        int ic, oc;
        size_t off;
        gemm_dims(m, s, &ic, &oc, &off);
        size_t rows = s < GT_GEMMS * m->lay.L ? (size_t)N : (size_t)m->ce_chunk;
        size_t big = rows * (size_t)(ic > oc ? ic : oc);
        widest = big > widest ? big : widest;
        f->x8t[s] = m->ops->alloc(m->be, (size_t)N * ic);
    }
    f->x8 = m->ops->alloc(m->be, widest);
    f->dy8 = m->ops->alloc(m->be, widest);
    f->dy8t = m->ops->alloc(m->be, widest);
    f->n_tokens = N;
}

/* Casts every FP8 weight and its transpose with the current weight scales, recording their amax,
 * and keeps the scale_inv they were cast with. */
static void cast_weights(gt_model *m, int train) {
    gt_fp8 *f = m->fp8;
    for (int s = 0; s < f->slots; s++) {
        int ic, oc, t = t_w(s);
        size_t off;
        gemm_dims(m, s, &ic, &oc, &off);
        m->ops->fp8_cast(m->be, f->w8[s], f->w8t[s], PARAM(m, off), oc, ic, GT_E4M3, f->scale + t,
                         train ? f->history + t : f->eval_amax);
    }
    m->ops->copy(m->be, f->w_sinv, f->scale_inv, 2 * (size_t)f->slots * sizeof(float));
    f->weights_stale = 0;
}

static int slot_of(int l, int g) { return l * GT_GEMMS + g; }

int gt_linear_fp8_input(gt_model *m, int l, int g, int N, int train, gt_fp8_target *dst) {
    gt_fp8 *f = m->fp8;
    int s = slot_of(l, g), ic, oc;
    size_t off;
    if (!f || f->calibrating || s >= f->slots) return 0;
    gemm_dims(m, s, &ic, &oc, &off);
    if (!fp8_shape_ok(N, ic, oc)) return 0;
    size_acts(m, m->N); /* the micro-batch's tokens: N is one chunk's for the lm_head */
    *dst = (gt_fp8_target){f->x8, train ? f->x8t[s] : NULL, f->scale + t_in(s),
                           train ? f->history + t_in(s) : f->eval_amax};
    return 1;
}

int gt_linear_fp8_grad(gt_model *m, int l, int g, gt_fp8_target *dst) {
    gt_fp8 *f = m->fp8;
    int s = slot_of(l, g);
    if (!f || s >= f->slots || !f->fp8_used[s]) return 0;
    *dst = (gt_fp8_target){f->dy8, f->dy8t, f->scale + t_grad(f, s), f->history + t_grad(f, s)};
    return 1;
}

void gt_linear_fwd(gt_model *m, int l, int g, void *y, const void *x, size_t w_off, int N, int IC,
                   int OC, int train) {
    gt_fp8 *f = m->fp8;
    const gt_ops *o = m->ops;
    int s = slot_of(l, g);
    gt_fp8_target in;
    int use = gt_linear_fp8_input(m, l, g, N, train, &in);
    if (f && s < f->slots) f->fp8_used[s] = use;
    if (!use) {
        GT_ASSERT(x, "GEMM %d of layer %d runs in BF16 but its input was only cast to FP8", g, l);
        if (f && f->calibrating && train && s < f->slots) { /* amax only */
            o->fp8_cast(m->be, NULL, NULL, x, N, IC, GT_E4M3, f->scale + t_in(s), f->history + t_in(s));
            o->fp8_cast(m->be, NULL, NULL, PARAM(m, w_off), OC, IC, GT_E4M3, f->scale + t_w(s),
                        f->history + t_w(s));
        }
        o->matmul_fwd(m->be, y, x, PARAM(m, w_off), N, IC, OC);
        return;
    }
    if (f->weights_stale) cast_weights(m, train);
    if (x) o->fp8_cast(m->be, in.x8, in.x8t, x, N, IC, GT_E4M3, in.scale, in.amax);
    o->matmul_fp8(m->be, y, 0, f->x8, GT_E4M3, f->scale_inv + t_in(s), f->w8[s], GT_E4M3,
                  f->w_sinv + t_w(s), N, OC, IC, 1);
}

void gt_linear_bwd(gt_model *m, int l, int g, void *dx, const void *dy, const void *x, size_t w_off,
                   int N, int IC, int OC, int sum_dx) {
    gt_fp8 *f = m->fp8;
    const gt_ops *o = m->ops;
    int s = slot_of(l, g);
    gt_fp8_target gr;
    int fp8 = gt_linear_fp8_grad(m, l, g, &gr);
    int tg = fp8 ? t_grad(f, s) : 0;
    if (!fp8) {
        GT_ASSERT(dy, "GEMM %d of layer %d runs in BF16 but its gradient was only cast to FP8", g, l);
        if (f && f->calibrating && s < f->slots)
            o->fp8_cast(m->be, NULL, NULL, dy, N, OC, GT_E5M2, f->scale + t_grad(f, s),
                        f->history + t_grad(f, s));
    } else if (dy) {
        o->fp8_cast(m->be, gr.x8, gr.x8t, dy, N, OC, GT_E5M2, gr.scale, gr.amax);
    }
    if (dx && fp8)
        o->matmul_fp8(m->be, dx, 0, f->dy8, GT_E5M2, f->scale_inv + tg, f->w8t[s], GT_E4M3,
                      f->w_sinv + t_w(s), N, IC, OC, 0);
    else if (dx)
        o->matmul_bwd(m->be, dx, NULL, dy, x, PARAM(m, w_off), N, IC, OC);
    /* the sum of dx over tp runs while the weight gradient's GEMM does */
    if (dx && sum_dx) gt_model_tp_sum_start(m, dx, (size_t)N * IC, GT_ACT);
    if (fp8)
        o->matmul_fp8(m->be, GRAD(m, w_off), 1, f->dy8t, GT_E5M2, f->scale_inv + tg, f->x8t[s], GT_E4M3,
                      f->x_sinv + t_in(s), OC, IC, N, 0);
    else
        o->matmul_bwd(m->be, NULL, GRAD(m, w_off), dy, x, PARAM(m, w_off), N, IC, OC);
    if (dx && sum_dx) gt_model_tp_sum_wait(m);
}

/* All-reduces (MAX over tp x dp) slot 0 of tensors [first, first+n), then updates them. */
static void update(gt_model *m, int first, int n) {
    gt_fp8 *f = m->fp8;
    const float *reduced = NULL;
    if (f->amax_group && f->amax_group->size > 1) {
        m->ops->copy(m->be, f->reduced + first, f->history + first, (size_t)n * sizeof(float));
        gt_allreduce(f->amax_group, f->reduced + first, (size_t)n, GT_F32, GT_RED_MAX);
        reduced = f->reduced;
    }
    m->ops->fp8_update(m->be, f->history, f->scale, f->scale_inv, f->fp8_max, reduced, first, n, f->count,
                       f->len, (int)f->recipe.algo, f->recipe.margin);
}

void gt_model_fp8_before_forward(gt_model *m) {
    gt_fp8 *f = m->fp8;
    /* the backward's weight gradients use the inputs' FP8 copies with the scales they are cast with
     * now; the scales change after the forward */
    if (f) m->ops->copy(m->be, f->x_sinv, f->scale_inv, 2 * (size_t)f->slots * sizeof(float));
}

void gt_model_fp8_after_forward(gt_model *m) {
    if (m->fp8) update(m, 0, 2 * m->fp8->slots);
}

void gt_model_fp8_after_backward(gt_model *m) {
    if (m->fp8) update(m, 2 * m->fp8->slots, m->fp8->slots);
}
