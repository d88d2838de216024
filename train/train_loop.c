/* The whole training run on one rank: steps, evaluations, and on rank 0 the progress lines, the
 * metrics file, the plots, the final model and the run summary.
 *
 * Progress line (rank 0, every train.log_every steps, the first and the last). What is printed is
 * what the backend can tell (gt_ops.on_host): on a GPU MFU and the device memory in use,
 *   step 12/200 | loss 3.4521 | lr 1.000e-03 | grad_norm 1.234 | 29918 tok/s | MFU 46.90% | mem 52.70 GiB | ETA 1m23s
 * on the CPU backends the process's resident host memory instead (a CPU has no MFU on the GPU scale):
 *   step 12/200 | loss 3.4521 | lr 1.000e-03 | grad_norm 1.234 | 5021 tok/s | rss 0.21 GiB | ETA 1m23s
 * MFU as model/flops.h defines it, over the dense BF16 peak (the backend's) of every GPU of the job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "../core/host_mem.h"
#include "ckpt/export_hf.h"
#include "plotter.h"
#include "run_summary.h"
#include "trainer.h"
#include "trainer_ckpt.h"
#include "trainer_fp8.h"
#include "cmd/version.h"
#include "../model/flops.h"

typedef struct {
    gt_metrics metrics;
    int has_metrics;
    int rank0;
    gt_peak peak;     /* of the backend's device */
    double time_sum;  /* seconds of the steps after the first (which also warms up) */
    long long timed;
    gt_plotter plots; /* metrics.plot_every */
    double eval_loss; /* the last evaluation's, for the last line */
    int64_t eval_targets;
} run_state;

static double mem_gib(const gt_trainer *t) {
    const gt_compute *c = &t->session.compute;
    return (double)c->ops->mem_in_use(c->be) / (double)(1 << 30);
}

static void format_eta(double s, char *buf, size_t len) {
    long long x = (long long)(s + 0.5);
    if (x >= 3600) snprintf(buf, len, "%lldh%02lldm", x / 3600, x / 60 % 60);
    else if (x >= 60) snprintf(buf, len, "%lldm%02llds", x / 60, x % 60);
    else snprintf(buf, len, "%llds", x);
}

/* The fields only the device can tell: MFU and device memory on a GPU, the process's resident
 * memory on the host (left out when /proc cannot tell it). */
static void device_fields(const gt_trainer *t, const gt_train_row *row, char *buf, size_t len) {
    buf[0] = 0;
    if (!t->session.compute.ops->on_host) {
        snprintf(buf, len, " | MFU %.2f%% | mem %.2f GiB", 100 * row->mfu, row->gpu_mem_gib);
        return;
    }
    size_t rss = gt_host_rss_bytes();
    if (rss) snprintf(buf, len, " | rss %.2f GiB", (double)rss / (double)(1 << 30));
}

static void print_step(const gt_trainer *t, const gt_step_stats *st, const gt_train_row *row,
                       const run_state *rs) {
    double per = rs->timed ? rs->time_sum / (double)rs->timed : st->seconds;
    char eta[32], device[96];
    format_eta(per * (double)(t->rc->steps - st->step), eta, sizeof eta);
    device_fields(t, row, device, sizeof device);
    printf("step %lld/%lld | loss %.4f | lr %.3e | grad_norm %.3f | %.0f tok/s%s | ETA %s%s\n", st->step,
           t->rc->steps, st->loss, st->lr, st->grad_norm, row->tokens_per_s, device, eta,
           st->skipped ? " | SKIPPED (non-finite gradient or no target)" : "");
    fflush(stdout);
}

static int open_metrics(gt_trainer *t, run_state *rs, gt_err *err) {
    char path[4200], grid[64];
    snprintf(path, sizeof path, "%s/metrics.h5", t->rc->run_dir);
    snprintf(grid, sizeof grid, "dp=%d tp=%d", t->grid->dp, t->grid->tp);
    char *yaml = gt_run_config_yaml(t->rc);
    gt_metrics_fp8_info fp8;
    const gt_compute *c = &t->session.compute;
    char name[80], device[128];
    c->ops->device_name(c->be, name, sizeof name);
    if (strcmp(name, c->ops->name)) snprintf(device, sizeof device, "%s %s", c->ops->name, name);
    else snprintf(device, sizeof device, "%s", name);
    gt_metrics_info info = {.config_yaml = yaml, .grid = grid, .version = gt_version_name(),
                            .flops_per_token = t->flops_per_token, .seq_len = t->rc->seq_len, .device = device,
                            .on_host = c->ops->on_host, .fp8 = gt_trainer_fp8_info(t, &fp8)};
    int rc = gt_metrics_open(&rs->metrics, path, &info, t->step, err);
    if (info.fp8) gt_trainer_fp8_info_free(&fp8);
    free(yaml);
    rs->has_metrics = rc == 0;
    return rc;
}

static int record_step(gt_trainer *t, const gt_step_stats *st, run_state *rs, gt_err *err) {
    if (st->step > 1) rs->time_sum += st->seconds, rs->timed++;
    double tps = st->tokens / st->seconds;
    int world = t->grid->dp * t->grid->tp;
    gt_train_row row = {st->step, st->loss, st->lr, st->grad_norm, tps,
                        tps * t->flops_per_token / (rs->peak.bf16_flops * world), st->seconds, mem_gib(t)};
    if (!rs->rank0) return 0;
    int log = st->step % t->rc->log_every == 0 || st->step == 1 || st->step == t->rc->steps;
    if (!t->rc->quiet && log) print_step(t, st, &row, rs);
    if (gt_trainer_fp8_record(t, &rs->metrics, err)) return -1;
    return gt_metrics_append_train(&rs->metrics, &row, err);
}

