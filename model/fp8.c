#include "fp8.h"

#include <stdlib.h>

#include "tp.h"

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])
#define GRAD(m, off) ((char *)(m)->grads + (off) * (m)->ops->size[GT_GRAD])

static int t_in(const gt_model *m, int l, int g) { (void)m; return (l * GT_GEMMS + g) * 2; }
static int t_w(const gt_model *m, int l, int g) { (void)m; return (l * GT_GEMMS + g) * 2 + 1; }
static int t_grad(const gt_model *m, int l, int g) { return 8 * m->lay.L + l * GT_GEMMS + g; }

/* Input and output widths of GEMM g, and its weight's offset in layer l. */
static void gemm_dims(const gt_model *m, int l, int g, int *ic, int *oc, size_t *w_off) {
    const gt_layout *L = &m->lay;
    const gt_layer_offsets *w = &L->layer[l];
    int C = L->C, HD = L->Hq * L->D;
    switch (g) {
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
    int L = m->lay.L, n = GT_GEMMS * L;
    f->recipe = *r;
    f->count = 12 * L;
    f->len = r->history_len;
    f->amax_group = amax_group;
    f->history = alloc_floats(m, (size_t)f->len * f->count);
    f->scale = alloc_floats(m, (size_t)f->count);
    f->scale_inv = alloc_floats(m, (size_t)f->count);
    f->fp8_max = alloc_floats(m, (size_t)f->count);
    f->reduced = alloc_floats(m, (size_t)f->count);
    f->eval_amax = alloc_floats(m, 1);
    f->w_sinv = alloc_floats(m, 8 * (size_t)L);
    f->x_sinv = alloc_floats(m, 8 * (size_t)L);
    fill(m, f->scale, 1.0f, (size_t)f->count);
    fill(m, f->scale_inv, 1.0f, (size_t)f->count);
    fill(m, f->fp8_max, 448.0f, 8 * (size_t)L);
    fill(m, f->fp8_max + 8 * L, 57344.0f, 4 * (size_t)L);
    f->w8 = gt_calloc((size_t)n, sizeof(void *));
    f->w8t = gt_calloc((size_t)n, sizeof(void *));
    f->x8t = gt_calloc((size_t)n, sizeof(void *));
    f->fp8_used = gt_calloc((size_t)n, sizeof(int));
    for (int l = 0; l < L; l++)
        for (int g = 0; g < GT_GEMMS; g++) {
            int ic, oc;
            size_t off;
            gemm_dims(m, l, g, &ic, &oc, &off);
            f->w8[l * GT_GEMMS + g] = m->ops->alloc(m->be, (size_t)ic * oc);
            f->w8t[l * GT_GEMMS + g] = m->ops->alloc(m->be, (size_t)ic * oc);
        }
    f->weights_stale = 1;
    m->fp8 = f;
}

static void free_acts(gt_model *m) {
    gt_fp8 *f = m->fp8;
    for (int i = 0; i < GT_GEMMS * m->lay.L; i++) m->ops->release(m->be, f->x8t[i]), f->x8t[i] = NULL;
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
    for (int i = 0; i < GT_GEMMS * m->lay.L; i++) m->ops->release(m->be, f->w8[i]), m->ops->release(m->be, f->w8t[i]);
    float *bufs[] = {f->history, f->scale, f->scale_inv, f->fp8_max, f->reduced, f->eval_amax, f->w_sinv, f->x_sinv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) m->ops->release(m->be, bufs[i]);
    free(f->w8), free(f->w8t), free(f->x8t), free(f->fp8_used);
    free(f);
    m->fp8 = NULL;
}

void gt_model_fp8_calibrate(gt_model *m, int on) { m->fp8->calibrating = on; }
void gt_model_fp8_weights_changed(gt_model *m) {
    if (m->fp8) m->fp8->weights_stale = 1;
}

/* The largest activation of any GEMM: scratch for x8, dy8 and dy8T; x8T per GEMM. */
static void size_acts(gt_model *m, int N) {
    gt_fp8 *f = m->fp8;
    if (f->n_tokens == N) return;
    free_acts(m);
    size_t widest = 0;
    for (int g = 0; g < GT_GEMMS; g++) {
        int ic, oc;
        size_t off;
        gemm_dims(m, 0, g, &ic, &oc, &off);
        widest = (size_t)(ic > oc ? ic : oc) > widest ? (size_t)(ic > oc ? ic : oc) : widest;
        for (int l = 0; l < m->lay.L; l++) f->x8t[l * GT_GEMMS + g] = m->ops->alloc(m->be, (size_t)N * ic);
    }
    f->x8 = m->ops->alloc(m->be, (size_t)N * widest);
    f->dy8 = m->ops->alloc(m->be, (size_t)N * widest);
    f->dy8t = m->ops->alloc(m->be, (size_t)N * widest);
    f->n_tokens = N;
}

/* Casts every FP8 weight and its transpose with the current weight scales, recording their amax,
 * and keeps the scale_inv they were cast with. */
static void cast_weights(gt_model *m, int train) {
    gt_fp8 *f = m->fp8;
    for (int l = 0; l < m->lay.L; l++)
        for (int g = 0; g < GT_GEMMS; g++) {
            int ic, oc, t = t_w(m, l, g);
            size_t off;
            gemm_dims(m, l, g, &ic, &oc, &off);
            m->ops->fp8_cast(m->be, f->w8[l * GT_GEMMS + g], f->w8t[l * GT_GEMMS + g], PARAM(m, off), oc, ic,
                             GT_E4M3, f->scale + t, train ? f->history + t : f->eval_amax);
        }
    m->ops->copy(m->be, f->w_sinv, f->scale_inv, 8 * (size_t)m->lay.L * sizeof(float));
    f->weights_stale = 0;
}

void gt_linear_fwd(gt_model *m, int l, int g, void *y, const void *x, size_t w_off, int N, int IC,
                   int OC, int train) {
    gt_fp8 *f = m->fp8;
    const gt_ops *o = m->ops;
    int use = f && !f->calibrating && fp8_shape_ok(N, IC, OC);
    if (f) f->fp8_used[l * GT_GEMMS + g] = use;
    if (!use) {
        if (f && f->calibrating && train) { /* amax only */
            o->fp8_cast(m->be, NULL, NULL, x, N, IC, GT_E4M3, f->scale + t_in(m, l, g), f->history + t_in(m, l, g));
            o->fp8_cast(m->be, NULL, NULL, PARAM(m, w_off), OC, IC, GT_E4M3, f->scale + t_w(m, l, g),
                        f->history + t_w(m, l, g));
        }
        o->matmul_fwd(m->be, y, x, PARAM(m, w_off), N, IC, OC);
        return;
    }
    size_acts(m, N);
    if (f->weights_stale) cast_weights(m, train);
    int ti = t_in(m, l, g), tw = t_w(m, l, g);
    o->fp8_cast(m->be, f->x8, train ? f->x8t[l * GT_GEMMS + g] : NULL, x, N, IC, GT_E4M3, f->scale + ti,
                train ? f->history + ti : f->eval_amax);
    o->matmul_fp8(m->be, y, 0, f->x8, GT_E4M3, f->scale_inv + ti, f->w8[l * GT_GEMMS + g], GT_E4M3,
                  f->w_sinv + tw, N, OC, IC, 1);
}

void gt_linear_bwd(gt_model *m, int l, int g, void *dx, const void *dy, const void *x, size_t w_off,
                   int N, int IC, int OC) {
    gt_fp8 *f = m->fp8;
    const gt_ops *o = m->ops;
    if (!f || !f->fp8_used[l * GT_GEMMS + g]) {
        if (f && f->calibrating)
            o->fp8_cast(m->be, NULL, NULL, dy, N, OC, GT_E5M2, f->scale + t_grad(m, l, g), f->history + t_grad(m, l, g));
        o->matmul_bwd(m->be, dx, GRAD(m, w_off), dy, x, PARAM(m, w_off), N, IC, OC);
        return;
    }
    int tg = t_grad(m, l, g), ti = t_in(m, l, g), tw = t_w(m, l, g);
    o->fp8_cast(m->be, f->dy8, f->dy8t, dy, N, OC, GT_E5M2, f->scale + tg, f->history + tg);
    if (dx)
        o->matmul_fp8(m->be, dx, 0, f->dy8, GT_E5M2, f->scale_inv + tg, f->w8t[l * GT_GEMMS + g], GT_E4M3,
                      f->w_sinv + tw, N, IC, OC, 0);
    o->matmul_fp8(m->be, GRAD(m, w_off), 1, f->dy8t, GT_E5M2, f->scale_inv + tg, f->x8t[l * GT_GEMMS + g],
                  GT_E4M3, f->x_sinv + ti, OC, IC, N, 0);
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

void gt_model_fp8_after_forward(gt_model *m) {
    gt_fp8 *f = m->fp8;
    if (!f) return;
    /* the backward's weight gradients use the inputs' FP8 copies with the scales they were cast with */
    m->ops->copy(m->be, f->x_sinv, f->scale_inv, 8 * (size_t)m->lay.L * sizeof(float));
    update(m, 0, 8 * m->lay.L);
}

void gt_model_fp8_after_backward(gt_model *m) {
    if (m->fp8) update(m, 8 * m->lay.L, 4 * m->lay.L);
}
