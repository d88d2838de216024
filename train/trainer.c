/* Building the trainer of one rank and running one optimizer step or one evaluation. */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "../model/flops.h"
#include "../model/fp8.h"
#include "trainer_fp8.h"

/* ---- building ---- */

/* optim.grads=bf16 (the schema allows only fp32 and bf16). */
static int bf16_grads(const gt_run_config *rc) { return !strcmp(rc->opt_grads, "bf16"); }

/* The run config's memory plan (train/memory_plan.h) for the session's model before it allocates;
 * rank 0 prints it when there is a device budget. A tp the model cannot be split over is left
 * to the model's own check (its message names the key). */
static int plan_memory(void *user, const gt_config *cfg, const gt_compute *c, gt_err *err) {
    gt_trainer *t = user;
    const gt_run_config *rc = t->rc;
    gt_mem_plan_in in = {t->B, t->T, (int)rc->tp, t->grid->dp, rc->zero, GT_OPT_FP32, rc->fp8_enabled,
                         rc->fp8_enabled && rc->fp8_lm_head, (int)rc->fp8_history_len,
                         bf16_grads(rc)};
    gt_opt_state_parse(rc->opt_state, &in.state);
    gt_err e;
    if (gt_memory_plan(cfg, c->ops->size, 0, &in, &t->plan, &e)) return 0;
    if (gt_memory_plan_check(cfg, c->ops, c->be, &in, &t->plan, err)) return -1;
    size_t budget;
    int have;
    if (t->grid->world_rank == 0 && !rc->quiet && !gt_memory_budget(c->ops, c->be, &budget, &have, &e) && have) {
        char parts[256], total[32], free_b[32];
        gt_memory_plan_describe(&t->plan, parts, sizeof parts);
        gt_memory_bytes_text(t->plan.total, total, sizeof total);
        gt_memory_bytes_text(budget, free_b, sizeof free_b);
        printf("memory plan: %s per rank (%s) of %s free\n", total, parts, free_b);
        fflush(stdout);
    }
    return 0;
}

/* The session (backend, model, weights), messages naming the run config's keys; then what needs
 * the model: seq_len against its context, the micro-batch buffers, FP8. */
static int build_model(gt_trainer *t, gt_err *err) {
    const gt_run_config *rc = t->rc;
    gt_session_spec spec = {.device = rc->device,
                            .config = rc->model_path ? rc->model_path : rc->model_config,
                            .weights = rc->model_path,
                            .seed = (uint64_t)rc->seed,
                            .tp_overlap = rc->tp_overlap,
                            .bf16_grads = bf16_grads(rc),
                            .config_key = rc->model_path ? "model.path" : "model.config",
                            .weights_key = "model.path",
                            .tp_key = "parallel.tp",
                            .before_alloc = plan_memory,
                            .user = t};
    if (gt_session_open(&t->session, &spec, t->grid, err)) return -1;
    gt_model *m = &t->session.model;
    if (rc->seq_len > m->cfg.max_position_embeddings) {
        return gt_fail(err, "data.seq_len: %lld is longer than the model's max_position_embeddings (%d)",
                       rc->seq_len, m->cfg.max_position_embeddings);
    }
    gt_model_alloc_batch(m, t->B, t->T);
    return rc->fp8_enabled ? gt_trainer_fp8_enable(t, err) : 0;
}

static int open_loader(gt_trainer *t, gt_loader *ld, const char *what, const gt_strlist *files,
                       int shuffle, gt_err *err) {
    gt_loader_config lc = {what,
                           (const char *const *)files->v,
                           files->n,
                           (uint32_t)t->session.model.cfg.vocab_size,
                           t->T,
                           t->grid->dp_rank,
                           t->grid->dp,
                           t->rc->doc_masking,
                           shuffle,
                           (uint64_t)t->rc->shuffle_seed};
    return gt_loader_open(ld, &lc, err);
}

/* Reads B sequences into buf; returns their targets. */
static int64_t fill_micro(gt_loader *ld, int B, int T, int32_t *buf) {
    size_t N = (size_t)B * T;
    int64_t targets = 0;
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * T;
        targets += gt_loader_next(ld, buf + o, buf + N + o, buf + 2 * N + o, buf + 3 * N + o, NULL);
    }
    return targets;
}

/* The feed of the training loader. */
static int64_t loader_fill(void *loader, int32_t *buf, int B, int T) { return fill_micro(loader, B, T, buf); }

