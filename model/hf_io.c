/* Loading a rank's slices of an HF checkpoint into the parameter buffer, and copying parameters or
 * gradients back out under their HF names. Both walk the same pieces (model/layout.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp8.h"
#include "model.h"
#include "safetensors.h"

/* Rows read per pread batch, so that a 256k-row embedding never needs a full float copy. */
#define LOAD_MAX_ELEMS ((int64_t)1 << 22)

static int load_piece(gt_model *m, const gt_st *st, const gt_piece *p, float *buf, gt_err *err) {
    int64_t rows, cols;
    int ndim;
    if (gt_hf_tensor_dims(&m->cfg, p->name, &rows, &cols, &ndim)) return gt_fail(err, "no HF shape for %s", p->name);
    int64_t shape[2] = {ndim == 1 ? cols : rows, cols};
    const gt_st_tensor *t;
    if (gt_st_expect(st, p->name, ndim, shape, &t, err)) return -1;
    int64_t step = LOAD_MAX_ELEMS / p->ncols;
    if (step < 1) step = 1;
    for (int64_t r = 0; r < p->nrows; r += step) {
        int64_t n = p->nrows - r < step ? p->nrows - r : step;
        if (gt_st_read_f32(st, t, p->row0 + r, n, p->col0, p->ncols, buf, err)) return -1;
        size_t off = (p->dst + (size_t)(r * p->ncols)) * m->ops->size[GT_ACT];
        m->ops->upload(m->be, GT_ACT, (char *)m->params + off, buf, (size_t)(n * p->ncols));
    }
    return 0;
}

/* Whether name is one of the model's HF tensors: the embedding, the final norm, or a known tensor
 * of a layer "model.layers.N." with N written plainly (no sign, no leading zero) and below
 * num_hidden_layers. */
static int hf_name_known(const gt_config *cfg, const char *name) {
    int64_t rows, cols;
    int ndim;
    if (gt_hf_tensor_dims(cfg, name, &rows, &cols, &ndim)) return 0;
    if (strncmp(name, "model.layers.", 13) != 0) return 1;
    const char *d = name + 13;
    long layer = 0;
    int digits = 0;
    for (; *d >= '0' && *d <= '9'; d++, digits++) {
        if (digits == 0 && *d == '0' && d[1] != '.') return 0;
        layer = layer * 10 + (*d - '0');
        if (layer >= cfg->num_hidden_layers) return 0;
    }
    return digits > 0 && *d == '.';
}

/* What transformers itself ignores when it loads a Gemma checkpoint: an explicit lm_head.weight of
 * the embedding's shape (the head is tied to the embedding) and the rotary inv_freq buffers older
 * exports carry. */
static int hf_name_ignored(const gt_config *cfg, const gt_st_tensor *t) {
    const size_t n = strlen(t->name);
    static const char inv[] = ".rotary_emb.inv_freq";
    if (n > sizeof inv - 1 && strcmp(t->name + n - (sizeof inv - 1), inv) == 0) return 1;
    return strcmp(t->name, "lm_head.weight") == 0 && t->ndim == 2 &&
           t->shape[0] == cfg->vocab_size && t->shape[1] == cfg->hidden_size;
}

/* A tensor the model has no place for means a checkpoint of another model (more layers, another
 * architecture): refused rather than silently ignored. */
static int check_no_extra_tensor(const gt_model *m, const gt_st *st, gt_err *err) {
    for (int i = 0; i < st->ntensors; i++) {
        const char *name = st->tensors[i].name;
        if (hf_name_known(&m->cfg, name) || hf_name_ignored(&m->cfg, &st->tensors[i])) continue;
        return gt_fail(err, "%s: tensor %s is not part of this model (%d layers, tied lm_head): the checkpoint "
                            "belongs to another model or another config.json", st->files[st->tensors[i].file].path,
                       name, m->cfg.num_hidden_layers);
    }
    return 0;
}

