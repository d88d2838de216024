/* FP8 under tensor and data parallelism on the CPU backend (mpirun -np 2 and -np 4): the amax of
 * every FP8 tensor is reduced (MAX) over the whole tp x dp group, so every layout ends with the
 * single-process model's scales, and its losses over 4 FP8 AdamW steps agree within 1e-3; with the
 * vocabulary-parallel lm_head in FP8 too (fp8.lm_head) as well. A reduction over a smaller group
 * would leave ranks with different scales. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../comm/grid.h"
#include "../../model/linear.h"
#include "../../train/optimizer.h"
#include "../cpu/check.h"

enum { B = 4, T = 16, N = B * T, STEPS = 4 };

static void make_batch(int step, int vocab, int32_t *tok, int32_t *tgt, int32_t *pos) {
    unsigned s = 99u + 31u * (unsigned)step;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        tok[i] = (int32_t)((s >> 8) % (unsigned)vocab);
        pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) tgt[i] = (i % T) + 1 < T ? tok[i + 1] : -1;
}

/* Runs STEPS FP8 steps of this rank's share (sequences dp_rank, dp_rank + dp, ...). */
static void train(gt_model *m, int head, gt_group *dp, gt_group *world, double *loss) {
    gt_fp8_recipe r = {4, GT_AMAX_MAX, 0.0f, head};
    gt_model_enable_fp8(m, &r, world);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer opt;
    gt_optimizer_init(&opt, m, &ac);
    int dpn = dp ? dp->size : 1, dpr = dp ? dp->rank : 0, nb = B / dpn;
    int32_t tok[N], tgt[N], pos[N], t2[N], g2[N], p2[N];
    gt_model_alloc_batch(m, nb, T);
    for (int s = 0; s < STEPS; s++) {
        make_batch(s, m->cfg.vocab_size, tok, tgt, pos);
        for (int j = 0; j < nb; j++) {
            int b = dpr + j * dpn;
            memcpy(t2 + j * T, tok + b * T, sizeof(int32_t) * T);
            memcpy(g2 + j * T, tgt + b * T, sizeof(int32_t) * T);
            memcpy(p2 + j * T, pos + b * T, sizeof(int32_t) * T);
        }
        gt_model_set_batch(m, t2, g2, p2, NULL);
        gt_model_zero_grads(m);
        double l = gt_model_forward(m, 1, 1.0f / (B * (T - 1)), NULL);
        gt_model_backward(m);
        gt_model_reduce_grads(m, dp);
        if (dp) gt_allreduce(dp, &l, 1, GT_F64, GT_RED_SUM);
        loss[s] = l / (B * (T - 1));
        gt_optimizer_step(&opt, 2e-3f, gt_model_grad_sumsq(m));
    }
    gt_optimizer_free(&opt);
}

/* The single-process reference, then every tp that divides the world (dp = the rest). */
static void run_layouts(gt_check *c, const gt_config *cfg, gt_backend *be, int head, int *argc, char ***argv,
                        int world) {
    gt_err e;
    gt_model ref;
    GT_ASSERT(!gt_model_init(&ref, cfg, gt_cpu_ops(), be, 0, 1, &e) && !gt_model_load_hf(&ref, "tests/fixtures/gqa", &e), "%s", e.msg);
    double lref[STEPS];
    train(&ref, head, NULL, NULL, lref);
    for (int tp = 1; tp <= world; tp *= 2) {
        if (world % tp) continue;
        gt_grid g;
        GT_ASSERT(!gt_grid_init(&g, argc, argv, tp, &e), "%s", e.msg);
        gt_model m;
        GT_ASSERT(!gt_model_init(&m, cfg, gt_cpu_ops(), be, g.tp_rank, tp, &e) && !gt_model_load_hf(&m, "tests/fixtures/gqa", &e),
                  "%s", e.msg);
        gt_model_set_tp(&m, &g.tp_group);
        const gt_layout *L = &m.lay;
        if (L->Q % 16 || (L->Hq * L->D) % 16 || L->F % 16 || (head && gt_model_head_vocab(&m) % 16)) {
            /* some GEMM of this layout is not FP8-sized (multiples of 16) and runs in BF16 */
            if (g.world_rank == 0) printf("skip FP8 tp=%d lm_head=%d: local GEMM sizes not multiples of 16\n", tp, head);
            gt_model_free(&m);
            gt_grid_free(&g);
            continue;
        }
        double l[STEPS], worst = 0, sworst = 0;
        train(&m, head, g.dp > 1 ? &g.dp_group : NULL, &g.world, l);
        for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(l[s] - lref[s]) / lref[s]);
        for (int t = 0; t < m.fp8->count; t++)
            sworst = fmax(sworst, fabs(m.fp8->scale[t] - ref.fp8->scale[t]) / ref.fp8->scale[t]);
        /* every rank must hold the same scales */
        float *mine = gt_malloc((size_t)m.fp8->count * sizeof(float)), *hi = gt_malloc((size_t)m.fp8->count * sizeof(float));
        memcpy(mine, m.fp8->scale, (size_t)m.fp8->count * sizeof(float));
        memcpy(hi, mine, (size_t)m.fp8->count * sizeof(float));
        gt_allreduce(&g.world, hi, (size_t)m.fp8->count, GT_F32, GT_RED_MAX);
        int same = !memcmp(mine, hi, (size_t)m.fp8->count * sizeof(float));
        gt_allreduce(&g.world, &same, 1, GT_I32, GT_RED_SUM);
        if (g.world_rank == 0) {
            char what[160];
            snprintf(what, sizeof what, "FP8 tp=%d dp=%d lm_head=%d: %d-step losses vs one process", g.tp, g.dp, head, STEPS);
            gt_check_rel(c, worst, 1e-3, what);
            snprintf(what, sizeof what, "FP8 tp=%d dp=%d lm_head=%d: scales vs one process", g.tp, g.dp, head);
            gt_check_rel(c, sworst, 1e-3, what);
            gt_check_true(c, same == g.world_size, "FP8 tp=%d dp=%d lm_head=%d: ranks hold different scales", g.tp, g.dp, head);
        }
        free(mine);
        free(hi);
        gt_model_free(&m);
        gt_grid_free(&g);
    }
    gt_model_free(&ref);
}

int main(int argc, char **argv) {
    gt_check c = {0};
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    gt_err e;
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, "tests/fixtures/gqa", &e), "%s", e.msg);
    gt_backend *be = gt_cpu_backend_create();
    for (int head = 0; head <= 1; head++) run_layouts(&c, &cfg, be, head, &argc, &argv, world);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int failed = c.failed;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) gt_check_done(&c, "mpi_fp8");
    gt_cpu_backend_destroy(be);
    MPI_Finalize();
    return failed ? 1 : 0;
}
