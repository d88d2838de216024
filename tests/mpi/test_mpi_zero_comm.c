/* The pieces of the distributed optimizer (ZeRO-1) on the CPU backend over MPI, run under mpirun -np 2
 * and -np 4:
 *  - the collectives it uses, on host buffers against values computed here: gt_reduce_owners_start
 *    over ranges that cross block boundaries (each owner gets the sum of its part, every other copy
 *    is left as it was), the in-place gt_reduce_scatter and the in-place gt_allgather;
 *  - on every tp x dp layout with dp > 1 and the MQA (one KV head: replicated over tp) and GQA
 *    fixtures, a model with its optimizer sharded over dp against the same model with the
 *    all-reduce optimizer, over three AdamW steps whose gradients are reduce-scattered after the
 *    backward (steps 1 and 3) or reduced onto their owners during it (step 2): every step's loss and
 *    the parameters after the last step within 1e-6 relative, the gradient norms within 1e-5 (the
 *    backend's FP32 sum of squares is taken per shard, then summed: another order). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../comm/grid.h"
#include "../../train/optimizer.h"
#include "../cpu/check.h"

enum { B = 4, T = 11, N = B * T };

static void check_collectives(gt_check *c, gt_group *g) {
    int n = g->size, r = g->rank;
    enum { BLOCK = 7 };
    size_t total = (size_t)n * BLOCK;
    float *buf = malloc(total * sizeof *buf);
    double ranksum = n * (n + 1) / 2.0; /* sum over ranks of (rank + 1) */
    /* ranges: inside one block, across one boundary, across all of them */
    size_t ranges[3][2] = {{1, 3}, {BLOCK - 2, 5}, {2, total - 3}};
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < total; i++) buf[i] = (float)((r + 1) * (int)(i + 1));
        gt_reduce_owners_start(g, buf, ranges[k][0], ranges[k][1], BLOCK, GT_F32);
        gt_group_wait(g);
        for (size_t i = 0; i < total; i++) {
            int in = i >= ranges[k][0] && i < ranges[k][0] + ranges[k][1] && (int)(i / BLOCK) == r;
            double want = in ? ranksum * (double)(i + 1) : (double)((r + 1) * (int)(i + 1));
            bad += buf[i] != (float)want;
        }
    }
    gt_check_true(c, bad == 0, "rank %d: reduce to owners over %d ranks: %d wrong elements", r, n, bad);
    for (size_t i = 0; i < total; i++) buf[i] = (float)((r + 1) * (int)(i + 1));
    gt_reduce_scatter(g, buf, buf + (size_t)r * BLOCK, BLOCK, GT_F32, GT_RED_SUM);
    bad = 0;
    for (size_t j = 0; j < BLOCK; j++) bad += buf[(size_t)r * BLOCK + j] != (float)(ranksum * (double)(r * BLOCK + j + 1));
    gt_check_true(c, bad == 0, "rank %d: in-place reduce-scatter: %d wrong elements", r, bad);
    for (size_t i = 0; i < total; i++) buf[i] = (int)(i / BLOCK) == r ? (float)(100 * r + (int)(i % BLOCK)) : -1.0f;
    gt_allgather(g, buf + (size_t)r * BLOCK, buf, BLOCK, GT_F32);
    bad = 0;
    for (size_t i = 0; i < total; i++) bad += buf[i] != (float)(100 * (int)(i / BLOCK) + (int)(i % BLOCK));
    gt_check_true(c, bad == 0, "rank %d: in-place all-gather: %d wrong elements", r, bad);
    free(buf);
}

typedef struct {
    int32_t tok[N], tgt[N], pos[N];
    int count;
} batch;

static void make_batch(batch *bt, int vocab) {
    unsigned s = 77;
    bt->count = 0;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        bt->tok[i] = (int32_t)((s >> 8) % (unsigned)vocab);
        bt->pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) {
        bt->tgt[i] = (i % T + 1 < T && i % 5 != 2) ? bt->tok[i + 1] : -1;
        bt->count += bt->tgt[i] >= 0;
    }
}

static void open_model(gt_model *m, gt_backend *be, const char *dir, gt_grid *g) {
    gt_err err;
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, dir, &err) && !gt_model_init(m, &cfg, gt_cpu_ops(), be, g->tp_rank, g->tp, &err) &&
                  !gt_model_load_hf(m, dir, &err),
              "%s", err.msg);
    gt_model_set_tp(m, &g->tp_group);
    gt_model_alloc_batch(m, B / g->dp, T);
}

