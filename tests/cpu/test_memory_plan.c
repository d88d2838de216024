/* The memory plan (train/memory_plan.h) against what is really allocated, and its GPU numbers:
 *   - on the CPU backend, through an op table that counts every alloc: the model's weights and
 *     gradients, the optimizer of each optim.state, and the micro-batch buffers (before and after a
 *     BF16 forward and backward, which add ln1, ln2 and h) are exactly the plan's bytes;
 *   - FP8 (the CPU backend has FP8 ops): enabling it and one step allocate at most the plan's
 *     FP8 bytes;
 *   - Gemma-7B with the CUDA backend's element sizes (bf16 weights, fp32 gradients), one sequence
 *     of 2048 tokens: optimizer bytes per parameter 12 / 8 / 4 by state, and the fp32 state
 *     does not fit an H200's 139 GiB while bf16 does; ZeRO over 8 dp ranks divides the state. */
#include "check.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/fp8.h"
#include "model/model.h"
#include "train/memory_plan.h"
#include "train/optimizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t g_allocated; /* bytes allocated through the counting table */
static const gt_ops *g_inner;

static void *count_alloc(gt_backend *be, size_t bytes) {
    g_allocated += bytes;
    return g_inner->alloc(be, bytes);
}

static gt_mem_plan plan_of_grads(const gt_config *cfg, const size_t size[3], int state, int B, int T, int tp,
                                 int dp, int zero, int fp8, int bf16_grads) {
    gt_mem_plan_in in = {B, T, tp, dp, zero, state, fp8, 0, 16, bf16_grads};
    gt_mem_plan p;
    gt_err e;
    GT_ASSERT(!gt_memory_plan(cfg, size, 0, &in, &p, &e), "%s", e.msg);
    return p;
}

static gt_mem_plan plan_of(const gt_config *cfg, const size_t size[3], int state, int B, int T, int tp, int dp,
                           int zero, int fp8) {
    return plan_of_grads(cfg, size, state, B, T, tp, dp, zero, fp8, 0);
}

static void check_cpu(gt_check *c) {
    enum { B = 2, T = 32 };
    gt_config cfg;
    gt_err e;
    GT_ASSERT(!gt_config_load(&cfg, "configs/hf/tiny", &e), "%s", e.msg);
    g_inner = gt_cpu_ops();
    gt_ops ops = *g_inner;
    ops.alloc = count_alloc;
    gt_backend *be = gt_cpu_backend_create();
    for (int state = GT_OPT_FP32; state <= GT_OPT_BF16; state++) {
        gt_mem_plan p = plan_of(&cfg, ops.size, state, B, T, 1, 1, 0, 0);
        gt_model m;
        g_allocated = 0;
        GT_ASSERT(!gt_model_init(&m, &cfg, &ops, be, 0, 1, &e), "%s", e.msg);
        gt_check_true(c, g_allocated == p.weights + p.weights, "state %d: model init %zu bytes, plan %zu", state,
                      g_allocated, 2 * p.weights);
        gt_optimizer o;
        gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, state, 0};
        g_allocated = 0;
        gt_optimizer_init(&o, &m, &ac);
        gt_check_true(c, g_allocated == p.optim, "state %d: optimizer %zu bytes, plan %zu", state, g_allocated, p.optim);
        g_allocated = 0;
        gt_model_alloc_batch(&m, B, T);
        size_t batch = g_allocated;
        int32_t *ids = calloc(4 * (size_t)B * T, sizeof *ids);
        for (int i = 0; i < B * T; i++) ids[B * T + i] = (i + 1) % cfg.vocab_size, ids[2 * B * T + i] = i % T;
        gt_model_set_batch(&m, ids, ids + B * T, ids + 2 * B * T, NULL);
        gt_model_forward(&m, 1, 1.0f / (B * T), NULL);
        gt_model_backward(&m);
        gt_check_true(c, g_allocated == p.acts + p.ce, "state %d: micro-batch %zu bytes (%zu before the step), plan %zu",
                      state, g_allocated, batch, p.acts + p.ce);
        g_allocated = 0;
        gt_model_grad_sumsq(&m); /* its partial sums: the rest of the plan's gradients */
        gt_check_true(c, g_allocated == p.grads - p.weights, "state %d: gradient norm %zu bytes, plan %zu", state,
                      g_allocated, p.grads - p.weights);
        free(ids);
        gt_optimizer_free(&o);
        gt_model_free(&m);
    }
    gt_mem_plan p = plan_of(&cfg, ops.size, GT_OPT_FP32, B, T, 1, 1, 0, 1);
    gt_model m;
    GT_ASSERT(!gt_model_init(&m, &cfg, &ops, be, 0, 1, &e), "%s", e.msg);
    gt_model_alloc_batch(&m, B, T);
    g_allocated = 0;
    gt_fp8_recipe r = {0};
    r.history_len = 16;
    gt_model_enable_fp8(&m, &r, NULL);
    gt_model_fp8_size_acts(&m, B * T);
    gt_check_true(c, g_allocated <= p.fp8 && g_allocated > 0, "fp8: %zu bytes allocated, plan %zu", g_allocated, p.fp8);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
}

