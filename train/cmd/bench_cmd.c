/* gemmatron bench --model DIR [--batch B] [--seq T] [--steps S] [--warmup W] [--tp N] [--device D]
 *                 [--accum K] [--fp8] [--fp8-lm-head] [--no-tp-overlap] [--profile] [--set KEY=VALUE ...]
 *
 * Times complete training steps of the model in DIR (its config.json; its safetensors weights if
 * present, else HF's random initialization) on random tokens: the trainer's own step
 * (gt_trainer_step, train/trainer.h: forward, lm_head and cross-entropy, backward, global gradient
 * norm and AdamW), so the speed reported is the speed of `gemmatron train`. Prints the median step time, tokens/s and MFU
 * (model/flops.h), device memory in use, and with --profile a breakdown of one step by op class
 * against each class's roofline. Under mpirun: tensor parallel over --tp ranks, data parallel over
 * the rest; B is the micro-batch of each dp replica; tokens/s counts the whole job. --accum K: K
 * micro-batches (forward and backward) per optimizer step, as the run configs' data.grad_accum
 * (--profile breaks down a step of one micro-batch). --fp8: the four
 * GEMMs of every layer in FP8 with delayed scaling (history 1024, "max"), after one calibration step;
 * --fp8-lm-head: the lm_head GEMMs too (implies --fp8). --no-tp-overlap: the backward's tp sums of
 * input gradients wait for each other instead of running beside the weight-gradient GEMMs. --set: any
 * run-config key over the benchmark's own (e.g. --set optim.state=bf16). The trainer's memory plan
 * (train/memory_plan.h) runs first: a benchmark that would not fit stops with its one line, and
 * --profile prints the plan's components beside the device memory measured after the step. */
#include "bench_cmd.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/host_mem.h"
#include "../../model/flops.h"
#include "../metrics/op_profile.h"
#include "../trainer.h"
#include "cli.h"

typedef struct {
    const char *model, *device;
    int batch, seq, steps, warmup, profile, tp, fp8, fp8_head, accum, tp_overlap;
    gt_cli_list sets; /* --set KEY=VALUE, in command-line order */
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
     .help = "then a breakdown of one step (of one micro-batch) by op class against each class's roofline, and the "
             "memory plan beside the memory in use"},
    {.name = "--set", .kind = GT_OPT_LIST, .offset = offsetof(bench_args, sets), .meta = "KEY=VALUE",
     .help = "a run-config key over the benchmark's settings, as train's --set (e.g. --set optim.state=bf16)"},
};

const gt_cli_cmd gt_bench_cli = {
    .name = "bench",
    .summary = "times full training steps (random init when DIR holds only config.json)",
    .about = "Times complete training steps on random tokens (forward, lm_head and cross-entropy, backward, "
             "gradient norm, AdamW) and prints the median step time, tokens/s (of the whole job), MFU and the "
             "device memory in use.",
    .examples = "gemmatron bench --model configs/hf/gemma-2b\n"
                "gemmatron bench --model configs/hf/gemma-2b --batch 4 --seq 1024 --fp8 --profile\n"
                "mpirun -np 2 gemmatron bench --model configs/hf/gemma-7b --tp 2 --no-tp-overlap\n"
                "gemmatron bench --model configs/hf/gemma-7b --batch 1 --seq 2048 --set optim.state=bf16",
    GT_CLI_OPTS(bench_opts),
};

static int has_weights(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (access(p, R_OK) == 0) return 1;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    return access(p, R_OK) == 0;
}

/* The run config `gemmatron train` would take for this benchmark: AdamW at a constant 1e-5
 * (betas 0.9/0.95, weight decay 0.1, clip 1), one FP8 calibration step, no data files (the
 * batches are fed). */
