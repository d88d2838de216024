/* The FP8 delayed-scaling state of the model (model/fp8.h): its buffers, calibration, and the
 * scale updates after the forward and the backward. The GEMMs that use it are model/linear.c. */
#include "fp8.h"

#include <stdlib.h>
#include <string.h>

#include "linear.h"

#define PARAM(m, off) ((char *)(m)->params + (off) * (m)->ops->size[GT_ACT])

static float *alloc_floats(gt_model *m, size_t n) { return m->ops->alloc(m->be, n * sizeof(float)); }

static void fill(gt_model *m, float *dst, float v, size_t n) {
    float *h = gt_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = v;
    m->ops->upload_raw(m->be, dst, h, n * sizeof(float));
    free(h);
}

/* Floats of the state arrays of S slots (3 S tensors) with histories of len, in this order:
 * history, scale, scale_inv, fp8_max, reduced, eval_amax, w_sinv, x_sinv. */
#define STATE_ARRAYS 8
static void state_floats(int S, int len, size_t n[STATE_ARRAYS]) {
    size_t count = 3 * (size_t)S;
    size_t v[STATE_ARRAYS] = {(size_t)len * count, count, count, count, count, 1, 2 * (size_t)S, 2 * (size_t)S};
    memcpy(n, v, sizeof v);
}

/* The widest operand (x8, dy8, dy8T) of the S GEMMs for N tokens: the lm_head's is one chunk of
 * tokens times the vocabulary ([ce_chunk, V]). */
static size_t widest_operand(const gt_model *m, int S, int N) {
    size_t widest = 0;
    for (int s = 0; s < S; s++) {
        int ic, oc;
        size_t off;
        gt_linear_dims(m, s, &ic, &oc, &off);
        size_t rows = s < GT_GEMMS * m->lay.L ? (size_t)N : (size_t)m->ce_chunk;
        size_t big = rows * (size_t)(ic > oc ? ic : oc);
        widest = big > widest ? big : widest;
    }
    return widest;
}

void gt_model_fp8_bytes(const gt_model *m, int lm_head, int history_len, int N, size_t *state, size_t *acts) {
    int S = GT_GEMMS * m->lay.L + (lm_head ? 1 : 0);
    size_t n[STATE_ARRAYS];
    state_floats(S, history_len, n);
    *state = 0;
    for (int i = 0; i < STATE_ARRAYS; i++) *state += n[i] * sizeof(float);
    *acts = 3 * widest_operand(m, S, N);
    for (int s = 0; s < S; s++) {
        int ic, oc;
        size_t off;
        gt_linear_dims(m, s, &ic, &oc, &off);
        *state += 2 * (size_t)ic * oc; /* w8, w8t */
        *acts += (size_t)N * ic;       /* x8t */
    }
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
    size_t n[STATE_ARRAYS];
    state_floats(S, f->len, n);
    float **arrays[STATE_ARRAYS] = {&f->history, &f->scale, &f->scale_inv, &f->fp8_max,
                                    &f->reduced, &f->eval_amax, &f->w_sinv, &f->x_sinv};
    for (int i = 0; i < STATE_ARRAYS; i++) *arrays[i] = alloc_floats(m, n[i]);
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
        gt_linear_dims(m, s, &ic, &oc, &off);
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

/* Scratch for x8, dy8 and dy8T: the largest operand of any GEMM (widest_operand); x8T per GEMM
 * for the N tokens of a micro-batch. */
void gt_model_fp8_size_acts(gt_model *m, int N) {
    gt_fp8 *f = m->fp8;
    GT_ASSERT(!f->infer_rows, "FP8 activation copies for training requested in inference mode");
    if (f->n_tokens == N) return;
    free_acts(m);
    size_t widest = widest_operand(m, f->slots, N);
    for (int s = 0; s < f->slots; s++) {
        int ic, oc;
        size_t off;
        gt_linear_dims(m, s, &ic, &oc, &off);
        f->x8t[s] = m->ops->alloc(m->be, (size_t)N * ic);
    }
    f->x8 = m->ops->alloc(m->be, widest);
    f->dy8 = m->ops->alloc(m->be, widest);
    f->dy8t = m->ops->alloc(m->be, widest);
    f->n_tokens = N;
}

/* Casts every FP8 weight and its transpose with the current weight scales, recording their amax,
 * and keeps the scale_inv they were cast with. */
void gt_model_fp8_cast_weights(gt_model *m, int train) {
    gt_fp8 *f = m->fp8;
    for (int s = 0; s < f->slots; s++) {
        int ic, oc, t = gt_fp8_t_w(s);
        size_t off;
        gt_linear_dims(m, s, &ic, &oc, &off);
        /* w8t[s] is NULL in inference: the cast writes W8 alone */
        m->ops->fp8_cast(m->be, f->w8[s], f->w8t[s], PARAM(m, off), oc, ic, GT_E4M3, f->scale + t,
                         train ? f->history + t : f->eval_amax);
    }
    m->ops->copy(m->be, f->w_sinv, f->scale_inv, 2 * (size_t)f->slots * sizeof(float));
    f->weights_stale = 0;
}

void gt_model_fp8_inference(gt_model *m, int max_rows) {
    gt_fp8 *f = m->fp8;
    GT_ASSERT(f && max_rows > 0, "gt_model_fp8_inference: FP8 off or %d rows", max_rows);
    if (f->infer_rows >= max_rows) { /* already (another decoder): its x8 stays where it is */
        if (f->weights_stale) gt_model_fp8_cast_weights(m, 0);
        return;
    }
    free_acts(m);
    int widest_in = 0;
    for (int s = 0; s < f->slots; s++) {
        int ic, oc;
        size_t off;
        gt_linear_dims(m, s, &ic, &oc, &off);
        widest_in = ic > widest_in ? ic : widest_in;
        m->ops->release(m->be, f->w8t[s]);
        f->w8t[s] = NULL;
    }
    f->x8 = m->ops->alloc(m->be, (size_t)max_rows * widest_in); /* [max_rows, widest IC] E4M3 */
    f->infer_rows = max_rows;
    f->calibrating = 0;
    gt_model_fp8_cast_weights(m, 0); /* weight amaxes go to eval_amax */
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
    GT_ASSERT(!f || !f->infer_rows, "a training forward of a model whose FP8 is in inference mode");
    /* the backward's weight gradients use the inputs' FP8 copies with the scales they are cast with
     * now; the scales change after the forward */
    if (f) m->ops->copy(m->be, f->x_sinv, f->scale_inv, 2 * (size_t)f->slots * sizeof(float));
}

void gt_model_fp8_after_forward(gt_model *m) {
    if (m->fp8) update(m, 0, 2 * m->fp8->slots);
}

void gt_model_fp8_after_backward(gt_model *m) {
    GT_ASSERT(!m->fp8 || !m->fp8->infer_rows, "a backward of a model whose FP8 is in inference mode");
    if (m->fp8) update(m, 2 * m->fp8->slots, m->fp8->slots);
}