static void check_7b(gt_check *c) {
    gt_config cfg;
    gt_err e;
    GT_ASSERT(!gt_config_load(&cfg, "configs/hf/gemma-7b", &e), "%s", e.msg);
    const size_t cuda[3] = {2, 4, 4};
    const double h200 = 139.0 * (1u << 30), params = 8.54e9;
    double expect[3] = {12, 8, 4};
    for (int s = GT_OPT_FP32; s <= GT_OPT_BF16; s++) {
        gt_mem_plan p = plan_of(&cfg, cuda, s, 1, 2048, 1, 1, 0, 0);
        double per = (double)p.optim / (double)(p.weights / 2);
        gt_check_true(c, per == expect[s], "7b state %d: %g optimizer bytes per parameter, expected %g", s, per, expect[s]);
        gt_check_true(c, (double)(p.weights / 2) > 0.99 * params && (double)(p.weights / 2) < 1.01 * params,
                      "7b: %zu parameters", p.weights / 2);
        printf("gemma-7b B=1 T=2048 optim.state %s: %.1f GiB (optimizer %.1f, activations %.1f)\n", gt_opt_state_name(s),
               (double)p.total / (1u << 30), (double)p.optim / (1u << 30), (double)(p.acts + p.ce) / (1u << 30));
        if (s == GT_OPT_FP32) gt_check_true(c, (double)p.total > h200, "7b fp32 state plans beyond an H200");
        if (s == GT_OPT_BF16) gt_check_true(c, (double)p.total < h200, "7b bf16 state fits an H200");
    }
    /* bf16 gradients: 2 bytes per parameter instead of 4, the rest unchanged */
    gt_mem_plan f32 = plan_of(&cfg, cuda, GT_OPT_BF16, 1, 2048, 1, 1, 0, 0);
    gt_mem_plan b16 = plan_of_grads(&cfg, cuda, GT_OPT_BF16, 1, 2048, 1, 1, 0, 0, 1);
    gt_check_true(c, b16.grads - 3 * 4 == (f32.grads - 3 * 4) / 2 && b16.total == f32.total - (f32.grads - b16.grads),
                  "7b bf16 gradients: %zu bytes (fp32 %zu)", b16.grads, f32.grads);
    printf("gemma-7b B=1 T=2048 optim.state bf16, optim.grads bf16: %.1f GiB\n", (double)b16.total / (1u << 30));
    gt_mem_plan one = plan_of(&cfg, cuda, GT_OPT_FP32, 1, 2048, 1, 8, 0, 0);
    gt_mem_plan zero = plan_of(&cfg, cuda, GT_OPT_FP32, 1, 2048, 1, 8, 1, 0);
    gt_check_true(c, zero.optim == (one.optim + 7) / 8, "ZeRO over 8 dp ranks: %zu of %zu", zero.optim, one.optim);
}

int main(void) {
    gt_check c = {0, 0};
    check_cpu(&c);
    check_7b(&c);
    return gt_check_done(&c, "memory_plan");
}