static int bench_config(gt_run_config *rc, const bench_args *a, int loaded, gt_err *err) {
    char v[6][32];
    snprintf(v[0], sizeof v[0], "%d", a->batch);
    snprintf(v[1], sizeof v[1], "%d", a->seq);
    snprintf(v[2], sizeof v[2], "%d", a->accum);
    snprintf(v[3], sizeof v[3], "%d", a->warmup + a->steps + 1);
    snprintf(v[4], sizeof v[4], "%d", a->tp);
    snprintf(v[5], sizeof v[5], "%d", a->fp8);
    const char *kv[][2] = {
        {loaded ? "model.path" : "model.config", a->model}, {"device", a->device},
        {"data.micro_batch", v[0]}, {"data.seq_len", v[1]}, {"data.grad_accum", v[2]},
        {"data.doc_masking", "false"}, {"optim.lr", "1e-5"}, {"optim.beta2", "0.95"},
        {"optim.weight_decay", "0.1"}, {"optim.schedule", "constant"}, {"train.steps", v[3]},
        {"train.seed", "1234"}, {"train.quiet", "true"}, {"parallel.tp", v[4]},
        {"parallel.tp_overlap", a->tp_overlap ? "true" : "false"}, {"fp8.enabled", a->fp8 ? "true" : "false"},
        {"fp8.lm_head", a->fp8_head ? "true" : "false"}, {"fp8.calibration_steps", v[5]},
    };
    gt_run_config_defaults(rc);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (gt_run_config_set(rc, kv[i][0], kv[i][1], "bench", err)) return -1;
    for (int i = 0; i < a->sets.n; i++)
        if (gt_run_config_override(rc, a->sets.value[i], err)) return -1;
    return 0;
}

/* The synthetic batch fed to every micro-batch: random tokens (a different stream on each dp
 * replica), each predicting the next one. */
typedef struct {
    int32_t *tokens; /* [B*T] */
} bench_batch;

static int64_t bench_fill(void *user, int32_t *buf, int B, int T) {
    const bench_batch *b = user;
    size_t N = (size_t)B * T;
    int32_t *tok = buf, *tgt = buf + N, *pos = buf + 2 * N, *seg = buf + 3 * N;
    memcpy(tok, b->tokens, N * sizeof *tok);
    for (size_t i = 0; i < N; i++) {
        pos[i] = (int32_t)(i % (size_t)T);
        tgt[i] = pos[i] + 1 < T ? tok[i + 1] : -1;
        seg[i] = 0;
    }
    return (int64_t)B * (T - 1);
}

static void bench_tokens(bench_batch *b, int N, int vocab, int dp_rank) {
    b->tokens = gt_malloc((size_t)N * sizeof *b->tokens);
    uint32_t s = 42u + 7919u * (uint32_t)dp_rank;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        b->tokens[i] = (int32_t)((s >> 8) % (uint32_t)vocab);
    }
}

