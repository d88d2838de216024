/* Host-side access to the FP8 state (model/fp8_state.h). */
#include "fp8_state.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const gemm_name[GT_GEMMS] = {"qkv", "o_proj", "fc1", "fc2"};

void gt_fp8_tensor_name(int count, int t, char *buf, size_t len) {
    int slots = count / 3, layer_slots = slots - slots % GT_GEMMS;
    int s = t < 2 * slots ? t / 2 : t - 2 * slots;
    const char *operand = t >= 2 * slots ? "grad_output" : t % 2 ? "weight" : "input";
    if (s >= layer_slots) snprintf(buf, len, "lm_head.%s", operand);
    else snprintf(buf, len, "layers.%d.%s.%s", s / GT_GEMMS, gemm_name[s % GT_GEMMS], operand);
}

void gt_fp8_host_alloc(const gt_model *m, gt_fp8_host *h) {
    const gt_fp8 *f = m->fp8;
    GT_ASSERT(f, "the model has no FP8 state");
    size_t n = (size_t)f->count;
    h->len = f->len;
    h->count = f->count;
    h->recipe = f->recipe;
    h->history = gt_malloc((size_t)f->len * n * sizeof(float));
    h->scale = gt_malloc(n * sizeof(float));
    h->scale_inv = gt_malloc(n * sizeof(float));
    h->fp8_max = gt_malloc(n * sizeof(float));
}

void gt_fp8_host_free(gt_fp8_host *h) {
    free(h->history);
    free(h->scale);
    free(h->scale_inv);
    free(h->fp8_max);
    memset(h, 0, sizeof *h);
}

void gt_fp8_download(const gt_model *m, gt_fp8_host *h) {
    const gt_fp8 *f = m->fp8;
    gt_fp8_host_alloc(m, h);
    size_t bytes = (size_t)f->count * sizeof(float);
    m->ops->download_raw(m->be, h->history, f->history, (size_t)f->len * bytes);
    m->ops->download_raw(m->be, h->scale, f->scale, bytes);
    m->ops->download_raw(m->be, h->scale_inv, f->scale_inv, bytes);
    m->ops->download_raw(m->be, h->fp8_max, f->fp8_max, bytes);
}

void gt_fp8_download_latest(const gt_model *m, float *newest, float *scale) {
    const gt_fp8 *f = m->fp8;
    size_t bytes = (size_t)f->count * sizeof(float);
    m->ops->download_raw(m->be, newest, f->history + (size_t)(f->len - 1) * (size_t)f->count, bytes);
    m->ops->download_raw(m->be, scale, f->scale, bytes);
}

void gt_fp8_upload(gt_model *m, const gt_fp8_host *h) {
    gt_fp8 *f = m->fp8;
    GT_ASSERT(f && h->len == f->len && h->count == f->count, "FP8 state of another shape");
    size_t bytes = (size_t)f->count * sizeof(float);
    m->ops->upload_raw(m->be, f->history, h->history, (size_t)f->len * bytes);
    m->ops->upload_raw(m->be, f->scale, h->scale, bytes);
    m->ops->upload_raw(m->be, f->scale_inv, h->scale_inv, bytes);
    m->ops->sync(m->be);
    gt_model_fp8_weights_changed(m);
}
