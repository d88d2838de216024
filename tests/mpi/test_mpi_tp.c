/* Tensor and data parallelism on the CPU backend over MPI: for every layout tp x dp of this job's
 * ranks, the loss, every gradient (gathered to full HF tensors) and the gradient norm equal the
 * single-process model's within 1e-5 relative, and the losses of three AdamW steps within 1e-4,
 * on the MHA, MQA (one KV head, replicated across tp) and GQA fixtures and on a model whose vocabulary
 * does not divide by tp. Run under mpirun -np 2 and -np 4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../comm/grid.h"
#include "../../train/optimizer.h"
#include "../cpu/check.h"
#include "../cpu/tp_compare.h"

enum { B = 4, T = 11, N = B * T };

typedef struct {
    int32_t tok[N], tgt[N], pos[N];
    int count;
} batch;

static void make_batch(batch *bt, int vocab) {
    unsigned s = 2024;
    bt->count = 0;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        bt->tok[i] = (int32_t)((s >> 8) % (unsigned)vocab);
        bt->pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) {
        int t = i % T;
        bt->tgt[i] = (t + 1 < T && i % 7 != 3) ? bt->tok[i + 1] : -1;
        bt->count += bt->tgt[i] >= 0;
    }
}

/* A model whose vocabulary (37) does not divide by tp: the last rank holds padding rows, which
 * must take no part in the cross-entropy. Random init is the same model at every layout. */
static gt_config odd_vocab_config(void) {
    gt_config c = {0};
    c.vocab_size = 37, c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8, c.max_position_embeddings = 64;
    c.rms_norm_eps = 1e-6, c.rope_theta = 10000, c.act = GT_GELU_TANH, c.tie_word_embeddings = 1;
    c.bos_token_id = 2, c.eos_token_id = 1, c.pad_token_id = 0, c.initializer_range = 0.3, c.dtype = GT_F32;
    return c;
}

/* Loads the fixture (or, for "vocab37", makes the model above) as rank tp_rank of tp_size. */
static void open_model(gt_model *m, gt_backend *be, const char *dir, int tp_rank, int tp_size) {
    gt_err err;
    gt_config cfg;
    if (strstr(dir, "vocab37")) {
        cfg = odd_vocab_config();
        GT_ASSERT(!gt_model_init(m, &cfg, gt_cpu_ops(), be, tp_rank, tp_size, &err), "%s", err.msg);
        gt_model_init_random(m, 11);
        return;
    }
    GT_ASSERT(!gt_config_load(&cfg, dir, &err) && !gt_model_init(m, &cfg, gt_cpu_ops(), be, tp_rank, tp_size, &err) &&
                  !gt_model_load_hf(m, dir, &err),
              "%s", err.msg);
}

static void feed(gt_model *m, const batch *bt, int dp_rank, int dp) {
    int nb = B / dp;
    gt_model_alloc_batch(m, nb, T);
    int32_t tok[N], tgt[N], pos[N];
    for (int j = 0; j < nb; j++) {
        int b = dp_rank + j * dp;
        memcpy(tok + j * T, bt->tok + b * T, T * sizeof(int32_t));
        memcpy(tgt + j * T, bt->tgt + b * T, T * sizeof(int32_t));
        memcpy(pos + j * T, bt->pos + b * T, T * sizeof(int32_t));
    }
    gt_model_set_batch(m, tok, tgt, pos, NULL);
}

/* One step; returns the global mean loss and leaves reduced gradients in m. */
static double step(gt_model *m, const batch *bt, gt_group *dp) {
    gt_model_zero_grads(m);
    double loss = gt_model_forward(m, 1, 1.0f / (float)bt->count, NULL);
    gt_model_overlap_dp(m, dp); /* dp sums started layer by layer during the backward */
    gt_model_backward(m);
    gt_model_reduce_grads(m, dp);
    if (dp) gt_allreduce(dp, &loss, 1, GT_F64, GT_RED_SUM);
    return loss / bt->count;
}

