/* The FP8 state in checkpoints (train/ckpt/ckpt_fp8.c), one process, CPU backend, the gqa fixture with
 * FP8 GEMMs (history 8):
 *  - fp8_state.safetensors holds amax_history [8, 36], scale, scale_inv, fp8_max [36] and the recipe,
 *    equal to the model's state; trainer_state.json describes it;
 *  - a load restores it bitwise into a fresh FP8 model, and three more steps of both models give
 *    bitwise the same losses, weights and FP8 state;
 *  - another history length is refused naming both lengths; a model without FP8 loads the
 *    checkpoint and reports the state present (ignored); a checkpoint without FP8 state leaves a
 *    FP8 model's state fresh and reports it absent;
 *  - a truncated fp8_state.safetensors makes the checkpoint invalid, naming the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../model/fp8_state.h"
#include "../../model/safetensors.h"
#include "../../train/ckpt/ckpt_internal.h"
#include "check.h"

enum { B = 2, T = 32, N = B * T, LEN = 8 };
#define FIXTURE "tests/fixtures/gqa"

typedef struct {
    gt_backend *be;
    gt_model m;
    gt_optimizer o;
} rig;

/* The fixture's model with AdamW, FP8 with a history of len (0: no FP8), the lm_head in FP8 too
 * with head. */
static void rig_open(rig *r, int len, int head) {
    gt_err e;
    gt_config cfg;
    memset(r, 0, sizeof *r);
    r->be = gt_cpu_backend_create();
    GT_ASSERT(!gt_config_load(&cfg, FIXTURE, &e) && !gt_model_init(&r->m, &cfg, gt_cpu_ops(), r->be, 0, 1, &e) &&
                  !gt_model_load_hf(&r->m, FIXTURE, &e),
              "%s", e.msg);
    gt_model_alloc_batch(&r->m, B, T);
    if (len) {
        gt_fp8_recipe rec = {len, GT_AMAX_MAX, 0.5f, head};
        gt_model_enable_fp8(&r->m, &rec, NULL);
    }
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer_init(&r->o, &r->m, &ac);
}

static void rig_close(rig *r) {
    gt_optimizer_free(&r->o);
    gt_model_free(&r->m);
    gt_cpu_backend_destroy(r->be);
}

/* One AdamW step on the batch of step s; returns the mean loss. */
static double rig_step(rig *r, int s) {
    int32_t tok[N], tgt[N], pos[N];
    unsigned x = 91u + 1000u * (unsigned)s;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        tok[i] = (int32_t)((x >> 8) % (unsigned)r->m.cfg.vocab_size);
        pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) tgt[i] = (i % T) + 1 < T ? tok[i + 1] : -1;
    gt_model_set_batch(&r->m, tok, tgt, pos, NULL);
    gt_model_zero_grads(&r->m);
    double loss = gt_model_forward(&r->m, 1, 1.0f / (B * (T - 1)), NULL);
    gt_model_backward(&r->m);
    gt_optimizer_step(&r->o, 3e-3f, gt_optimizer_grad_sumsq(&r->o));
    return loss / (B * (T - 1));
}

/* dir/name into buf (GT_CKPT_PATH bytes). */
static void join(char *buf, const char *dir, const char *name) {
    gt_err e;
    GT_ASSERT(!gt_path_join(buf, GT_CKPT_PATH, dir, name, &e), "%s", e.msg);
}

static void save(rig *r, gt_grid *g, const char *run, long long step) {
    gt_ckpt_state st;
    memset(&st, 0, sizeof st);
    st.step = step;
    st.opt_step = r->o.step;
    st.seq_len = T;
    st.sched = (gt_lr_schedule){GT_LR_CONSTANT, 3e-3, 0, 0, 100};
    st.tp = st.dp = 1;
    gt_ckpt_options opt = {run, GT_F32, 0, 0};
    gt_err e;
    GT_ASSERT(!gt_checkpoint_save(&r->m, &r->o, g, &st, &opt, NULL, &e), "save: %s", e.msg);
}

/* 1 when the FP8 states of a and b are bitwise equal. */
static int same_fp8(const rig *a, const rig *b) {
    gt_fp8_host x, y;
    gt_fp8_download(&a->m, &x);
    gt_fp8_download(&b->m, &y);
    size_t row = (size_t)x.count * sizeof(float);
    int same = x.len == y.len && x.count == y.count && !memcmp(x.history, y.history, (size_t)x.len * row) &&
               !memcmp(x.scale, y.scale, row) && !memcmp(x.scale_inv, y.scale_inv, row);
    gt_fp8_host_free(&x);
    gt_fp8_host_free(&y);
    return same;
}