/* This dp rank's sequences of the batch. */
static void feed(gt_model *m, const batch *bt, int dp_rank, int dp) {
    int nb = B / dp;
    int32_t tok[N], tgt[N], pos[N];
    for (int j = 0; j < nb; j++) {
        int b = dp_rank + j * dp;
        memcpy(tok + j * T, bt->tok + b * T, T * sizeof(int32_t));
        memcpy(tgt + j * T, bt->tgt + b * T, T * sizeof(int32_t));
        memcpy(pos + j * T, bt->pos + b * T, T * sizeof(int32_t));
    }
    gt_model_set_batch(m, tok, tgt, pos, NULL);
}

/* Forward, backward (dp reductions started in it when overlap), reduction; returns the global mean
 * loss and the squared gradient norm. */
static double step(gt_model *m, const batch *bt, gt_group *dp, int overlap, double *sumsq) {
    gt_model_zero_grads(m);
    double loss = gt_model_forward(m, 1, 1.0f / (float)bt->count, NULL);
    if (overlap) gt_model_overlap_dp(m, dp);
    gt_model_backward(m);
    gt_model_reduce_grads(m, dp);
    *sumsq = gt_model_grad_sumsq(m);
    gt_allreduce(dp, &loss, 1, GT_F64, GT_RED_SUM);
    return loss / bt->count;
}

static void check_layout(gt_check *c, gt_grid *g, const char *fixture) {
    char dir[128];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", fixture);
    gt_backend *be = gt_cpu_backend_create();
    gt_model ref, m;
    open_model(&ref, be, dir, g);
    open_model(&m, be, dir, g);
    batch bt;
    make_batch(&bt, ref.cfg.vocab_size);
    feed(&ref, &bt, g->dp_rank, g->dp);
    feed(&m, &bt, g->dp_rank, g->dp);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f, 0.05f, GT_OPT_FP32, 0}; /* a clip that applies: the norm matters */
    gt_optimizer orf, om;
    gt_optimizer_init(&orf, &ref, &ac);
    gt_optimizer_init_sharded(&om, &m, &ac, &g->dp_group);
    double worst_norm = 0, worst_loss = 0;
    for (int s = 0; s < 3; s++) {
        double nr, nm;
        double lr = step(&ref, &bt, &g->dp_group, s == 1, &nr), lm = step(&m, &bt, &g->dp_group, s == 1, &nm);
        worst_norm = fmax(worst_norm, fabs(nm - nr) / nr);
        worst_loss = fmax(worst_loss, fabs(lm - lr) / lr);
        gt_optimizer_step(&orf, 1e-2f, nr);
        gt_optimizer_step(&om, 1e-2f, nm);
    }
    size_t count = ref.lay.count;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b);
    ref.ops->download(be, GT_ACT, a, ref.params, count);
    m.ops->download(be, GT_ACT, b, m.params, count);
    double werr = gt_rel_err_f(b, a, count);
    size_t lo, hi;
    gt_model_shard_range(&m, &lo, &hi);
    char what[160];
    snprintf(what, sizeof what, "%s tp=%d dp=%d rank %d (shard [%zu, %zu) of %zu): gradient norms", fixture, g->tp,
             g->dp, g->world_rank, lo, hi, count);
    gt_check_rel(c, worst_norm, 1e-5, what);
    snprintf(what, sizeof what, "%s tp=%d dp=%d rank %d: losses", fixture, g->tp, g->dp, g->world_rank);
    gt_check_rel(c, worst_loss, 1e-6, what);
    snprintf(what, sizeof what, "%s tp=%d dp=%d rank %d: parameters after 3 steps", fixture, g->tp, g->dp,
             g->world_rank);
    gt_check_rel(c, werr, 1e-6, what);
    gt_check_true(c, hi - lo <= m.dp_shard && om.hi - om.lo == hi - lo, "%s: shard sizes", fixture);
    free(a);
    free(b);
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
    for (int tp = 1; tp < world; tp *= 2) {
        if (world % tp) continue;
        gt_grid g;
        gt_err err;
        GT_ASSERT(!gt_grid_init(&g, &argc, &argv, tp, &err), "%s", err.msg);
        if (tp == 1) check_collectives(&c, &g.dp_group);
        check_layout(&c, &g, "mqa");
        check_layout(&c, &g, "gqa");
        gt_grid_free(&g);
    }
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int failed = c.failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int rc = rank == 0 ? gt_check_done(&c, "mpi_zero_comm") : 0;
    MPI_Finalize();
    return failed ? 1 : rc;
}
