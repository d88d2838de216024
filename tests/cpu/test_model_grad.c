/* Whole-model gradient check: every parameter gradient of the float64 CPU model (sampled entries
 * of every tensor) against central finite differences of the loss, for MHA, GQA and MQA models
 * with a head_dim independent of hidden/heads, masked targets and packed segments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/model.h"
#include "check.h"

typedef struct {
    const char *name;
    int kv, head_dim, use_seg;
    gt_gelu act;
} grad_case;

static double urand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) & 0xffffff) / 16777216.0;
}

static gt_config tiny_config(const grad_case *gc) {
    gt_config cfg = {0};
    cfg.vocab_size = 37;
    cfg.hidden_size = 16;
    cfg.intermediate_size = 24;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = gc->kv;
    cfg.head_dim = gc->head_dim;
    cfg.max_position_embeddings = 64;
    cfg.rms_norm_eps = 1e-6;
    cfg.rope_theta = 10000.0;
    cfg.act = gc->act;
    cfg.tie_word_embeddings = 1;
    cfg.bos_token_id = 2;
    cfg.eos_token_id = 1;
    cfg.pad_token_id = -1; /* true derivatives; HF's padding row is checked by test_hf_parity */
    cfg.initializer_range = 0.02;
    cfg.dtype = GT_F32;
    return cfg;
}

static double loss_at(gt_model *m) { return gt_model_forward(m, 0, 0.0f, NULL); }

static void run_case(gt_check *c, const grad_case *gc) {
    enum { B = 2, T = 7, N = B * T };
    gt_config cfg = tiny_config(gc);
    gt_err err;
    gt_model m;
    gt_backend *be = gt_cpu_backend_create();
    GT_ASSERT(gt_model_init(&m, &cfg, gt_cpu64_ops(), be, 0, 1, &err) == 0, "%s", err.msg);
    double *p = m.params, *g = m.grads;
    unsigned seed = 12345u + (unsigned)gc->kv * 7u + (unsigned)gc->head_dim;
    for (size_t i = 0; i < m.lay.count; i++) p[i] = (urand(&seed) - 0.5) * 0.8;

    int32_t tok[N], tgt[N], pos[N], seg[N];
    for (int i = 0; i < N; i++) {
        int t = i % T;
        tok[i] = (int32_t)(urand(&seed) * cfg.vocab_size);
        tgt[i] = (i % 5 == 3) ? -1 : (int32_t)(urand(&seed) * cfg.vocab_size);
        seg[i] = t < 3 ? 0 : 1;
        pos[i] = gc->use_seg ? (t < 3 ? t : t - 3) : t;
    }
    gt_model_alloc_batch(&m, B, T);
    gt_model_set_batch(&m, tok, tgt, pos, gc->use_seg ? seg : NULL);
    gt_model_zero_grads(&m);
    gt_model_forward(&m, 1, 1.0f, NULL);
    gt_model_backward(&m);

    int np;
    gt_piece *pieces = gt_layout_pieces(&m.lay, &cfg, &np);
    const double h = 1e-6;
    double worst = 0;
    const char *worst_name = "";
    for (int k = 0; k < np; k++) {
        const gt_piece *pc = &pieces[k];
        size_t n = (size_t)(pc->nrows * pc->ncols);
        double num = 0, den = 0;
        for (int s = 0; s < 6; s++) {
            size_t i = pc->dst + (size_t)(urand(&seed) * n);
            double keep = p[i];
            p[i] = keep + h;
            double lp = loss_at(&m);
            p[i] = keep - h;
            double lm = loss_at(&m);
            p[i] = keep;
            double fd = (lp - lm) / (2 * h);
            num += (g[i] - fd) * (g[i] - fd);
            den += fd * fd;
        }
        double e = den > 0 ? sqrt(num / den) : sqrt(num);
        if (!(e <= worst)) worst = e, worst_name = pc->name;
    }
    char what[160];
    snprintf(what, sizeof what, "%s: %d tensors (worst %s)", gc->name, np, worst_name);
    gt_check_rel(c, worst, 1e-6, what);
    free(pieces);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
}

int main(void) {
    static const grad_case cases[] = {
        {"MHA head_dim 8 tanh", 4, 8, 0, GT_GELU_TANH},
        {"GQA kv 2 head_dim 6 erf", 2, 6, 0, GT_GELU_ERF},
        {"MQA kv 1 head_dim 8 segments", 1, 8, 1, GT_GELU_TANH},
    };
    gt_check c = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&c, &cases[i]);
    return gt_check_done(&c, "model_grad");
}