static int same_params(const rig *a, const rig *b) {
    size_t n = a->m.lay.count * a->m.ops->size[GT_ACT];
    unsigned char *x = gt_malloc(n), *y = gt_malloc(n);
    a->m.ops->download_raw(a->be, x, a->m.params, n);
    b->m.ops->download_raw(b->be, y, b->m.params, n);
    int same = !memcmp(x, y, n);
    free(x);
    free(y);
    return same;
}

/* The file's tensors against the model's state. */
static void check_file(gt_check *c, const rig *a, const char *dir) {
    char path[GT_CKPT_PATH];
    gt_err e;
    gt_st st;
    join(path, dir, "fp8_state.safetensors");
    GT_ASSERT(!gt_st_open(&st, path, &e), "%s", e.msg);
    gt_fp8_host h;
    gt_fp8_download(&a->m, &h);
    int64_t hs[2] = {LEN, 36}, cs[1] = {36}, one[1] = {1};
    const gt_st_tensor *th, *ts, *ti, *tm, *ta, *tg;
    int shapes = !gt_st_expect(&st, "amax_history", 2, hs, &th, &e) && !gt_st_expect(&st, "scale", 1, cs, &ts, &e) &&
                 !gt_st_expect(&st, "scale_inv", 1, cs, &ti, &e) && !gt_st_expect(&st, "fp8_max", 1, cs, &tm, &e) &&
                 !gt_st_expect(&st, "recipe.amax_compute_algo", 1, one, &ta, &e) &&
                 !gt_st_expect(&st, "recipe.margin", 1, one, &tg, &e);
    gt_check_true(c, shapes && st.ntensors == 6, "fp8_state.safetensors tensors: %s", shapes ? "6" : e.msg);
    if (shapes) {
        float *hist = gt_malloc((size_t)LEN * 36 * sizeof *hist), s[36], si[36], mx[36], margin;
        int32_t algo;
        GT_ASSERT(!gt_st_read_raw(&st, th, hist, &e) && !gt_st_read_raw(&st, ts, s, &e) &&
                      !gt_st_read_raw(&st, ti, si, &e) && !gt_st_read_raw(&st, tm, mx, &e) &&
                      !gt_st_read_raw(&st, ta, &algo, &e) && !gt_st_read_raw(&st, tg, &margin, &e),
                  "%s", e.msg);
        gt_check_true(c, !memcmp(hist, h.history, sizeof(float) * LEN * 36) && !memcmp(s, h.scale, sizeof s) &&
                             !memcmp(si, h.scale_inv, sizeof si),
                      "the file's history and scales are not the model's");
        gt_check_true(c, mx[0] == 448.0f && mx[23] == 448.0f && mx[24] == 57344.0f && mx[35] == 57344.0f,
                      "fp8_max: E4M3 for the 24 forward tensors, E5M2 for the 12 gradients (%g %g %g)", mx[0], mx[23],
                      mx[24]);
        gt_check_true(c, algo == 0 && margin == 0.5f, "recipe: algo %d margin %g", algo, margin);
        int moved = 0;
        for (int t = 0; t < 36; t++) moved += s[t] != 1.0f && isfinite(s[t]);
        gt_check_true(c, moved == 36, "%d of 36 scales moved off 1 after 3 FP8 steps", moved);
        free(hist);
    }
    gt_fp8_host_free(&h);
    gt_st_close(&st);
}

static void check_json(gt_check *c, const char *dir) {
    char path[GT_CKPT_PATH];
    gt_ckpt_state st;
    gt_err e;
    join(path, dir, "trainer_state.json");
    GT_ASSERT(!ck_state_load(path, &st, NULL, NULL, NULL, &e), "%s", e.msg);
    gt_check_true(c, st.fp8.present && st.fp8.count == 36 && st.fp8.history_len == LEN && st.fp8.algo == GT_AMAX_MAX &&
                         st.fp8.margin == 0.5,
                  "trainer_state.json fp8: present %d count %d len %d margin %g", st.fp8.present, st.fp8.count,
                  st.fp8.history_len, st.fp8.margin);
    gt_ckpt_state_free(&st);
}