int gt_model_load_hf(gt_model *m, const char *dir, gt_err *err) {
    gt_st st;
    if (gt_st_open(&st, dir, err)) return -1;
    if (check_no_extra_tensor(m, &st, err)) {
        gt_st_close(&st);
        return -1;
    }
    int np;
    gt_piece *pieces = gt_layout_pieces(&m->lay, &m->cfg, &np);
    float *buf = gt_malloc((size_t)LOAD_MAX_ELEMS * sizeof(float) + (size_t)m->lay.C * sizeof(float));
    int rc = 0;
    for (int i = 0; i < np && rc == 0; i++) rc = load_piece(m, &st, &pieces[i], buf, err);
    free(buf);
    free(pieces);
    gt_st_close(&st);
    gt_model_fp8_weights_changed(m);
    return rc;
}

int gt_model_first_nonfinite(const gt_model *m, char *name, size_t len) {
    int np, found = 0;
    gt_piece *pieces = gt_layout_pieces(&m->lay, &m->cfg, &np);
    float *buf = gt_malloc((size_t)LOAD_MAX_ELEMS * sizeof(float));
    for (int i = 0; i < np && !found; i++) {
        const gt_piece *p = &pieces[i];
        size_t total = (size_t)(p->nrows * p->ncols);
        for (size_t at = 0; at < total && !found; at += (size_t)LOAD_MAX_ELEMS) {
            size_t n = total - at < (size_t)LOAD_MAX_ELEMS ? total - at : (size_t)LOAD_MAX_ELEMS;
            const char *dev = (const char *)m->params + (p->dst + at) * m->ops->size[GT_ACT];
            m->ops->download(m->be, GT_ACT, buf, dev, n);
            for (size_t k = 0; k < n; k++) {
                if (!isfinite(buf[k])) {
                    snprintf(name, len, "%s", p->name);
                    found = 1;
                    break;
                }
            }
        }
    }
    free(buf);
    free(pieces);
    return found;
}

/* Moves the blocks of HF tensor `name` that this rank holds between the full host tensor and the
 * rank's parameters (grads = 0) or gradients (grads = 1): to_full = 1 exports, 0 imports. */
static void transfer_tensor(const gt_model *m, int grads, const char *name, float *full, int to_full) {
    int np;
    gt_piece *pieces = gt_layout_pieces(&m->lay, &m->cfg, &np);
    gt_kind kind = grads ? m->grad_kind : GT_ACT;
    char *base = grads ? m->grads : m->params;
    for (int i = 0; i < np; i++) {
        const gt_piece *p = &pieces[i];
        if (strcmp(p->name, name)) continue;
        int64_t rows, cols;
        int ndim;
        if (gt_hf_tensor_dims(&m->cfg, p->name, &rows, &cols, &ndim)) GT_DIE("no HF shape for %s", name);
        size_t n = (size_t)(p->nrows * p->ncols), row_bytes = (size_t)p->ncols * sizeof(float);
        float *blk = gt_malloc(n * sizeof(float));
        char *dev = base + p->dst * m->ops->size[kind];
        if (to_full) m->ops->download(m->be, kind, blk, dev, n);
        for (int64_t r = 0; r < p->nrows; r++) {
            float *f = full + (p->row0 + r) * cols + p->col0, *b = blk + r * p->ncols;
            if (to_full) memcpy(f, b, row_bytes);
            else memcpy(b, f, row_bytes);
        }
        if (!to_full) m->ops->upload(m->be, kind, dev, blk, n);
        free(blk);
    }
    free(pieces);
}

void gt_model_export_tensor(const gt_model *m, int grads, const char *name, float *full) {
    transfer_tensor(m, grads, name, full, 1);
}

void gt_model_import_tensor(gt_model *m, int grads, const char *name, const float *full) {
    transfer_tensor(m, grads, name, (float *)full, 0);
    if (!grads) gt_model_fp8_weights_changed(m);
}
