/* gemmatron bench --model DIR [--batch B] [--seq T] [--steps S] [--warmup W] [--tp N] [--device D]
 *                 [--accum K] [--fp8] [--fp8-lm-head] [--no-tp-overlap] [--profile]
 *
 * Times complete training steps of the model in DIR (its config.json; its safetensors weights if
 * present, else HF's random initialization) on random tokens: forward, lm_head and cross-entropy,
 * backward, global gradient norm and AdamW. Prints the median step time, tokens/s and MFU
 * (model/flops.h), device memory in use, and with --profile a breakdown of one step by op class
 * against each class's roofline. Under mpirun: tensor parallel over --tp ranks, data parallel over
 * the rest; B is the micro-batch of each dp replica; tokens/s counts the whole job. --accum K: K
 * micro-batches (forward and backward) per optimizer step, as the run configs' data.grad_accum
 * (--profile breaks down a step of one micro-batch). --fp8: the four
 * GEMMs of every layer in FP8 with delayed scaling (history 1024, "max"), after one calibration step;
 * --fp8-lm-head: the lm_head GEMMs too (implies --fp8). --no-tp-overlap: the backward's tp sums of
 * input gradients wait for each other instead of running beside the weight-gradient GEMMs. */
#include "bench.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../comm/grid.h"
#include "../model/flops.h"
#include "../model/fp8.h"
#include "../model/model.h"
#include "backend.h"
#include "cli.h"
#include "op_profile.h"
#include "optimizer.h"
#ifdef GT_HAVE_CUDA
#include "../kernels/cuda/cuda_backend.h"
#endif

typedef struct {
    const char *model, *device;
    int batch, seq, steps, warmup, profile, tp, fp8, fp8_head, accum, tp_overlap;
} bench_args;

static const gt_opt bench_opts[] = {
    {.name = "--model", .kind = GT_OPT_STRING, .offset = offsetof(bench_args, model), .meta = "DIR", .required = 1,
     .help = "a directory with config.json: its safetensors weights when present, else HF's random initialization "
             "(e.g. configs/hf/gemma-2b)"},
    {.name = "--batch", .kind = GT_OPT_INT, .offset = offsetof(bench_args, batch), .meta = "B", .def = "2", .min = 1,
     .help = "micro-batch of each data-parallel replica, in sequences"},
    {.name = "--seq", .kind = GT_OPT_INT, .offset = offsetof(bench_args, seq), .meta = "T", .def = "2048", .min = 2,
     .help = "sequence length in tokens"},
    {.name = "--steps", .kind = GT_OPT_INT, .offset = offsetof(bench_args, steps), .meta = "S", .def = "10", .min = 1,
     .help = "timed steps (the median is reported)"},
    {.name = "--warmup", .kind = GT_OPT_INT, .offset = offsetof(bench_args, warmup), .meta = "W", .def = "3",
     .help = "untimed steps before them"},
    {.name = "--tp", .kind = GT_OPT_INT, .offset = offsetof(bench_args, tp), .meta = "N", .def = "1", .min = 1,
     .help = "tensor-parallel ranks (under mpirun; the other ranks are data-parallel replicas)"},
    {.name = "--device", .kind = GT_OPT_STRING, .offset = offsetof(bench_args, device), .meta = "D", .def = "auto",
     .help = "auto (cuda when a GPU is visible), cpu, cpu64 or cuda"},
    {.name = "--accum", .kind = GT_OPT_INT, .offset = offsetof(bench_args, accum), .meta = "K", .def = "1", .min = 1,
     .help = "micro-batches (forward and backward) per optimizer step, as a run config's data.grad_accum"},
    {.name = "--fp8", .kind = GT_OPT_FLAG, .offset = offsetof(bench_args, fp8), .flag = 1,
     .help = "the four GEMMs of every layer in FP8 (delayed scaling, history 1024, max), after one calibration step"},
    {.name = "--fp8-lm-head", .kind = GT_OPT_FLAG, .offset = offsetof(bench_args, fp8_head), .flag = 1,
     .help = "the lm_head's GEMMs in FP8 too (implies --fp8)"},
    {.name = "--no-tp-overlap", .kind = GT_OPT_FLAG, .offset = offsetof(bench_args, tp_overlap), .flag = 0,
     .help = "the backward's tp sums of input gradients wait for each other instead of running beside the "
             "weight-gradient GEMMs (parallel.tp_overlap: false)"},
    {.name = "--profile", .kind = GT_OPT_FLAG, .offset = offsetof(bench_args, profile), .flag = 1,
     .help = "then a breakdown of one step (of one micro-batch) by op class against each class's roofline"},
};