static int evaluate(gt_trainer *t, run_state *rs, gt_err *err) {
    double t0 = gt_now();
    rs->eval_loss = gt_trainer_eval(t, &rs->eval_targets);
    if (!rs->rank0) return 0;
    if (!t->rc->quiet) {
        printf("eval at step %lld: val_loss %.4f over %lld tokens (%.1f s; %s /eval)\n", t->step, rs->eval_loss,
               (long long)rs->eval_targets, gt_now() - t0, rs->metrics.path);
        fflush(stdout);
    }
    return gt_metrics_append_eval(&rs->metrics, t->step, rs->eval_loss, err);
}

static void print_start(const gt_trainer *t, const run_state *rs) {
    const gt_run_config *rc = t->rc;
    double global = (double)rc->micro_batch * (double)rc->grad_accum * t->grid->dp;
    printf("gemmatron train: %s (%s), %.3gM matmul params, on %s, dp=%d tp=%d\n",
           rc->model_path ? rc->model_path : rc->model_config, rc->model_path ? "fine-tune" : "random init",
           gt_matmul_params(&t->session.model.cfg) / 1e6, t->session.compute.ops->name, t->grid->dp, t->grid->tp);
    printf("data: %lld sequences of %lld tokens per epoch from %d file(s); global batch %.0f sequences "
           "= %.0f tokens per step; %lld steps\n",
           (long long)t->train.nseq, rc->seq_len, t->train.nfiles, global, global * (double)rc->seq_len,
           rc->steps);
    if (t->session.compute.ops->on_host)
        printf("progress: tokens/s, ETA and the resident host memory of this process (rss; no MFU on a CPU)\n");
    else
        printf("MFU = tokens/s x %.4g FLOP/token (6 x matmul params + causal attention) / (%.0f TFLOP/s "
               "dense BF16 x %d GPUs)\n",
               t->flops_per_token, rs->peak.bf16_flops / 1e12, t->grid->dp * t->grid->tp);
    if (rc->plot_every) printf("plots: %s/plots/*.png, redrawn every %lld steps\n", rc->run_dir, rc->plot_every);
    gt_trainer_fp8_print(t);
    fflush(stdout);
}

static int save_final(gt_trainer *t, const run_state *rs, gt_err *err) {
    if (!t->rc->save_final) return 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/final", t->rc->run_dir);
    gt_dtype dt = t->session.model.cfg.dtype == GT_BF16 || t->session.model.cfg.dtype == GT_F16 ? t->session.model.cfg.dtype : GT_F32;
    double t0 = gt_now();
    if (gt_export_hf(&t->session.model, t->grid, dir, dt, err)) return -1;
    if (rs->rank0 && !t->rc->quiet) printf("final model: %s (HF checkpoint, %.1f s)\n", dir, gt_now() - t0);
    return 0;
}

static int run_steps(gt_trainer *t, run_state *rs, gt_err *err) {
    const gt_run_config *rc = t->rc;
    while (t->step < rc->steps) {
        gt_step_stats st;
        gt_trainer_step(t, &st);
        if (record_step(t, &st, rs, err)) return -1;
        int periodic = rc->eval_every > 0 && t->step % rc->eval_every == 0;
        if (t->has_val && (periodic || t->step == rc->steps)) {
            if (evaluate(t, rs, err)) return -1;
        }
        if (rc->plot_every > 0 && t->step % rc->plot_every == 0) gt_plotter_refresh(&rs->plots);
        int stop = 0;
        if (gt_trainer_after_step(t, &stop, err)) return -1;
        if (stop) return 1; /* checkpoint written after a stop signal: the job is to be requeued */
    }
    return save_final(t, rs, err);
}

/* Rank 0, after metrics.h5 is closed: the summary of the run directory as `inspect` prints it, then
 * the same last line as `gemmatron eval`, for scripts. */
static void print_end(const gt_trainer *t, const run_state *rs) {
    gt_run_summary s;
    gt_err e;
    if (gt_run_summary_load(t->rc->run_dir, &s, &e) == 0) gt_run_summary_print(&s, t->rc->run_dir, stdout);
    else fprintf(stderr, "gemmatron: warning: no run summary: %s\n", e.msg);
    gt_run_summary_free(&s);
    if (t->has_val && t->step == t->rc->steps)
        printf("eval_loss=%.6f tokens=%lld\n", rs->eval_loss, (long long)rs->eval_targets);
    fflush(stdout);
}

int gt_trainer_run(gt_trainer *t, gt_err *err) {
    run_state rs = {0};
    rs.rank0 = t->grid->world_rank == 0;
    rs.peak = t->session.compute.ops->peak(t->session.compute.be);
    rs.eval_loss = NAN;
    gt_plotter_init(&rs.plots, t->rc->run_dir, !rs.rank0 || t->rc->plot_every <= 0);
    if (rs.rank0 && open_metrics(t, &rs, err)) return -1;
    if (rs.rank0 && !t->rc->quiet) print_start(t, &rs);
    int rc = t->fp8_fresh ? gt_trainer_fp8_calibrate(t, err) : 0;
    if (rc == 0) rc = run_steps(t, &rs, err);
    if (rs.has_metrics) gt_metrics_close(&rs.metrics);
    if (rc == 0) gt_plotter_finish(&rs.plots);
    else gt_plotter_wait(&rs.plots);
    if (rc >= 0 && rs.rank0) print_end(t, &rs);
    return rc;
}
