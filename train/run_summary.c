/* The run summary (run_summary.h). */
#include "run_summary.h"

#include <stdlib.h>
#include <string.h>

#include "../core/fs.h"
#include "ckpt/checkpoint.h"
#include "config/run_config.h"

/* p = RUN_DIR/name; 1 when that file exists. */
static int run_file(char p[GT_CKPT_PATH], const char *dir, const char *name) {
    return gt_file_at(p, GT_CKPT_PATH, dir, name);
}

/* train.steps and parallel.tp of RUN_DIR/config.yaml, the config the run was started with. */
static void load_config(const char *run_dir, gt_run_summary *s) {
    char p[GT_CKPT_PATH];
    gt_run_config rc;
    gt_err e;
    gt_run_config_defaults(&rc);
    if (run_file(p, run_dir, "config.yaml") && gt_run_config_load_file(&rc, p, &e) == 0) {
        s->steps_total = rc.steps;
        s->world = (int)rc.tp;
    }
    gt_run_config_free(&rc);
}

static void load_metrics(const char *run_dir, gt_run_summary *s) {
    char p[GT_CKPT_PATH];
    gt_err e;
    if (!run_file(p, run_dir, "metrics.h5")) return;
    if (gt_metrics_read_totals(p, &s->m, &e)) {
        snprintf(s->metrics_note, sizeof s->metrics_note, "%s", e.msg);
        return;
    }
    s->has_metrics = 1;
    int dp = 0, tp = 0;
    if (sscanf(s->m.grid, "dp=%d tp=%d", &dp, &tp) == 2 && dp > 0 && tp > 0) s->world = dp * tp;
}

static void load_latest(const char *run_dir, gt_run_summary *s) {
    char p[GT_CKPT_PATH], *text = NULL;
    gt_err e;
    if (!run_file(p, run_dir, "latest") || gt_read_text(p, &text, &e)) return;
    text[strcspn(text, "\n")] = 0;
    snprintf(s->latest, sizeof s->latest, "%s", text);
    free(text);
}

int gt_run_summary_load(const char *run_dir, gt_run_summary *s, gt_err *err) {
    memset(s, 0, sizeof *s);
    s->world = 1;
    if (ck_list_steps(run_dir, &s->ckpt_steps, &s->nckpt, err)) return -1;
    load_config(run_dir, s);
    load_metrics(run_dir, s);
    load_latest(run_dir, s);
    s->has_final = gt_file_exists(run_dir, "final/config.json");
    s->has_plots = gt_file_exists(run_dir, "plots/loss.png");
    return 0;
}

void gt_run_summary_free(gt_run_summary *s) {
    free(s->ckpt_steps);
    s->ckpt_steps = NULL;
}

static void duration(double s, char *buf, size_t len) {
    long long x = (long long)(s + 0.5);
    if (x >= 3600) snprintf(buf, len, "%lldh%02lldm%02llds", x / 3600, x / 60 % 60, x % 60);
    else if (x >= 60) snprintf(buf, len, "%lldm%02llds", x / 60, x % 60);
    else snprintf(buf, len, "%.1f s", s);
}

static void print_metrics(const gt_run_summary *s, FILE *out) {
    const gt_metrics_totals *m = &s->m;
    char took[32], total[32] = "";
    duration(m->seconds, took, sizeof took);
    if (s->steps_total) snprintf(total, sizeof total, " of %lld", s->steps_total);
    fprintf(out, "  steps: %lld%s (%lld skipped), %.0f tokens, %s of training steps\n", m->last_step, total,
            m->skipped, m->tokens, took);
    if (m->rows)
        fprintf(out, "  train loss: %.4f at step %lld -> %.4f at step %lld\n", m->first_loss, m->first_step,
                m->last_loss, m->last_step);
    if (m->best_eval_step)
        fprintf(out, "  best eval loss: %.4f at step %lld (%lld evaluations; last %.4f at step %lld)\n",
                m->best_eval_loss, m->best_eval_step, m->evals, m->last_eval_loss, m->last_eval_step);
    else
        fprintf(out, "  best eval loss: none (%s)\n", m->evals ? "no finite evaluation" : "no evaluation yet");
}

static void print_checkpoints(const gt_run_summary *s, FILE *out) {
    if (!s->nckpt) {
        fprintf(out, "  checkpoints kept: none\n");
        return;
    }
    fprintf(out, "  checkpoints kept:");
    for (int i = 0; i < s->nckpt; i++) {
        char name[64];
        ck_dir_name(name, sizeof name, s->ckpt_steps[i]);
        fprintf(out, "%s %s%s", i ? "," : "", name, !strcmp(s->latest, name) ? " (latest)" : "");
    }
    fprintf(out, "\n");
}

/* The command that continues the run: its own config.yaml and directory; a resume is automatic
 * when the directory holds a checkpoint (checkpoint.resume). */
static void print_resume(const gt_run_summary *s, const char *run_dir, FILE *out) {
    char launch[32] = "";
    if (s->world > 1) snprintf(launch, sizeof launch, "mpirun -np %d ", s->world);
    long long done = s->has_metrics ? s->m.last_step : 0;
    int finished = s->steps_total && done >= s->steps_total;
    if (finished)
        fprintf(out, "  finished; to train on from its last checkpoint: %sgemmatron train --config %s/config.yaml "
                "--run-dir %s --set train.steps=%lld\n", launch, run_dir, run_dir, 2 * s->steps_total);
    else if (s->nckpt)
        fprintf(out, "  resume: %sgemmatron train --config %s/config.yaml --run-dir %s\n", launch, run_dir, run_dir);
    else
        fprintf(out, "  resume: no checkpoint yet; this starts it over: %sgemmatron train --config %s/config.yaml "
                "--run-dir %s\n", launch, run_dir, run_dir);
}

void gt_run_summary_print(const gt_run_summary *s, const char *run_dir, FILE *out) {
    fprintf(out, "run summary: %s\n", run_dir);
    if (s->has_metrics) print_metrics(s, out);
    else fprintf(out, "  metrics: %s\n", s->metrics_note[0] ? s->metrics_note : "no metrics.h5");
    print_checkpoints(s, out);
    if (s->has_final) fprintf(out, "  final model: %s/final (HF checkpoint: transformers loads it as it is)\n", run_dir);
    else fprintf(out, "  final model: none yet (written after the last step)\n");
    if (s->has_plots)
        fprintf(out, "  plots: %s/plots/ (loss.png, lr.png, throughput.png, grad_norm.png%s)\n", run_dir,
                gt_file_exists(run_dir, "plots/fp8.png") ? ", fp8.png" : "");
    print_resume(s, run_dir, out);
    fflush(out);
}
