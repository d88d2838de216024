/* The trainer (train/trainer.h) on the tiny model, CPU:
 *  - gradient accumulation: the loss of a step of two micro-batches of one sequence is the mean
 *    over all targets of both (computed here from two plain forward passes), not a mean of means,
 *    and its update equals that of one micro-batch of two sequences;
 *  - a step whose gradient is poisoned with a NaN (through the after_backward hook) is skipped and
 *    counted, leaves the weights and AdamW moments bit for bit as they were, and the next step
 *    trains again. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../data/sequence.h"
#include "../../train/trainer.h"
#include "check.h"

#define SHARD "/tmp/gt_trainer_test.bin"
#define T 16

/* Two sequences of T tokens: the first has only 3 targets (a prompt before them), the second all. */
static void write_shard(void) {
    uint32_t tok[2 * T];
    uint8_t attr[2 * T];
    uint32_t s = 12345;
    for (int i = 0; i < 2 * T; i++) {
        s = s * 1664525u + 1013904223u;
        tok[i] = 3 + (s >> 8) % 256;
        attr[i] = (i < T - 3) ? 0 : GT_TOK_TARGET;
    }
    attr[0] |= GT_TOK_DOC_START;
    attr[T] |= GT_TOK_DOC_START;
    gt_err err;
    GT_ASSERT(gt_shard_write(SHARD, tok, attr, 2 * T, 259, &err) == 0, "%s", err.msg);
}

static void make_config(gt_run_config *rc, int micro, int accum, int steps) {
    char b1[64], b2[64], b3[64];
    snprintf(b1, sizeof b1, "data.micro_batch=%d", micro);
    snprintf(b2, sizeof b2, "data.grad_accum=%d", accum);
    snprintf(b3, sizeof b3, "train.steps=%d", steps);
    const char *sets[] = {"model.config=configs/hf/tiny", "data.train=" SHARD, "run_dir=/tmp/gt_trainer_run",
                          "data.seq_len=16", "data.shuffle=false", "device=cpu", "optim.lr=1e-2",
                          "optim.weight_decay=0.1", "optim.schedule=constant", "train.quiet=true", b1, b2, b3};
    gt_err err;
    gt_run_config_defaults(rc);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        GT_ASSERT(gt_run_config_override(rc, sets[i], &err) == 0, "%s", err.msg);
    }
    GT_ASSERT(gt_run_config_validate(rc, &err) == 0, "%s", err.msg);
}

static float *params(gt_trainer *t) {
    gt_model *m = &t->session.model;
    float *p = gt_malloc(m->lay.count * sizeof *p);
    m->ops->download(m->be, GT_ACT, p, m->params, m->lay.count);
    return p;
}

/* Sum of the losses of sequence k and its targets, by a plain forward pass of one sequence. */
static double plain_loss(gt_trainer *t, const gt_tokens *tk, int k, int64_t *targets) {
    int32_t tok[T], tgt[T], pos[T], seg[T];
    *targets = gt_fill_sequence(tk, (int64_t)k * T, T, 1, tok, tgt, pos, seg);
    gt_model_set_batch(&t->session.model, tok, tgt, pos, seg);
    return gt_model_forward(&t->session.model, 0, 0.0f, NULL);
}

