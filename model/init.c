/* Random initialization as transformers' GemmaPreTrainedModel._init_weights does it: every linear
 * and embedding weight ~ normal(0, initializer_range), the padding row of the embedding zero, norm
 * weights zero (gamma = 1 + w = 1). Used to train from scratch and to benchmark at full size
 * without downloaded weights.
 *
 * Element (r, c) of HF tensor `name` is a pure function of (seed, name, r * cols + c) — a
 * counter-based generator run by the backend (ops.h init_normal) — so every tp layout holds
 * slices of the same model and each rank computes only its own slices, on its own device. */
#include "fp8.h"
#include "model.h"
#include <stdlib.h>

#include "../kernels/normal_hash.h"

static uint64_t name_key(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return gt_mix64(seed ^ gt_mix64(h));
}

void gt_model_init_random(gt_model *m, uint64_t seed) {
    int np;
    gt_piece *pieces = gt_layout_pieces(&m->lay, &m->cfg, &np);
    m->ops->zero(m->be, m->params, m->lay.count * m->ops->size[GT_ACT]);
    for (int i = 0; i < np; i++) {
        const gt_piece *p = &pieces[i];
        if (strstr(p->name, "norm")) continue; /* zero */
        int64_t rows, cols;
        int ndim;
        GT_ASSERT(!gt_hf_tensor_dims(&m->cfg, p->name, &rows, &cols, &ndim), "no HF shape for %s", p->name);
        int64_t pad = !strcmp(p->name, "model.embed_tokens.weight") ? m->cfg.pad_token_id : -1;
        m->ops->init_normal(m->be, (char *)m->params + p->dst * m->ops->size[GT_ACT], p->nrows, p->ncols, cols,
                            p->row0, p->col0, name_key(seed, p->name), (float)m->cfg.initializer_range, pad);
    }
    free(pieces);
    gt_model_fp8_weights_changed(m);
}