static void test_round_trip(gt_check *c, gt_grid *g, const char *base) {
    rig a, b;
    rig_open(&a, LEN, 0);
    for (int s = 1; s <= 3; s++) rig_step(&a, s);
    char run[GT_CKPT_PATH], dir[GT_CKPT_PATH];
    join(run, base, "fp8");
    join(dir, run, "checkpoint-000003");
    save(&a, g, run, 3);
    check_file(c, &a, dir);
    check_json(c, dir);
    gt_err e;
    gt_check_true(c, !gt_checkpoint_validate(dir, &e), "the FP8 checkpoint validates: %s", e.msg);

    rig_open(&b, LEN, 0);
    gt_ckpt_state st;
    int rc = gt_checkpoint_load(&b.m, &b.o, g, dir, &st, &e);
    gt_check_true(c, rc == 0 && st.fp8.present, "load: %s", rc ? e.msg : "ok");
    if (rc == 0) gt_ckpt_state_free(&st);
    gt_check_true(c, same_fp8(&a, &b), "the loaded FP8 state differs from the saved one");
    int same = 1;
    for (int s = 4; s <= 6; s++) {
        double la = rig_step(&a, s), lb = rig_step(&b, s);
        same &= la == lb;
        printf("step %d: loss %.9f / %.9f\n", s, la, lb);
    }
    gt_check_true(c, same && same_params(&a, &b) && same_fp8(&a, &b),
                  "3 FP8 steps after the load: losses, weights and FP8 state bitwise equal");
    rig_close(&b);

    rig_open(&b, 2 * LEN, 0);
    rc = gt_checkpoint_load(&b.m, &b.o, g, dir, &st, &e);
    gt_check_true(c, rc == -1 && strstr(e.msg, "fp8.history_len: 16") && strstr(e.msg, "of length 8"),
                  "another history length refused naming both: %s", rc ? e.msg : "loaded");
    rig_close(&b);

    rig_open(&b, LEN, 1);
    rc = gt_checkpoint_load(&b.m, &b.o, g, dir, &st, &e);
    gt_check_true(c, rc == -1 && strstr(e.msg, "fp8.lm_head: true") && strstr(e.msg, "--set fp8.lm_head=false"),
                  "FP8 state without the lm_head refused by a run with it: %s", rc ? e.msg : "loaded");
    rig_close(&b);

    rig_open(&b, 0, 0);
    rc = gt_checkpoint_load(&b.m, &b.o, g, dir, &st, &e);
    gt_check_true(c, rc == 0 && st.fp8.present && !b.m.fp8, "a BF16 model loads an FP8 checkpoint: %s",
                  rc ? e.msg : "ok");
    if (rc == 0) gt_ckpt_state_free(&st);
    rig_close(&b);

    /* A truncated file: the recorded size no longer matches. */
    char path[GT_CKPT_PATH];
    join(path, dir, "fp8_state.safetensors");
    GT_ASSERT(truncate(path, 100) == 0, "cannot truncate %s", path);
    rc = gt_checkpoint_validate(dir, &e);
    gt_check_true(c, rc == -1 && strstr(e.msg, "fp8_state.safetensors") && strstr(e.msg, "truncated"),
                  "truncated FP8 state: %s", rc ? e.msg : "valid");
    rig_close(&a);
}

static void test_bf16_checkpoint(gt_check *c, gt_grid *g, const char *base) {
    rig a, b;
    rig_open(&a, 0, 0);
    rig_step(&a, 1);
    char run[GT_CKPT_PATH], dir[GT_CKPT_PATH], path[GT_CKPT_PATH];
    join(run, base, "bf16");
    join(dir, run, "checkpoint-000001");
    save(&a, g, run, 1);
    join(path, dir, "fp8_state.safetensors");
    gt_check_true(c, access(path, F_OK) != 0, "no fp8_state.safetensors without FP8");
    rig_open(&b, LEN, 0);
    gt_ckpt_state st;
    gt_err e;
    int rc = gt_checkpoint_load(&b.m, &b.o, g, dir, &st, &e);
    gt_check_true(c, rc == 0 && !st.fp8.present, "an FP8 model loads a BF16 checkpoint: %s", rc ? e.msg : "ok");
    if (rc == 0) gt_ckpt_state_free(&st);
    gt_fp8_host h;
    gt_fp8_download(&b.m, &h);
    int fresh = 1;
    for (int t = 0; t < h.count; t++) fresh &= h.scale[t] == 1.0f && h.history[t] == 0.0f;
    gt_check_true(c, fresh, "its FP8 state stays fresh (scales 1, history 0)");
    gt_fp8_host_free(&h);
    rig_close(&b);
    rig_close(&a);
}

int main(int argc, char **argv) {
    gt_check c = {0};
    gt_grid g;
    gt_err e;
    GT_ASSERT(gt_grid_init(&g, &argc, &argv, 1, &e) == 0, "%s", e.msg);
    char base[] = "/tmp/gt_ckpt_fp8_XXXXXX";
    GT_ASSERT(mkdtemp(base), "mkdtemp failed");
    test_round_trip(&c, &g, base);
    test_bf16_checkpoint(&c, &g, base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (c.failed == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", base);
    gt_grid_free(&g);
    return gt_check_done(&c, "ckpt_fp8");
}
