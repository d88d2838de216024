/* Parallel checkpoints over MPI (CPU backend), for every tp x dp layout of this job's ranks and
 * the MQA (one KV head, replicated across tp) and GQA fixtures:
 *   - every rank of dp replica 0 writes its slices, no gather: after 3 steps the checkpoint is
 *     loaded back at the same layout bitwise, and 2 more steps give bitwise the same losses;
 *   - the same checkpoint loaded at tp=1 (dp = world) holds bitwise the weights and moments every
 *     tp rank had in its slices (each slice written, at the right place), model.safetensors holds
 *     exactly the BF16 rounding of the master weights, the run continues within float tolerance
 *     of the tp run, and the weights are a single-process run's within TP's float drift.
 * Run under mpirun -np 2 and -np 4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/safetensors.h"
#include "../cpu/check.h"
#include "../cpu/ckpt_harness.h"

typedef struct {
    gt_check c;
    char base[64];
    gt_grid *g1; /* tp = 1, dp = world */
    int rank;
} ctx;

static int all_ok(int ok) {
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return ok;
}

static void check(ctx *x, int ok, const char *fmt, const char *fixture, int tp, int dp) {
    ok = all_ok(ok);
    char what[256];
    snprintf(what, sizeof what, fmt, fixture, tp, dp);
    if (x->rank == 0) gt_check_true(&x->c, ok, "%s", what);
    if (x->rank == 0 && ok) printf("ok   %s\n", what);
}

static void join_grid(harness *h, gt_grid *g) {
    gt_model_set_tp(&h->m, &g->tp_group);
    h->dp = g->dp;
    h->dp_rank = g->dp_rank;
    h->dpg = g->dp > 1 ? &g->dp_group : NULL;
}

static double rel_err_buffers(const harness *a, const harness *b, const void *pa, const void *pb) {
    size_t n = a->m.lay.count;
    float *x = gt_malloc(n * 4), *y = gt_malloc(n * 4);
    a->m.ops->download(a->be, GT_GRAD, x, pa, n);
    b->m.ops->download(b->be, GT_GRAD, y, pb, n);
    double e = gt_rel_err_f(x, y, n);
    free(x);
    free(y);
    return e;
}

/* The slices of HF tensor `name` that h holds in buf (a parameter-shaped float buffer), placed in
 * full[rows * cols]; elements h does not hold are left as they are. */
static void to_full(const harness *h, const void *buf, const char *name, float *full) {
    int np;
    gt_piece *pc = gt_layout_pieces(&h->m.lay, &h->m.cfg, &np);
    int64_t rows, cols;
    int nd;
    gt_hf_tensor_dims(&h->m.cfg, name, &rows, &cols, &nd);
    for (int i = 0; i < np; i++) {
        const gt_piece *p = &pc[i];
        if (strcmp(p->name, name)) continue;
        for (int64_t r = 0; r < p->nrows; r++)
            h->m.ops->download(h->be, GT_GRAD, full + (p->row0 + r) * cols + p->col0,
                               (const float *)buf + p->dst + (size_t)(r * p->ncols), (size_t)p->ncols);
    }
    free(pc);
}

/* 1 when every element the tp rank `a` holds in buffer ba equals bitwise the tp=1 model c's in bc. */
static int slices_equal(const harness *a, const void *ba, const harness *c, const void *bc) {
    int np, same = 1;
    gt_piece *pc = gt_layout_pieces(&c->m.lay, &c->m.cfg, &np);
    for (int i = 0; i < np && same; i++) {
        if (i > 0 && !strcmp(pc[i].name, pc[i - 1].name)) continue;
        int64_t rows, cols;
        int nd;
        gt_hf_tensor_dims(&c->m.cfg, pc[i].name, &rows, &cols, &nd);
        size_t n = (size_t)(rows * cols);
        float *mine = gt_malloc(n * 4), *full = gt_malloc(n * 4);
        for (size_t k = 0; k < n; k++) mine[k] = NAN;
        to_full(a, ba, pc[i].name, mine);
        to_full(c, bc, pc[i].name, full);
        for (size_t k = 0; k < n && same; k++) same = isnan(mine[k]) || !memcmp(&mine[k], &full[k], 4);
        free(mine);
        free(full);
    }
    free(pc);
    return same;
}

/* Loads checkpoint ck into a fresh harness on grid g (tp rank g->tp_rank of g->tp). */
static void load_into(harness *h, const char *fixture_dir, gt_grid *g, const char *ck) {
    gt_ckpt_state got;
    gt_err err;
    h_open(h, fixture_dir, gt_cpu_ops(), g->tp_rank, g->tp, 0);
    join_grid(h, g);
    GT_ASSERT(!gt_checkpoint_load(&h->m, &h->o, g, ck, &got, &err), "load at tp=%d: %s", g->tp, err.msg);
    GT_ASSERT(got.step == 3 && got.tp > 0, "trainer state step %lld", got.step);
    gt_ckpt_state_free(&got);
}

