/* Random initialization as transformers' GemmaPreTrainedModel._init_weights does it: every linear
 * and embedding weight ~ normal(0, initializer_range), the padding row of the embedding zero, norm
 * weights zero (gamma = 1 + w = 1). Used to train from scratch and to benchmark at full size
 * without downloaded weights.
 *
 * Element (r, c) of HF tensor `name` is a pure function of (seed, name, r * cols + c) — a
 * counter-based generator — so every tp layout holds slices of the same model and each rank
 * computes only its own slices. */
#include <math.h>
#include <stdlib.h>

#include "fp8.h"
#include "model.h"

static uint64_t mix(uint64_t z) { /* splitmix64's finalizer */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t name_key(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return mix(seed ^ mix(h));
}

/* normal(0, std) for element i of a tensor: Box-Muller on two 32-bit uniforms of one hash. */
static float normal_at(uint64_t key, uint64_t i, float std) {
    uint64_t r = mix(key ^ mix(i));
    double u = ((double)(r >> 32) + 0.5) / 4294967296.0, v = ((double)(r & 0xffffffffu) + 0.5) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v)) * std;
}

static void init_piece(gt_model *m, const gt_piece *p, uint64_t seed, float *buf, size_t chunk) {
    int64_t rows, cols;
    int ndim;
    GT_ASSERT(!gt_hf_tensor_dims(&m->cfg, p->name, &rows, &cols, &ndim), "no HF shape for %s", p->name);
    uint64_t key = name_key(seed, p->name);
    int is_embed = !strcmp(p->name, "model.embed_tokens.weight");
    float std = (float)m->cfg.initializer_range;
    int64_t step = (int64_t)chunk / p->ncols;
    for (int64_t r0 = 0; r0 < p->nrows; r0 += step) {
        int64_t nr = p->nrows - r0 < step ? p->nrows - r0 : step;
        for (int64_t r = 0; r < nr; r++) {
            int64_t row = p->row0 + r0 + r;
            float *out = buf + r * p->ncols;
            for (int64_t c = 0; c < p->ncols; c++)
                out[c] = (is_embed && row == m->cfg.pad_token_id) ? 0.0f
                                                                  : normal_at(key, (uint64_t)(row * cols + p->col0 + c), std);
        }
        size_t dst = p->dst + (size_t)(r0 * p->ncols);
        m->ops->upload(m->be, GT_ACT, (char *)m->params + dst * m->ops->size[GT_ACT], buf, (size_t)(nr * p->ncols));
    }
}

void gt_model_init_random(gt_model *m, uint64_t seed) {
    size_t chunk = (size_t)1 << 22;
    float *buf = gt_malloc(chunk * sizeof(float));
    int np;
    gt_piece *pieces = gt_layout_pieces(&m->lay, &m->cfg, &np);
    m->ops->zero(m->be, m->params, m->lay.count * m->ops->size[GT_ACT]);
    for (int i = 0; i < np; i++)
        if (!strstr(pieces[i].name, "norm")) init_piece(m, &pieces[i], seed, buf, chunk);
    free(pieces);
    free(buf);
    gt_model_fp8_weights_changed(m);
}
