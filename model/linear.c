/* The linear layers of the model (model/linear.h): each GEMM in BF16, or in FP8 with the model's
 * delayed-scaling state (model/fp8.h) when it is on and the shapes allow. */
#include "linear.h"

#include "fp8.h"
#include "tp.h"

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])
#define GRAD(m, off) ((char *)(m)->grads + (off) * gt_model_grad_size(m))

/* The lm_head's real vocabulary columns on this rank: the last rank's padding rows take no part. */
int gt_model_head_vocab(const gt_model *m) {
    const gt_layout *L = &m->lay;
    int64_t v = m->cfg.vocab_size - L->vstart;
    return (int)(v < L->V ? v : L->V);
}

void gt_linear_dims(const gt_model *m, int s, int *ic, int *oc, size_t *w_off) {
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

static int slot_of(int l, int g) { return l * GT_GEMMS + g; }

int gt_linear_fp8_shape(const gt_model *m, int s) {
    int ic, oc;
    size_t off;
    gt_linear_dims(m, s, &ic, &oc, &off);
    return fp8_shape_ok(16, ic, oc);
}

int gt_linear_fp8_input(gt_model *m, int l, int g, int N, int train, gt_fp8_target *dst) {
    gt_fp8 *f = m->fp8;
    int s = slot_of(l, g), ic, oc;
    size_t off;
    if (!f || f->calibrating || s >= f->slots) return 0;
    gt_linear_dims(m, s, &ic, &oc, &off);
    if (!fp8_shape_ok(N, ic, oc)) return 0;
    if (f->infer_rows) { /* one x8 of infer_rows rows, no transposed copy, amaxes not recorded */
        GT_ASSERT(!train && N <= f->infer_rows, "FP8 inference: %s of %d rows (x8 holds %d)",
                  train ? "a training forward" : "a forward", N, f->infer_rows);
        *dst = (gt_fp8_target){f->x8, NULL, f->scale + gt_fp8_t_in(s), f->eval_amax};
        return 1;
    }
    gt_model_fp8_size_acts(m, m->N); /* the micro-batch's tokens: N is one chunk's for the lm_head */
    *dst = (gt_fp8_target){f->x8, train ? f->x8t[s] : NULL, f->scale + gt_fp8_t_in(s),
                           train ? f->history + gt_fp8_t_in(s) : f->eval_amax};
    return 1;
}

int gt_linear_fp8_grad(gt_model *m, int l, int g, gt_fp8_target *dst) {
    gt_fp8 *f = m->fp8;
    int s = slot_of(l, g);
    if (!f || s >= f->slots || !f->fp8_used[s]) return 0;
    *dst = (gt_fp8_target){f->dy8, f->dy8t, f->scale + gt_fp8_t_grad(f, s), f->history + gt_fp8_t_grad(f, s)};
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
            o->fp8_cast(m->be, NULL, NULL, x, N, IC, GT_E4M3, f->scale + gt_fp8_t_in(s), f->history + gt_fp8_t_in(s));
            o->fp8_cast(m->be, NULL, NULL, PARAM(m, w_off), OC, IC, GT_E4M3, f->scale + gt_fp8_t_w(s),
                        f->history + gt_fp8_t_w(s));
        }
        o->matmul_fwd(m->be, y, x, PARAM(m, w_off), N, IC, OC);
        return;
    }
    if (f->weights_stale) gt_model_fp8_cast_weights(m, train);
    if (x) o->fp8_cast(m->be, in.x8, in.x8t, x, N, IC, GT_E4M3, in.scale, in.amax);
    o->matmul_fp8(m->be, y, 0, f->x8, GT_E4M3, f->scale_inv + gt_fp8_t_in(s), f->w8[s], GT_E4M3,
                  f->w_sinv + gt_fp8_t_w(s), N, OC, IC, 1);
}

void gt_linear_bwd(gt_model *m, int l, int g, void *dx, const void *dy, const void *x, size_t w_off,
                   int N, int IC, int OC, int sum_dx) {
    gt_fp8 *f = m->fp8;
    const gt_ops *o = m->ops;
    int s = slot_of(l, g);
    gt_fp8_target gr;
    int fp8 = gt_linear_fp8_grad(m, l, g, &gr);
    int tg = fp8 ? gt_fp8_t_grad(f, s) : 0;
    if (!fp8) {
        GT_ASSERT(dy, "GEMM %d of layer %d runs in BF16 but its gradient was only cast to FP8", g, l);
        if (f && f->calibrating && s < f->slots)
            o->fp8_cast(m->be, NULL, NULL, dy, N, OC, GT_E5M2, f->scale + gt_fp8_t_grad(f, s),
                        f->history + gt_fp8_t_grad(f, s));
    } else if (dy) {
        o->fp8_cast(m->be, gr.x8, gr.x8t, dy, N, OC, GT_E5M2, gr.scale, gr.amax);
    }
    if (dx && fp8)
        o->matmul_fp8(m->be, dx, 0, f->dy8, GT_E5M2, f->scale_inv + tg, f->w8t[s], GT_E4M3,
                      f->w_sinv + gt_fp8_t_w(s), N, IC, OC, 0);
    else if (dx)
        o->matmul_bwd(m->be, dx, NULL, dy, x, PARAM(m, w_off), N, IC, OC);
    /* the sum of dx over tp runs while the weight gradient's GEMM does */
    if (dx && sum_dx) gt_model_tp_sum_start(m, dx, (size_t)N * IC, GT_ACT);
    if (fp8)
        o->matmul_fp8(m->be, GRAD(m, w_off), 1, f->dy8t, GT_E5M2, f->scale_inv + tg, f->x8t[s], GT_E4M3,
                      f->x_sinv + gt_fp8_t_in(s), OC, IC, N, 0);
    else
        o->matmul_bwd(m->be, NULL, GRAD(m, w_off), dy, x, PARAM(m, w_off), N, IC, OC);
    if (dx && sum_dx) gt_model_tp_sum_wait(m);
}
