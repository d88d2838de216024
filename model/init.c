/* Random initialization as transformers' GemmaPreTrainedModel._init_weights does it: every linear
 * and embedding weight ~ normal(0, initializer_range), the padding row of the embedding zero, norm
 * weights zero (gamma = 1 + w = 1). Used to train from scratch and to benchmark at full size
 * without downloaded weights. Deterministic for a seed and layout. */
#include <math.h>
#include <stdlib.h>

#include "model.h"

typedef struct {
    uint64_t s[2];
} rng;

static uint64_t next_u64(rng *r) { /* xorshift128+ */
    uint64_t a = r->s[0], b = r->s[1];
    r->s[0] = b;
    a ^= a << 23;
    r->s[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return r->s[1] + b;
}

static double next_unit(rng *r) { return ((double)(next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Fills buf[n] with normal(0, std) by Box-Muller. */
static void fill_normal(rng *r, float *buf, size_t n, float std) {
    for (size_t i = 0; i < n; i += 2) {
        double u = next_unit(r), v = next_unit(r);
        double rad = sqrt(-2.0 * log(u)) * std;
        buf[i] = (float)(rad * cos(2.0 * M_PI * v));
        if (i + 1 < n) buf[i + 1] = (float)(rad * sin(2.0 * M_PI * v));
    }
}

void gt_model_init_random(gt_model *m, uint64_t seed) {
    const gt_layout *L = &m->lay;
    rng r = {{seed * 0x9E3779B97F4A7C15ull + 1, (seed ^ 0xD1B54A32D192ED03ull) | 1}};
    size_t chunk = (size_t)1 << 22;
    float *buf = gt_malloc(chunk * sizeof(float));
    int np;
    gt_piece *pieces = gt_layout_pieces(L, &m->cfg, &np);
    m->ops->zero(m->be, m->params, L->count * m->ops->size[GT_ACT]);
    for (int i = 0; i < np; i++) {
        const gt_piece *p = &pieces[i];
        if (strstr(p->name, "norm")) continue; /* zero */
        /* whole rows per round, so the padding row is found by its row index */
        int64_t step = (int64_t)chunk / p->ncols;
        for (int64_t r0 = 0; r0 < p->nrows; r0 += step) {
            int64_t rows = p->nrows - r0 < step ? p->nrows - r0 : step;
            size_t k = (size_t)(rows * p->ncols);
            fill_normal(&r, buf, k, (float)m->cfg.initializer_range);
            int64_t pad = m->cfg.pad_token_id - p->row0 - r0;
            if (!strcmp(p->name, "model.embed_tokens.weight") && pad >= 0 && pad < rows)
                memset(buf + pad * p->ncols, 0, (size_t)p->ncols * sizeof(float));
            size_t dst = p->dst + (size_t)(r0 * p->ncols);
            m->ops->upload(m->be, GT_ACT, (char *)m->params + dst * m->ops->size[GT_ACT], buf, k);
        }
    }
    free(pieces);
    free(buf);
}