static void run_layout(gt_check *c, gt_grid *g, const char *fixture) {
    char dir[128], what[200];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", fixture);
    gt_backend *be = gt_cpu_backend_create();
    gt_model ref, m;
    open_model(&ref, be, dir, 0, 1);
    open_model(&m, be, dir, g->tp_rank, g->tp);
    gt_model_set_tp(&m, &g->tp_group);
    batch bt;
    make_batch(&bt, ref.cfg.vocab_size);
    feed(&ref, &bt, 0, 1);
    feed(&m, &bt, g->dp_rank, g->dp);
    gt_group *dp = g->dp > 1 ? &g->dp_group : NULL;
    double lr = step(&ref, &bt, NULL), lm = step(&m, &bt, dp);
    char wn[96] = "";
    double ge = gt_test_tp_grad_error(&ref, &m, &g->tp_group, wn, sizeof wn);
    /* the same step with the tp sums of input gradients not overlapped: bit for bit the same */
    gt_test_grads on, off;
    gt_test_grads_gather(&on, &m, &g->tp_group);
    gt_model_overlap_tp(&m, 0);
    step(&m, &bt, dp);
    gt_model_overlap_tp(&m, 1);
    gt_test_grads_gather(&off, &m, &g->tp_group);
    double overlap_diff = 0;
    for (int i = 0; i < on.n; i++) overlap_diff = fmax(overlap_diff, gt_test_grads_error(&off, &on, i));
    gt_test_grads_free(&on);
    gt_test_grads_free(&off);
    double nr = gt_model_grad_sumsq(&ref), nm = gt_model_grad_sumsq(&m);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, GT_OPT_FP32, 0};
    gt_optimizer orf, om;
    gt_optimizer_init(&orf, &ref, &ac);
    gt_optimizer_init(&om, &m, &ac);
    double first_loss = fabs(lm - lr) / lr, worst_loss = 0;
    for (int s = 0; s < 3; s++) {
        gt_optimizer_step(&orf, 1e-2f, gt_model_grad_sumsq(&ref));
        gt_optimizer_step(&om, 1e-2f, gt_model_grad_sumsq(&m));
        double a = step(&ref, &bt, NULL), b = step(&m, &bt, dp);
        if (!(fabs(a - b) / a <= worst_loss)) worst_loss = fabs(a - b) / a;
    }
    if (g->world_rank == 0) {
        snprintf(what, sizeof what, "%s tp=%d dp=%d: loss (%.5f)", fixture, g->tp, g->dp, lr);
        gt_check_rel(c, first_loss, 1e-5, what);
        /* Adam divides by sqrt(v): float rounding of tiny gradients grows over steps */
        snprintf(what, sizeof what, "%s tp=%d dp=%d: losses after 3 AdamW steps", fixture, g->tp, g->dp);
        gt_check_rel(c, worst_loss, 1e-4, what);
        snprintf(what, sizeof what, "%s tp=%d dp=%d: gradients (worst %s)", fixture, g->tp, g->dp, wn);
        gt_check_rel(c, ge, 1e-5, what);
        snprintf(what, sizeof what, "%s tp=%d dp=%d: gradients with tp sums not overlapped", fixture, g->tp, g->dp);
        gt_check_rel(c, overlap_diff, 0.0, what);
        snprintf(what, sizeof what, "%s tp=%d dp=%d: gradient norm", fixture, g->tp, g->dp);
        gt_check_rel(c, fabs(nm - nr) / nr, 1e-5, what);
    }
    gt_optimizer_free(&orf);
    gt_optimizer_free(&om);
    gt_model_free(&ref);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
}

int main(int argc, char **argv) {
    gt_check c = {0};
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const char *fixtures[] = {"mha", "mqa", "gqa", "vocab37"};
    for (int tp = 1; tp <= world; tp *= 2) {
        if (world % tp) continue;
        gt_grid g;
        gt_err err;
        GT_ASSERT(!gt_grid_init(&g, &argc, &argv, tp, &err), "%s", err.msg);
        for (int f = 0; f < 4; f++) run_layout(&c, &g, fixtures[f]);
        gt_grid_free(&g);
    }
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int failed = c.failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int rc = rank == 0 ? gt_check_done(&c, "mpi_tp") : 0;
    MPI_Finalize();
    return failed ? 1 : rc;
}
