/* The distributed optimizer (ZeRO-1) on GPUs over NCCL (run under mpirun -np 2, one GPU per rank:
 * dp=2, tp=1; tests/gpu/run.sh does so for every test_gpu_tp* executable):
 *  - the collectives on device buffers against values computed here: gt_reduce_owners_start over
 *    ranges that cross the block boundary (each owner gets the sum of its part, the other copy is
 *    left as it was), the in-place gt_reduce_scatter and the in-place gt_allgather (F32);
 *  - the tiny GQA fixture and a 2-layer model of Gemma-2B's shapes (random init), each as two models
 *    on every rank, one with the optimizer sharded over dp, one with the all-reduce optimizer, over
 *    AdamW steps whose gradients are reduced onto their owners during the backward (even steps) or
 *    reduce-scattered after it (odd steps): every step's loss within 1e-5 relative, the BF16
 *    parameters after the last step within 1e-3 (norm-wise: a master weight that differs in its last
 *    bit may round to the neighbouring BF16 value) and bitwise the same on both ranks (the all-gather);
 *  - device memory (ops->mem_in_use) taken by the sharded optimizer's init against
 *    gt_optimizer_device_bytes(ops, count, 2, 1, GT_OPT_FP32), and about half of the unsharded one's.
 * Prints one line per check; exits non-zero on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../comm/grid.h"
#include "../../kernels/cuda/cuda_backend.h"
#include "../../kernels/cuda/cuda_stream.h"
#include "../../train/optimizer.h"
#include "../cpu/check.h"

static void check_collectives(gt_check *c, gt_group *g, gt_backend *be) {
    const gt_ops *ops = gt_cuda_ops();
    enum { BLOCK = 1000 };
    int n = g->size, r = g->rank;
    size_t total = (size_t)n * BLOCK;
    float *h = malloc(total * sizeof *h);
    void *d = ops->alloc(be, total * sizeof(float));
    double ranksum = n * (n + 1) / 2.0;
    size_t ranges[2][2] = {{10, 300}, {BLOCK - 100, total - BLOCK + 50}};
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < total; i++) h[i] = (float)((r + 1) * (int)(i % 4096));
        ops->upload(be, GT_GRAD, d, h, total);
        gt_reduce_owners_start(g, d, ranges[k][0], ranges[k][1], BLOCK, GT_F32);
        gt_group_wait(g);
        ops->download(be, GT_GRAD, h, d, total);
        for (size_t i = 0; i < total; i++) {
            int in = i >= ranges[k][0] && i < ranges[k][0] + ranges[k][1] && (int)(i / BLOCK) == r;
            bad += h[i] != (float)((in ? ranksum : r + 1) * (double)(i % 4096));
        }
    }
    gt_check_true(c, bad == 0, "rank %d: reduce to owners on the device: %d wrong elements", r, bad);
    for (size_t i = 0; i < total; i++) h[i] = (float)((r + 1) * (int)(i % 4096));
    ops->upload(be, GT_GRAD, d, h, total);
    gt_reduce_scatter(g, d, (char *)d + (size_t)r * BLOCK * sizeof(float), BLOCK, GT_F32, GT_RED_SUM);
    ops->download(be, GT_GRAD, h, (char *)d + (size_t)r * BLOCK * sizeof(float), BLOCK);
    bad = 0;
    for (size_t j = 0; j < BLOCK; j++) bad += h[j] != (float)(ranksum * (double)((r * BLOCK + j) % 4096));
    gt_check_true(c, bad == 0, "rank %d: in-place reduce-scatter on the device: %d wrong elements", r, bad);
    for (size_t i = 0; i < total; i++) h[i] = (int)(i / BLOCK) == r ? (float)(i % 4096) : -1.0f;
    ops->upload(be, GT_GRAD, d, h, total);
    gt_allgather(g, (char *)d + (size_t)r * BLOCK * sizeof(float), d, BLOCK, GT_F32);
    ops->download(be, GT_GRAD, h, d, total);
    bad = 0;
    for (size_t i = 0; i < total; i++) bad += h[i] != (float)(i % 4096);
    gt_check_true(c, bad == 0, "rank %d: in-place all-gather on the device: %d wrong elements", r, bad);
    ops->release(be, d);
    free(h);
}

static void batch(int N, int T, int vocab, unsigned seed, int32_t *tok, int32_t *tgt, int32_t *pos) {
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        tok[i] = (int32_t)((seed >> 8) % (unsigned)vocab);
        pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) tgt[i] = (i % T) + 1 < T ? tok[i + 1] : -1;
}

/* One step on this rank's batch; returns the global mean loss. */
static double step(gt_model *m, gt_optimizer *o, gt_group *dp, const int32_t *tok, const int32_t *tgt,
                   const int32_t *pos, int count, int overlap) {
    gt_model_zero_grads(m);
    gt_model_set_batch(m, tok, tgt, pos, NULL);
    double loss = gt_model_forward(m, 1, 1.0f / (float)count, NULL);
    if (overlap) gt_model_overlap_dp(m, dp);
    gt_model_backward(m);
    gt_model_reduce_grads(m, dp);
    gt_optimizer_step(o, 1e-3f, gt_model_grad_sumsq(m));
    gt_allreduce_host(dp, &loss, 1, GT_F64, GT_RED_SUM);
    return loss / count;
}