static int build_data(gt_trainer *t, gt_err *err) {
    const gt_run_config *rc = t->rc;
    if (open_loader(t, &t->train, "data.train", &rc->data_train, rc->shuffle, err)) return -1;
    t->has_train = 1;
    t->feed = (gt_batch_feed){loader_fill, &t->train};
    if (rc->data_val.n == 0) return 0;
    if (open_loader(t, &t->val, "data.val", &rc->data_val, 0, err)) return -1;
    t->has_val = 1;
    int64_t need = (int64_t)t->B * t->grid->dp;
    if (t->val.nseq < need) {
        return gt_fail(err, "data.val: %lld sequences of %d tokens, fewer than one evaluation batch "
                            "(micro_batch %d x dp %d)",
                       (long long)t->val.nseq, t->T, t->B, t->grid->dp);
    }
    return 0;
}

int gt_trainer_init(gt_trainer *t, const gt_run_config *rc, gt_grid *grid, gt_err *err) {
    return gt_trainer_init_fed(t, rc, grid, NULL, err);
}

int gt_trainer_init_fed(gt_trainer *t, const gt_run_config *rc, gt_grid *grid, const gt_batch_feed *feed,
                        gt_err *err) {
    memset(t, 0, sizeof *t);
    t->rc = rc;
    t->grid = grid;
    t->B = (int)rc->micro_batch;
    t->T = (int)rc->seq_len;
    t->accum = (int)rc->grad_accum;
    if (rc->tp != grid->tp) {
        return gt_fail(err, "parallel.tp: %lld, but the process grid was made with tp=%d", rc->tp, grid->tp);
    }
    if (feed) t->feed = *feed;
    if (build_model(t, err) || (!feed && build_data(t, err))) {
        gt_trainer_free(t);
        return -1;
    }
    gt_adamw_config ac = {(float)rc->beta1, (float)rc->beta2, (float)rc->eps, (float)rc->weight_decay,
                          (float)rc->clip, GT_OPT_FP32, (uint64_t)rc->seed};
    gt_opt_state_parse(rc->opt_state, &ac.state); /* the schema allows only the known names */
    gt_optimizer_init_sharded(&t->opt, &t->session.model, &ac, rc->zero ? &grid->dp_group : NULL);
    gt_lr_kind kind = GT_LR_COSINE;
    gt_lr_kind_parse(rc->schedule, &kind); /* the schema allows only the known names */
    t->sched = (gt_lr_schedule){kind, rc->lr, rc->min_lr_ratio, rc->warmup_steps, rc->steps};
    t->batch = gt_malloc((size_t)t->accum * 4 * (size_t)t->B * (size_t)t->T * sizeof(int32_t));
    t->flops_per_token = gt_flops_per_token(&t->session.model.cfg, t->T);
    return 0;
}

void gt_trainer_free(gt_trainer *t) {
    free(t->batch);
    gt_optimizer_free(&t->opt);
    gt_session_close(&t->session);
    gt_loader_close(&t->train);
    gt_loader_close(&t->val);
    memset(t, 0, sizeof *t);
}

/* ---- one step ---- */

/* Micro-batch k of the step's buffer: [4][B*T] = tokens, targets, positions, segments. */
static int32_t *micro(gt_trainer *t, int k) { return t->batch + (size_t)k * 4 * (size_t)t->B * t->T; }

static void upload_micro(gt_trainer *t, const int32_t *buf) {
    size_t N = (size_t)t->B * t->T;
    gt_model_set_batch(&t->session.model, buf, buf + N, buf + 2 * N, t->rc->doc_masking ? buf + 3 * N : NULL);
}

static double sum_dp(gt_trainer *t, double v) {
    gt_allreduce_host(&t->grid->dp_group, &v, 1, GT_F64, GT_RED_SUM);
    return v;
}

/* Reads every micro-batch of one step; returns the targets of the global batch (all dp ranks). */
static double read_step(gt_trainer *t) {
    double targets = 0;
    for (int k = 0; k < t->accum; k++) targets += (double)t->feed.fill(t->feed.user, micro(t, k), t->B, t->T);
    return sum_dp(t, targets);
}

/* Forward and backward of every micro-batch read by read_step; returns this rank's loss sum.
 * overlap: a training step, whose gradients gt_model_reduce_grads sums over dp next — its last
 * backward starts those sums layer by layer. */