const gt_cli_cmd gt_bench_cli = {
    .name = "bench",
    .summary = "times full training steps (random init when DIR holds only config.json)",
    .about = "Times complete training steps on random tokens (forward, lm_head and cross-entropy, backward, "
             "gradient norm, AdamW) and prints the median step time, tokens/s (of the whole job), MFU and the "
             "device memory in use.",
    .examples = "gemmatron bench --model configs/hf/gemma-2b\n"
                "gemmatron bench --model configs/hf/gemma-2b --batch 4 --seq 1024 --fp8 --profile\n"
                "mpirun -np 2 gemmatron bench --model configs/hf/gemma-7b --tp 2 --no-tp-overlap",
    GT_CLI_OPTS(bench_opts),
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int has_weights(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (access(p, R_OK) == 0) return 1;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    return access(p, R_OK) == 0;
}

/* One training step of `accum` micro-batches (the same batch each time); returns the mean loss of
 * this replica. */
static double train_step(gt_model *m, gt_optimizer *opt, float dscale, gt_group *dp, int accum) {
    gt_model_zero_grads(m);
    double loss = 0;
    for (int k = 0; k < accum; k++) {
        loss += gt_model_forward(m, 1, dscale, NULL);
        if (k == accum - 1) gt_model_overlap_dp(m, dp); /* dp sums start layer by layer in the last backward */
        gt_model_backward(m);
    }
    gt_model_reduce_grads(m, dp);
    gt_optimizer_step(opt, 1e-5f, gt_optimizer_grad_sumsq(opt));
    m->ops->sync(m->be);
    return loss * dscale;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Bytes a memory-bound op class must move in one step (each input read once, each output written
 * once), for its roofline; 0 for compute-bound classes. */
static double class_bytes(int op, const gt_model *m) {
    const gt_layout *L = &m->lay;
    double N = m->N, C = L->C, F = L->F, a = (double)m->ops->size[GT_ACT], g = (double)m->ops->size[GT_GRAD];
    double layers = L->L;
    switch (op) {
    case GT_PROF_RMSNORM_FWD: return (2 * layers + 1) * 2 * N * C * a;
    case GT_PROF_RMSNORM_BWD: return (2 * layers + 1) * 4 * N * C * a;
    case GT_PROF_ROPE: return layers * 2 * 2 * N * (L->Hq + L->Hkv) * L->D * a;
    case GT_PROF_GEGLU_FWD: return layers * 3 * N * F * a;
    case GT_PROF_GEGLU_BWD: return layers * 5 * N * F * a;
    case GT_PROF_ADD: return layers * 2 * 3 * N * C * a;
    case GT_PROF_EMBED: return N * C * (2 * a + a + 2 * g);
    case GT_PROF_CE: return 3 * N * (double)L->V * a;
    case GT_PROF_OPTIM: return (double)L->count * (a + 9 * g + 4);
    default: return 0;
    }
}

static double class_flops(int op, const gt_model *m) {
    const gt_layout *L = &m->lay;
    double N = m->N, mm = gt_matmul_params(&m->cfg) / L->tp_size;
    double att = 2.0 * m->B * L->Hq * (double)m->T * m->T * L->D * L->L; /* causal fwd */
    switch (op) {
    case GT_PROF_MATMUL_FWD: return 2 * N * mm;
    case GT_PROF_MATMUL_BWD: return 4 * N * mm;
    case GT_PROF_ATTN_FWD: return att;
    case GT_PROF_ATTN_BWD: return 2.5 * att;
    default: return 0;
    }
}

static void print_profile(gt_model *m, gt_optimizer *opt, float dscale, gt_group *dp, double step_s,
                          double peak_bw) {
    gt_op_profile prof;
    const gt_ops *ops = m->ops;
    gt_backend *be = m->be;
    gt_op_profile_init(&prof, ops, be);
    m->ops = &prof.ops;
    m->be = (gt_backend *)&prof;
    gt_group *groups[2] = {m->tp, dp};
    for (int k = 0; k < 2; k++)
        if (groups[k]) groups[k]->timed = 1, groups[k]->seconds = 0, groups[k]->bus_bytes = 0;
    train_step(m, opt, dscale, dp, 1);
    m->ops = ops;
    m->be = be;
    double total = 0, comm = 0, bus = 0;
    for (int i = 0; i < GT_PROF_COUNT; i++) total += prof.seconds[i];
    for (int k = 0; k < 2; k++)
        if (groups[k]) comm += groups[k]->seconds, bus += groups[k]->bus_bytes, groups[k]->timed = 0;
    total += comm;
    printf("%-15s %6s %9s %6s %14s %11s\n", "op class", "calls", "ms/step", "share", "achieved", "roofline ms");
    for (int i = 0; i < GT_PROF_COUNT; i++) {
        if (!prof.calls[i]) continue;
        double s = prof.seconds[i], fl = class_flops(i, m), by = class_bytes(i, m);
        char rate[32] = "";
        double roof = 0;
        if (fl > 0) snprintf(rate, sizeof rate, "%.3g TFLOP/s", fl / s / 1e12), roof = fl / GT_PEAK_BF16_FLOPS;
        else if (by > 0) snprintf(rate, sizeof rate, "%.3g GB/s", by / s / 1e9), roof = by / peak_bw;
        printf("%-15s %6ld %9.2f %5.1f%% %14s %11.2f\n", gt_op_profile_name(i), prof.calls[i], 1e3 * s,
               100 * s / total, rate, 1e3 * roof);
    }
    if (comm > 0)
        printf("%-15s %6s %9.2f %5.1f%% %9.0f GB/s bus\n", "communication", "", 1e3 * comm, 100 * comm / total,
               bus / comm / 1e9);
    if (step_s > 0)
        printf("profiled step %.2f ms (synchronized per op) vs %.2f ms unprofiled\n", 1e3 * total, 1e3 * step_s);
    else
        printf("profiled step of one micro-batch %.2f ms (synchronized per op)\n", 1e3 * total);
}

static int run_bench(const bench_args *a, gt_grid *g, gt_err *err) {
    gt_config cfg;
    if (gt_config_load(&cfg, a->model, err)) return -1;
    gt_compute c;
    if (gt_compute_open(&c, a->device, g->local_rank, err)) return -1;
    gt_model m;
    if (gt_model_init(&m, &cfg, c.ops, c.be, g->tp_rank, g->tp, err)) {
        gt_compute_close(&c);
        return -1;
    }
    int loaded = has_weights(a->model);
    if (loaded ? gt_model_load_hf(&m, a->model, err) : (gt_model_init_random(&m, 1234), 0)) {
        gt_model_free(&m);
        gt_compute_close(&c);
        return -1;
    }
    if (c.is_cuda) gt_grid_use_nccl(g, gt_compute_stream(&c));
    gt_model_set_tp(&m, &g->tp_group);
    gt_model_overlap_tp(&m, a->tp_overlap);
    gt_group *dp = g->dp > 1 ? &g->dp_group : NULL;
    int B = a->batch, T = a->seq, N = B * T;
    gt_model_alloc_batch(&m, B, T);
    if (a->fp8) {
        gt_fp8_recipe recipe = {1024, GT_AMAX_MAX, 0.0f, a->fp8_head};
        gt_model_enable_fp8(&m, &recipe, g->world_size > 1 ? &g->world : NULL);
    }
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    gt_optimizer opt;
    gt_optimizer_init(&opt, &m, &ac);
    int32_t *buf = gt_malloc(3 * (size_t)N * sizeof(int32_t)), *tok = buf, *tgt = buf + N, *pos = buf + 2 * N;
    uint32_t s = 42u + 7919u * (uint32_t)g->dp_rank;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        tok[i] = (int32_t)((s >> 8) % (uint32_t)cfg.vocab_size);
        pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) tgt[i] = (i % T) + 1 < T ? tok[i + 1] : -1;
    gt_model_set_batch(&m, tok, tgt, pos, NULL);
    float dscale = 1.0f / (float)(B * (T - 1) * g->dp * a->accum), dscale1 = dscale * (float)a->accum;

    char dev[128] = "cpu";
    double peak_bw = 50e9;
#ifdef GT_HAVE_CUDA
    if (c.is_cuda) {
        gt_cuda_device_name(c.be, dev, sizeof dev);
        peak_bw = strstr(dev, "H200") ? 4.8e12 : 3.35e12;
    }
#endif
    int lead = g->world_rank == 0;
    if (lead)
        printf("gemmatron bench: %s (%s), B=%d T=%d x %d micro-batches per replica, tp=%d dp=%d on %s [%s]%s\n", a->model,
               loaded ? "weights" : "random init", B, T, a->accum, g->tp, g->dp, c.ops->name, dev, a->fp8_head ? " FP8 (lm_head too)" : a->fp8 ? " FP8" : " BF16");
    fflush(stdout);
    gt_watchdog_arm(g->wd, 1);
    if (a->fp8) { /* one BF16 forward and backward that only record amaxes: calibrated scales */
        gt_model_fp8_calibrate(&m, 1);
        gt_model_zero_grads(&m);
        gt_model_forward(&m, 1, dscale, NULL);
        gt_model_backward(&m);
        gt_model_fp8_calibrate(&m, 0);
    }
    for (int i = 0; i < a->warmup; i++) train_step(&m, &opt, dscale, dp, a->accum);
    double *t = gt_malloc((size_t)a->steps * sizeof *t), loss = 0;
    for (int i = 0; i < a->steps; i++) {
        double t0 = now();
        loss = train_step(&m, &opt, dscale, dp, a->accum);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)a->steps, sizeof *t, cmp_double);
    double med = t[a->steps / 2], tps = (double)N * g->dp * a->accum / med;
    double mfu = tps * gt_flops_per_token(&cfg, T) / GT_PEAK_BF16_FLOPS;
    double mem = 0;
#ifdef GT_HAVE_CUDA
    if (c.is_cuda) mem = (double)gt_cuda_mem_in_use(c.be) / (1 << 30);
#endif
    mfu /= g->world_size; /* per GPU */
    if (lead) {
        printf("step_ms=%.2f (min %.2f max %.2f) tokens_per_s=%.0f (%.0f per GPU) mfu=%.1f%% "
               "mem_in_use_gib=%.2f loss=%.4f\n",
               1e3 * med, 1e3 * t[0], 1e3 * t[a->steps - 1], tps, tps / g->world_size, 100 * mfu, mem, loss);
        printf("(MFU: 6 x %.3g matmul params + causal attention = %.3g FLOP/token over %.0f TFLOP/s dense BF16)\n",
               gt_matmul_params(&cfg), gt_flops_per_token(&cfg, T), GT_PEAK_BF16_FLOPS / 1e12);
    }
    if (a->profile && lead) print_profile(&m, &opt, dscale1, dp, a->accum == 1 ? med : 0, peak_bw);
    else if (a->profile) { /* peers of the profiled step, timed alike so they wait alike */
        m.tp->timed = 1;
        if (dp) dp->timed = 1;
        train_step(&m, &opt, dscale1, dp, 1);
    }
    gt_watchdog_arm(g->wd, 0);
    free(t);
    free(buf);
    gt_optimizer_free(&opt);
    gt_model_free(&m);
    gt_compute_close(&c);
    return 0;
}

int gt_cmd_bench(int argc, char **argv) {
    bench_args a = {0};
    gt_err err;
    gt_grid g;
    int code = gt_cli_args(&gt_bench_cli, argc, argv, &a);
    if (code != GT_CLI_GO) return code;
    a.fp8 |= a.fp8_head;
    if (gt_grid_init(&g, &argc, &argv, a.tp, &err)) {
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        return 1;
    }
    int rc = run_bench(&a, &g, &err);
    if (rc) fprintf(stderr, "gemmatron: %s\n", err.msg);
    gt_grid_free(&g);
    return rc ? 1 : 0;
}