/* Compares the tp=1 load c and a single-process run of 3 steps: TP sums in another order, so after
 * 3 AdamW steps the MQA weights drift ~2e-5 from it. */
static void check_reference(ctx *x, const harness *c, const char *dir, const char *fixture, gt_grid *g) {
    harness ref;
    h_open(&ref, dir, gt_cpu_ops(), 0, 1, 1);
    for (int s = 1; s <= 3; s++) h_step(&ref, s);
    double ep = rel_err_buffers(c, &ref, c->m.params, ref.m.params);
    double em = rel_err_buffers(c, &ref, c->o.mom, ref.o.mom), ev = rel_err_buffers(c, &ref, c->o.var, ref.o.var);
    check(x, ep < 1e-4 && em < 1e-3 && ev < 1e-3,
          "%s tp=%d dp=%d: checkpoint = single-process weights and moments (tol 1e-4 / 1e-3)", fixture, g->tp, g->dp);
    h_close(&ref);
}

static void run_layout(ctx *x, gt_grid *g, const char *fixture) {
    char dir[128], run[GT_CKPT_PATH], ck[GT_CKPT_PATH];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", fixture);
    snprintf(run, sizeof run, "%s/%s-tp%d", x->base, fixture, g->tp);
    harness a, b, c;
    h_open(&a, dir, gt_cpu_ops(), g->tp_rank, g->tp, 1);
    join_grid(&a, g);
    for (int s = 1; s <= 3; s++) h_step(&a, s);
    gt_ckpt_state st = h_state(&a, 3, g->tp, g->dp);
    gt_ckpt_options opt = {run, GT_BF16, 0, 0};
    gt_err err;
    GT_ASSERT(!gt_checkpoint_save(&a.m, &a.o, g, &st, &opt, ck, &err), "save: %s", err.msg);

    load_into(&b, dir, g, ck);
    check(x, h_same(&a, &b), "%s tp=%d dp=%d: reloaded state bitwise equal", fixture, g->tp, g->dp);
    load_into(&c, dir, x->g1, ck);
    check(x, h_weights_error(&c, ck, 1) == 0, "%s tp=%d dp=%d: model.safetensors = BF16 of the master weights", fixture,
          g->tp, g->dp);
    check(x, c.o.step == 3 && slices_equal(&a, a.m.params, &c, c.m.params) && slices_equal(&a, a.o.mom, &c, c.o.mom) &&
                 slices_equal(&a, a.o.var, &c, c.o.var),
          "%s tp=%d dp=%d: loaded at tp=1: every rank's slices of weights and moments bitwise", fixture, g->tp, g->dp);
    check_reference(x, &c, dir, fixture, g);

    double la[2], lb[2], lc[2];
    for (int s = 4; s <= 5; s++) la[s - 4] = h_step(&a, s), lb[s - 4] = h_step(&b, s), lc[s - 4] = h_step(&c, s);
    check(x, la[0] == lb[0] && la[1] == lb[1], "%s tp=%d dp=%d: resumed losses bitwise equal", fixture, g->tp, g->dp);
    double worst = fmax(fabs(lc[0] - la[0]) / la[0], fabs(lc[1] - la[1]) / la[1]);
    check(x, worst < 1e-4, "%s tp=%d dp=%d: resumed at tp=1 dp=world: losses within 1e-4", fixture, g->tp, g->dp);
    h_close(&a);
    h_close(&b);
    h_close(&c);
}

int main(int argc, char **argv) {
    ctx x;
    memset(&x, 0, sizeof x);
    MPI_Init(&argc, &argv);
    int world;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &x.rank);
    if (x.rank == 0) {
        snprintf(x.base, sizeof x.base, "/tmp/gt-mpickpt-XXXXXX");
        GT_ASSERT(mkdtemp(x.base), "mkdtemp failed");
    }
    MPI_Bcast(x.base, sizeof x.base, MPI_CHAR, 0, MPI_COMM_WORLD);
    gt_grid g1;
    gt_err err;
    GT_ASSERT(!gt_grid_init(&g1, &argc, &argv, 1, &err), "%s", err.msg);
    x.g1 = &g1;
    const char *fixtures[] = {"mqa", "gqa"};
    for (int tp = 1; tp <= world; tp *= 2) {
        if (world % tp) continue;
        gt_grid g;
        GT_ASSERT(!gt_grid_init(&g, &argc, &argv, tp, &err), "%s", err.msg);
        for (int f = 0; f < 2; f++) run_layout(&x, &g, fixtures[f]);
        gt_grid_free(&g);
    }
    gt_grid_free(&g1);
    int failed = all_ok(!x.c.failed) ? 0 : 1;
    int rc = x.rank == 0 ? gt_check_done(&x.c, "mpi_checkpoint") : 0;
    if (x.rank == 0 && !failed) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", x.base);
        GT_ASSERT(system(cmd) == 0, "%s failed", cmd);
    }
    MPI_Finalize();
    return failed ? 1 : rc;
}