static void run(gt_check *c, gt_grid *g, gt_backend *be, const char *name, const gt_config *cfg, const char *hf_dir,
                int B, int T, int steps) {
    const gt_ops *ops = gt_cuda_ops();
    gt_err err;
    gt_model ref, m;
    GT_ASSERT(!gt_model_init(&ref, cfg, ops, be, 0, 1, &err) && !gt_model_init(&m, cfg, ops, be, 0, 1, &err), "%s",
              err.msg);
    if (hf_dir) {
        GT_ASSERT(!gt_model_load_hf(&ref, hf_dir, &err) && !gt_model_load_hf(&m, hf_dir, &err), "%s", err.msg);
    } else {
        gt_model_init_random(&ref, 77);
        gt_model_init_random(&m, 77);
    }
    gt_model_alloc_batch(&ref, B, T);
    gt_model_alloc_batch(&m, B, T);
    gt_adamw_config ac = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f};
    gt_optimizer orf, om;
    ops->sync(be);
    size_t used0 = ops->mem_in_use(be);
    gt_optimizer_init_sharded(&om, &m, &ac, &g->dp_group);
    ops->sync(be);
    size_t used1 = ops->mem_in_use(be);
    gt_optimizer_init(&orf, &ref, &ac);
    ops->sync(be);
    size_t used2 = ops->mem_in_use(be);
    size_t count = m.lay.count;
    double sharded = (double)used1 - (double)used0, full = (double)used2 - (double)used1;
    double want = (double)gt_optimizer_device_bytes(ops, count, g->dp, 1, GT_OPT_FP32);
    /* cudaMalloc rounds to pages; the sharded model's buffers were reallocated with padding */
    double slack = 64.0 * 1048576 + 0.01 * want;
    if (want > 256.0 * 1048576)
        gt_check_true(c, fabs(sharded - want) <= slack && sharded < 0.6 * full,
                      "%s rank %d: sharded optimizer takes %.3f GiB (expected %.3f), unsharded %.3f GiB", name, g->world_rank,
                      sharded / 1073741824.0, want / 1073741824.0, full / 1073741824.0);
    int N = B * T, cnt = B * (T - 1);
    int32_t *buf = gt_malloc(3 * (size_t)N * 4), *tok = buf, *tgt = buf + N, *pos = buf + 2 * N;
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        batch(N, T, cfg->vocab_size, 1000u + 7u * (unsigned)s + (unsigned)g->dp_rank, tok, tgt, pos);
        double a = step(&ref, &orf, &g->dp_group, tok, tgt, pos, cnt * g->dp, s % 2 == 0);
        double b = step(&m, &om, &g->dp_group, tok, tgt, pos, cnt * g->dp, s % 2 == 0);
        worst = fmax(worst, fabs(a - b) / a);
        if (g->world_rank == 0) printf("  %s step %d: all-reduce %.6f ZeRO %.6f\n", name, s, a, b);
    }
    float *pa = malloc(count * sizeof *pa), *pb = malloc(count * sizeof *pb);
    ops->download(be, GT_ACT, pa, ref.params, count);
    ops->download(be, GT_ACT, pb, m.params, count);
    double werr = gt_rel_err_f(pb, pa, count);
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += (double)pb[i] * (double)((i % 97) + 1);
    double ext[2] = {sum, -sum}; /* max and -min over the ranks */
    gt_allreduce_host(&g->dp_group, ext, 2, GT_F64, GT_RED_MAX);
    char what[160];
    snprintf(what, sizeof what, "%s rank %d: losses of %d steps", name, g->world_rank, steps);
    gt_check_rel(c, worst, 1e-5, what);
    snprintf(what, sizeof what, "%s rank %d: BF16 parameters after them", name, g->world_rank);
    gt_check_rel(c, werr, 1e-3, what);
    gt_check_true(c, ext[0] == -ext[1], "%s rank %d: parameters bitwise the same on every dp rank", name, g->world_rank);
    free(pa);
    free(pb);
    free(buf);
    gt_optimizer_free(&orf);
    gt_optimizer_free(&om);
    gt_model_free(&ref);
    gt_model_free(&m);
}

int main(int argc, char **argv) {
    gt_grid g;
    gt_err err;
    GT_ASSERT(!gt_grid_init(&g, &argc, &argv, 1, &err), "%s", err.msg);
    GT_ASSERT(g.dp >= 2, "run under mpirun -np 2 (or more): dp is %d", g.dp);
    gt_backend *be = gt_cuda_backend_create(g.local_rank % gt_cuda_device_count());
    gt_grid_use_nccl(&g, gt_cuda_stream(be));
    gt_check c = {0};
    check_collectives(&c, &g.dp_group, be);
    gt_config tiny, big;
    GT_ASSERT(!gt_config_load(&tiny, "tests/fixtures/gqa", &err), "%s", err.msg);
    GT_ASSERT(!gt_config_load(&big, "configs/hf/gemma-2b", &err), "%s", err.msg);
    big.num_hidden_layers = 2;
    run(&c, &g, be, "tiny gqa", &tiny, "tests/fixtures/gqa", 4, 64, 6);
    run(&c, &g, be, "gemma-2b shapes, 2 layers", &big, NULL, 1, 1024, 4);
    int failed = c.failed;
    gt_allreduce_host(&g.world, &failed, 1, GT_I32, GT_RED_MAX);
    if (g.world_rank == 0) gt_check_done(&c, "gpu_tp_zero");
    gt_cuda_backend_destroy(be);
    gt_grid_free(&g);
    return failed ? 1 : 0;
}