static void test_accumulation(gt_check *c, gt_grid *g) {
    gt_run_config ra, rb;
    make_config(&ra, 2, 1, 1);
    make_config(&rb, 1, 2, 1);
    gt_trainer a, b;
    gt_err err;
    GT_ASSERT(gt_trainer_init(&a, &ra, g, &err) == 0 && gt_trainer_init(&b, &rb, g, &err) == 0, "%s", err.msg);
    gt_tokens tk;
    GT_ASSERT(gt_shard_read(&tk, SHARD, 259, &err) == 0, "%s", err.msg);
    int64_t n0, n1;
    double s0 = plain_loss(&b, &tk, 0, &n0), s1 = plain_loss(&b, &tk, 1, &n1);
    double want = (s0 + s1) / (double)(n0 + n1), mean_of_means = 0.5 * (s0 / n0 + s1 / n1);
    gt_step_stats sa, sb;
    float *p0 = params(&a);
    gt_trainer_step(&a, &sa);
    gt_trainer_step(&b, &sb);
    char what[160];
    snprintf(what, sizeof what, "accum 2x1 loss %.6f = global mean %.6f (mean of means %.6f)", sb.loss, want,
             mean_of_means);
    gt_check_rel(c, fabs(sb.loss - want) / want, 1e-6, what);
    gt_check_true(c, n0 == 3 && n1 == T - 1 && fabs(want - mean_of_means) > 1e-3 * want,
                  "the test batch does not tell a global mean from a mean of means (%lld, %lld targets)",
                  (long long)n0, (long long)n1);
    gt_check_rel(c, fabs(sa.loss - want) / want, 1e-6, "micro-batch 1x2 loss = global mean");
    gt_check_true(c, sa.targets == n0 + n1 && sb.targets == n0 + n1, "targets counted %lld %lld",
                  (long long)sa.targets, (long long)sb.targets);
    float *pa = params(&a), *pb = params(&b);
    gt_check_rel(c, gt_rel_err_f(pb, pa, a.session.model.lay.count), 1e-5, "update of accum 2x1 = update of batch 1x2");
    gt_check_true(c, gt_rel_err_f(p0, pa, a.session.model.lay.count) > 1e-3, "the step did not change the weights");
    free(p0);
    free(pa);
    free(pb);
    gt_tokens_free(&tk);
    gt_trainer_free(&a);
    gt_trainer_free(&b);
    gt_run_config_free(&ra);
    gt_run_config_free(&rb);
}

/* Poisons one gradient element on the step named by *user. */
static void poison(gt_trainer *t, void *user) {
    if (t->step != *(long long *)user) return;
    float nan = NAN;
    t->session.model.ops->upload(t->session.model.be, GT_GRAD, t->session.model.grads, &nan, 1);
}

static void test_skip(gt_check *c, gt_grid *g) {
    gt_run_config rc;
    make_config(&rc, 1, 1, 3);
    gt_trainer t;
    gt_err err;
    GT_ASSERT(gt_trainer_init(&t, &rc, g, &err) == 0, "%s", err.msg);
    long long bad_step = 2;
    t.after_backward = poison;
    t.hook_user = &bad_step;
    size_t n = t.session.model.lay.count;
    gt_step_stats st;
    gt_trainer_step(&t, &st);
    gt_check_true(c, !st.skipped && isfinite(st.grad_norm), "step 1 trains (norm %g)", st.grad_norm);
    float *p1 = params(&t), *m1 = gt_malloc(n * sizeof *m1), *m2 = gt_malloc(n * sizeof *m2);
    t.session.model.ops->download(t.session.model.be, GT_GRAD, m1, t.opt.mom, n);
    gt_trainer_step(&t, &st);
    float *p2 = params(&t);
    t.session.model.ops->download(t.session.model.be, GT_GRAD, m2, t.opt.mom, n);
    gt_check_true(c, st.skipped == 1 && t.skipped == 1 && t.opt.skipped == 1 && t.opt.step == 1,
                  "poisoned step 2: skipped %d, trainer count %lld, optimizer steps %d", st.skipped, t.skipped, t.opt.step);
    gt_check_true(c, !isfinite(st.grad_norm), "poisoned step 2 reports a non-finite gradient norm (%g)", st.grad_norm);
    gt_check_true(c, memcmp(p1, p2, n * sizeof *p1) == 0, "poisoned step 2 changed the weights");
    gt_check_true(c, memcmp(m1, m2, n * sizeof *m1) == 0, "poisoned step 2 changed the AdamW moments");
    gt_loader_pos pos = gt_loader_tell(&t.train);
    gt_check_true(c, pos.epoch == 1 && pos.index == 0, "poisoned step 2 still consumed its data");
    gt_trainer_step(&t, &st);
    float *p3 = params(&t);
    gt_check_true(c, !st.skipped && t.skipped == 1 && t.opt.step == 2 && memcmp(p2, p3, n * sizeof *p2) != 0,
                  "step 3 trains again after the skip");
    free(p1);
    free(p2);
    free(p3);
    free(m1);
    free(m2);
    gt_trainer_free(&t);
    gt_run_config_free(&rc);
}

int main(int argc, char **argv) {
    gt_check c = {0};
    gt_grid g;
    gt_err err;
    GT_ASSERT(gt_grid_init(&g, &argc, &argv, 1, &err) == 0, "%s", err.msg);
    write_shard();
    test_accumulation(&c, &g);
    test_skip(&c, &g);
    unlink(SHARD);
    gt_grid_free(&g);
    return gt_check_done(&c, "trainer");
}