/* One step of one micro-batch, as --profile breaks it down. */
static void single_micro_step(gt_trainer *t) {
    int accum = t->accum;
    gt_step_stats st;
    t->accum = 1;
    gt_trainer_step(t, &st);
    t->accum = accum;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Bytes a memory-bound op class must move in one step (each input read once, each output written
 * once), for its roofline; 0 for compute-bound classes. adds: the residual adds that ran as their
 * own op (the rest ran inside add_rmsnorm_fwd). */
static double class_bytes(int op, const gt_trainer *t, long adds) {
    const gt_model *m = &t->session.model;
    const gt_layout *L = &m->lay;
    double N = m->N, C = L->C, F = L->F, a = (double)m->ops->size[GT_ACT], g = (double)gt_model_grad_size(m);
    double layers = L->L;
    /* norms with the residual add fused in (add_rmsnorm_fwd: every norm but layer 0's ln1, except
     * those fused with an FP8 cast instead) also read the add's second input and write the sum: 4
     * passes instead of 2, and no add */
    double fused = 2 * layers - (double)adds;
    if (fused < 0) fused = 0;
    switch (op) {
    case GT_PROF_RMSNORM_FWD: return ((2 * layers + 1) * 2 + 2 * fused) * N * C * a;
    case GT_PROF_RMSNORM_BWD: return (2 * layers + 1) * 4 * N * C * a;
    case GT_PROF_ROPE: return layers * 2 * 2 * N * (L->Hq + L->Hkv) * L->D * a;
    case GT_PROF_GEGLU_FWD: return layers * 3 * N * F * a;
    case GT_PROF_GEGLU_BWD: return layers * 5 * N * F * a;
    case GT_PROF_ADD: return (double)adds * 3 * N * C * a;
    case GT_PROF_EMBED: return N * C * (2 * a + a + 2 * g);
    case GT_PROF_CE: return 3 * N * (double)L->V * a;
    /* AdamW's bytes per parameter by optim.state, and grad_sumsq's read of the gradients */
    case GT_PROF_OPTIM: return (double)L->count * ((double)gt_opt_step_bytes(m->ops->size, t->opt.cfg.state, gt_model_grad_size(m)) + g);
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

/* The memory plan's components beside what the device reports in use now, after the steps (every
 * buffer of a step persists, so this is the steps' peak of the op buffers; it also counts the CUDA
 * context, NCCL and every other process on the device). */
static void print_plan(const gt_trainer *t) {
    const gt_mem_plan *p = &t->plan;
    const gt_compute *c = &t->session.compute;
    const char *name[] = {"weights", "gradients", "optimizer", "activations", "lm_head/CE chunk", "FP8", "backend"};
    size_t bytes[] = {p->weights, p->grads, p->optim, p->acts, p->ce, p->fp8, p->backend};
    printf("memory plan (optim.state %s, optim.grads %s)\n", gt_opt_state_name(t->opt.cfg.state),
           t->session.model.grad_kind == GT_GRAD ? "fp32" : "bf16");
    for (size_t i = 0; i < sizeof bytes / sizeof bytes[0]; i++)
        printf("  %-17s %9.3f GiB\n", name[i], (double)bytes[i] / (1u << 30));
    printf("  %-17s %9.3f GiB planned, %.3f GiB in use on the device\n", "total", (double)p->total / (1u << 30),
           (double)c->ops->mem_in_use(c->be) / (1u << 30));
}

static void print_profile(gt_trainer *t, double step_s, gt_peak peak) {
    gt_model *m = &t->session.model;
    gt_op_profile prof;
    const gt_ops *ops = m->ops;
    gt_backend *be = m->be;
    gt_op_profile_init(&prof, ops, be);
    m->ops = &prof.ops;
    m->be = (gt_backend *)&prof;
    gt_group *groups[2] = {m->tp, t->grid->dp > 1 ? &t->grid->dp_group : NULL};
    for (int k = 0; k < 2; k++)
        if (groups[k]) groups[k]->timed = 1, groups[k]->seconds = 0, groups[k]->bus_bytes = 0;
    single_micro_step(t);
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
        double s = prof.seconds[i], fl = class_flops(i, m), by = class_bytes(i, t, prof.calls[GT_PROF_ADD]);
        char rate[32] = "";
        double roof = 0;
        if (fl > 0) snprintf(rate, sizeof rate, "%.3g TFLOP/s", fl / s / 1e12), roof = fl / peak.bf16_flops;
        else if (by > 0) snprintf(rate, sizeof rate, "%.3g GB/s", by / s / 1e9), roof = by / peak.mem_bytes_per_s;
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
    print_plan(t);
}

/* --profile: rank 0 prints the breakdown; its peers run the same step, timed alike so that they
 * wait alike. */
static void profile(gt_trainer *t, double step_s, gt_peak peak) {
    if (t->grid->world_rank == 0) {
        print_profile(t, step_s, peak);
        return;
    }
    t->session.model.tp->timed = 1;
    if (t->grid->dp > 1) t->grid->dp_group.timed = 1;
    single_micro_step(t);
}

/* Warm-up steps, then the timed ones: their seconds, sorted, in t_sorted[steps]; returns the last
 * step's loss. */
static double timed_steps(gt_trainer *t, const bench_args *a, double *t_sorted) {
    gt_step_stats st = {0};
    for (int i = 0; i < a->warmup; i++) gt_trainer_step(t, &st);
    for (int i = 0; i < a->steps; i++) {
        gt_trainer_step(t, &st);
        t_sorted[i] = st.seconds;
    }
    qsort(t_sorted, (size_t)a->steps, sizeof *t_sorted, cmp_double);
    return st.loss;
}

static void print_result(const gt_trainer *t, const bench_args *a, const double *ts, double loss, gt_peak peak) {
    const gt_grid *g = t->grid;
    const gt_compute *c = &t->session.compute;
    const gt_config *cfg = &t->session.model.cfg;
    double med = ts[a->steps / 2], tps = (double)a->batch * a->seq * g->dp * a->accum / med;
    if (c->ops->on_host) {
        /* a CPU has no MFU on the GPU scale and no device memory: the process's host memory instead */
        printf("step_ms=%.2f (min %.2f max %.2f) tokens_per_s=%.0f (%.0f per process) rss_gib=%.2f loss=%.4f\n",
               1e3 * med, 1e3 * ts[0], 1e3 * ts[a->steps - 1], tps, tps / g->world_size,
               (double)gt_host_rss_bytes() / (1 << 30), loss);
        return;
    }
    double mfu = tps * gt_flops_per_token(cfg, a->seq) / peak.bf16_flops / g->world_size; /* per GPU */
    double mem = (double)c->ops->mem_in_use(c->be) / (1 << 30);
    printf("step_ms=%.2f (min %.2f max %.2f) tokens_per_s=%.0f (%.0f per GPU) mfu=%.1f%% "
           "mem_in_use_gib=%.2f loss=%.4f\n",
           1e3 * med, 1e3 * ts[0], 1e3 * ts[a->steps - 1], tps, tps / g->world_size, 100 * mfu, mem, loss);
    printf("(MFU: 6 x %.3g matmul params + causal attention = %.3g FLOP/token over %.0f TFLOP/s dense BF16)\n",
           gt_matmul_params(cfg), gt_flops_per_token(cfg, a->seq), peak.bf16_flops / 1e12);
}

static int run_bench(const bench_args *a, gt_grid *g, gt_err *err) {
    int loaded = has_weights(a->model);
    gt_run_config rc;
    gt_trainer t;
    bench_batch batch = {NULL};
    gt_batch_feed feed = {bench_fill, &batch};
    if (bench_config(&rc, a, loaded, err) || gt_trainer_init_fed(&t, &rc, g, &feed, err)) {
        gt_run_config_free(&rc);
        return -1;
    }
    bench_tokens(&batch, a->batch * a->seq, t.session.model.cfg.vocab_size, g->dp_rank);
    const gt_compute *c = &t.session.compute;
    char dev[128];
    c->ops->device_name(c->be, dev, sizeof dev);
    gt_peak peak = c->ops->peak(c->be);
    int lead = g->world_rank == 0;
    if (lead)
        printf("gemmatron bench: %s (%s), B=%d T=%d x %d micro-batches per replica, tp=%d dp=%d on %s [%s]%s\n", a->model,
               loaded ? "weights" : "random init", a->batch, a->seq, a->accum, g->tp, g->dp, c->ops->name, dev,
               a->fp8_head ? " FP8 (lm_head too)" : a->fp8 ? " FP8" : " BF16");
    fflush(stdout);
    gt_watchdog_arm(g->wd, 1);
    /* with --fp8, one BF16 step that only records amaxes: calibrated scales */
    int r = gt_trainer_fp8_calibrate(&t, err);
    double *ts = gt_malloc((size_t)a->steps * sizeof *ts);
    if (r == 0) {
        double loss = timed_steps(&t, a, ts);
        if (lead) print_result(&t, a, ts, loss, peak);
        if (a->profile) profile(&t, a->accum == 1 ? ts[a->steps / 2] : 0, peak);
    }
    gt_watchdog_arm(g->wd, 0);
    free(ts);
    free(batch.tokens);
    gt_trainer_free(&t);
    gt_run_config_free(&rc);
    return r;
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
    gt_cli_list_free(&a.sets);
    return rc ? 1 : 0;
}