static double forward_backward(gt_trainer *t, double targets, int overlap) {
    gt_model *m = &t->session.model;
    double loss = 0;
    float dscale = (float)(1.0 / targets);
    gt_model_zero_grads(m);
    for (int k = 0; k < t->accum; k++) {
        upload_micro(t, micro(t, k));
        loss += gt_model_forward(m, 1, dscale, NULL);
        /* the last backward reduces each layer's gradients over dp as soon as they are final
         * (not with a test hook, which edits the gradients after the backward) */
        if (overlap && k == t->accum - 1 && t->grid->dp > 1 && !t->after_backward)
            gt_model_overlap_dp(m, &t->grid->dp_group);
        gt_model_backward(m);
    }
    return loss;
}

void gt_trainer_step(gt_trainer *t, gt_step_stats *st) {
    double t0 = gt_now();
    gt_model *m = &t->session.model;
    memset(st, 0, sizeof *st);
    st->step = ++t->step;
    st->lr = gt_lr_at(&t->sched, st->step);
    st->tokens = (double)t->accum * t->B * t->T * t->grid->dp;
    double targets = read_step(t);
    st->targets = (int64_t)targets;
    if (targets == 0) {
        /* Nothing to learn from (every token a prompt token): the data is consumed, no update. */
        st->loss = st->grad_norm = NAN;
        st->skipped = 1;
        t->skipped++;
        st->seconds = gt_now() - t0;
        return;
    }
    double loss = forward_backward(t, targets, 1);
    if (t->after_backward) t->after_backward(t, t->hook_user);
    gt_model_reduce_grads(m, t->grid->dp > 1 ? &t->grid->dp_group : NULL);
    double sumsq = gt_optimizer_grad_sumsq(&t->opt);
    st->grad_norm = sqrt(sumsq);
    st->skipped = gt_optimizer_step(&t->opt, (float)st->lr, sumsq);
    t->skipped += st->skipped;
    m->ops->sync(m->be);
    st->loss = sum_dp(t, loss) / targets;
    st->seconds = gt_now() - t0;
}

double gt_trainer_eval(gt_trainer *t, int64_t *targets) {
    *targets = 0;
    if (!t->has_val) return NAN;
    gt_loader_seek(&t->val, (gt_loader_pos){0, 0}, NULL); /* position 0 is always valid */
    int64_t batches = t->val.nseq / ((int64_t)t->B * t->grid->dp);
    if (batches > t->rc->eval_steps) batches = t->rc->eval_steps;
    double sums[2] = {0, 0};
    for (int64_t i = 0; i < batches; i++) {
        sums[1] += (double)fill_micro(&t->val, t->B, t->T, t->batch);
        upload_micro(t, t->batch);
        sums[0] += gt_model_forward(&t->session.model, 0, 0.0f, NULL);
    }
    gt_allreduce_host(&t->grid->dp_group, sums, 2, GT_F64, GT_RED_SUM);
    /* An evaluation forward that found the FP8 weights stale cast them without recording their
     * amax (evaluation updates no scale); the next training forward must cast them again and record
     * it, as it would have without the evaluation: else the weight scales lag a step, and a resume
     * from a checkpoint written after an evaluation would not continue bitwise. */
    gt_model_fp8_weights_changed(&t->session.model);
    *targets = (int64_t)sums[1];
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

int gt_trainer_fp8_calibrate(gt_trainer *t, gt_err *err) {
    gt_model *m = &t->session.model;
    long long steps = t->rc->fp8_calibration_steps;
    t->fp8_fresh = 0;
    if (!m->fp8 || steps == 0) return 0;
    gt_loader_pos start = t->has_train ? gt_loader_tell(&t->train) : (gt_loader_pos){0, 0};
    gt_model_fp8_calibrate(m, 1);
    for (long long s = 0; s < steps; s++) {
        double targets = read_step(t);
        /* With no target the backward has nothing to carry: its gradient amaxes would be 0. */
        if (targets > 0) forward_backward(t, targets, 0);
    }
    gt_model_fp8_calibrate(m, 0);
    gt_model_zero_grads(m);
    m->ops->sync(m->be);
    if (t->has_train && gt_loader_seek(&t->train, start, err)) return -1;
    if (t->grid->world_rank == 0 && !t->rc->quiet) {
        printf("fp8: scales calibrated on the batches of %lld step(s) (BF16 forward+backward recording amaxes; no "
               "update, not counted as steps, data position rewound)\n", steps);
        fflush(stdout);
    }
    return 0;
}
