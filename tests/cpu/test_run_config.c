/* The run config (train/config/run_config.h): configs/tiny-cpu.yaml loads to the values written in it;
 * --set overrides parse like the file; every kind of bad input (unknown key, wrong type, impossible
 * value, duplicate key, YAML syntax, malformed --set, inconsistent keys) fails with one message
 * naming the source and the key; and the resolved YAML loads back to the same config; the fp8
 * section's defaults and the FP8 variant of the Gemma-2B config. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../train/config/run_config.h"
#include "check.h"

typedef struct {
    gt_check c;
    char path[64];
} tctx;

static void write_file(tctx *t, const char *text) {
    FILE *f = fopen(t->path, "wb");
    GT_ASSERT(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", t->path);
}

static void test_tiny_cpu(tctx *t) {
    gt_run_config rc;
    gt_err err;
    gt_run_config_defaults(&rc);
    int rc_ = gt_run_config_load_file(&rc, "configs/tiny-cpu.yaml", &err);
    gt_check_true(&t->c, rc_ == 0, "tiny-cpu.yaml: %s", err.msg);
    gt_check_true(&t->c, rc.model_path == NULL && rc.model_config && !strcmp(rc.model_config, "configs/hf/tiny"),
                  "tiny-cpu.yaml: model.path null, model.config configs/hf/tiny");
    gt_check_true(&t->c, rc.data_train.n == 1 && !strcmp(rc.data_train.v[0], "data/demo/train.bin") &&
                             rc.data_val.n == 1,
                  "tiny-cpu.yaml: data.train / data.val");
    gt_check_true(&t->c, rc.seq_len == 128 && rc.micro_batch == 4 && rc.grad_accum == 2 && rc.steps == 200,
                  "tiny-cpu.yaml: seq_len %lld micro_batch %lld grad_accum %lld steps %lld", rc.seq_len,
                  rc.micro_batch, rc.grad_accum, rc.steps);
    gt_check_true(&t->c, rc.lr == 3.0e-3 && rc.beta2 == 0.99 && !strcmp(rc.schedule, "cosine") && rc.tp == 1,
                  "tiny-cpu.yaml: optim values");
    gt_check_true(&t->c, gt_run_config_validate(&rc, &err) == 0, "tiny-cpu.yaml validates: %s", err.msg);
    /* Overrides, including a flow list and null. */
    gt_check_true(&t->c, gt_run_config_override(&rc, "optim.lr=2e-5", &err) == 0 && rc.lr == 2e-5, "--set optim.lr=2e-5");
    gt_check_true(&t->c, gt_run_config_override(&rc, "data.val=[a.bin, 'b c.bin']", &err) == 0 &&
                             rc.data_val.n == 2 && !strcmp(rc.data_val.v[1], "b c.bin"),
                  "--set data.val=[a.bin, 'b c.bin']: %s", err.msg);
    gt_check_true(&t->c, gt_run_config_override(&rc, "data.val=x.bin", &err) == 0 && rc.data_val.n == 1,
                  "--set data.val=x.bin is a one-element list");
    gt_check_true(&t->c, gt_run_config_override(&rc, "train.quiet=yes", &err) == 0 && rc.quiet == 1, "--set train.quiet=yes");
    gt_check_true(&t->c, gt_run_config_override(&rc, "model.config=none", &err) == 0 && rc.model_config == NULL,
                  "--set model.config=none is null");
    gt_run_config_free(&rc);
}

/* The resolved YAML reads back to itself: every value, strings with quotes and escapes included. */
static void test_round_trip(tctx *t) {
    gt_run_config a, b;
    gt_err err;
    gt_run_config_defaults(&a);
    gt_run_config_defaults(&b);
    const char *sets[] = {"model.path=/x/y \"quoted\" \\ dir", "optim.lr=0.1", "optim.eps=3e-9",
                          "data.train=[a.bin, b*.bin]", "run_dir=runs/r1", "train.steps=12345",
                          "optim.schedule=linear", "data.doc_masking=false"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        GT_ASSERT(gt_run_config_override(&a, sets[i], &err) == 0, "%s", err.msg);
    }
    char *y1 = gt_run_config_yaml(&a);
    write_file(t, y1);
    int rc_ = gt_run_config_load_file(&b, t->path, &err);
    char *y2 = gt_run_config_yaml(&b);
    gt_check_true(&t->c, rc_ == 0 && !strcmp(y1, y2), "round trip: %s", rc_ ? err.msg : "texts differ");
    gt_check_true(&t->c, b.lr == 0.1 && b.eps == 3e-9 && !strcmp(b.model_path, "/x/y \"quoted\" \\ dir") &&
                             b.data_train.n == 2 && !b.doc_masking && b.steps == 12345,
                  "round trip values");
    free(y1);
    free(y2);
    gt_run_config_free(&a);
    gt_run_config_free(&b);
}

/* Loads text as a config file; expects failure with every phrase in the message. */
static void file_error(tctx *t, const char *text, const char *p1, const char *p2) {
    gt_run_config rc;
    gt_err err = {{0}};
    gt_run_config_defaults(&rc);
    write_file(t, text);
    int rc_ = gt_run_config_load_file(&rc, t->path, &err);
    gt_check_true(&t->c, rc_ == -1 && strstr(err.msg, t->path) && strstr(err.msg, p1) && strstr(err.msg, p2) &&
                             !strchr(err.msg, '\n'),
                  "config %s: expected '%s' and '%s' in the message, got rc %d '%s'", text, p1, p2, rc_, err.msg);
    gt_run_config_free(&rc);
}

static void set_error(tctx *t, const char *assignment, const char *p1, const char *p2) {
    gt_run_config rc;
    gt_err err = {{0}};
    gt_run_config_defaults(&rc);
    int rc_ = gt_run_config_override(&rc, assignment, &err);
    gt_check_true(&t->c, rc_ == -1 && strstr(err.msg, "--set") && strstr(err.msg, p1) && strstr(err.msg, p2),
                  "--set %s: expected '%s' and '%s', got rc %d '%s'", assignment, p1, p2, rc_, err.msg);
    gt_run_config_free(&rc);
}

static void validate_error(tctx *t, const char *const *sets, int n, const char *key) {
    gt_run_config rc;
    gt_err err = {{0}};
    gt_run_config_defaults(&rc);
    for (int i = 0; i < n; i++) GT_ASSERT(gt_run_config_override(&rc, sets[i], &err) == 0, "%s", err.msg);
    int rc_ = gt_run_config_validate(&rc, &err);
    gt_check_true(&t->c, rc_ == -1 && strstr(err.msg, key), "validate: expected '%s', got rc %d '%s'", key, rc_, err.msg);
    gt_run_config_free(&rc);
}

static void test_errors(tctx *t) {
    file_error(t, "optim:\n  lr: 1e-4\n  lrr: 2\n", "line 3", "unknown key 'optim.lrr'");
    file_error(t, "optim:\n  lrr: 2\n", "optim has: lr, beta1", "lrr");
    file_error(t, "foo: 1\n", "unknown key 'foo'", "the top level has: model, data, optim, train, run_dir");
    file_error(t, "optim:\n  lr: fast\n", "optim.lr: expected a number", "'fast'");
    file_error(t, "data:\n  seq_len: 12.5\n", "data.seq_len: expected an integer", "line 2");
    file_error(t, "data:\n  shuffle: maybe\n", "data.shuffle: expected true or false", "maybe");
    file_error(t, "optim:\n  beta1: 1.0\n", "optim.beta1: 1.0 is outside", "[0, 1)");
    file_error(t, "data:\n  seq_len: 1\n", "data.seq_len: 1 is outside", "line 2");
    file_error(t, "train:\n  steps: 0\n", "train.steps: 0 is not allowed", ">= 1");
    file_error(t, "optim:\n  schedule: exponential\n", "optim.schedule: 'exponential' is not one of", "cosine|linear|constant");
    file_error(t, "optim: 3\n", "optim: expected a section", "line 1");
    file_error(t, "optim:\n  lr: [1, 2]\n", "optim.lr: expected a single value", "list");
    file_error(t, "data:\n  train: {a: b}\n", "data.train: expected a value", "mapping");
    file_error(t, "optim:\n  lr: 1\n  lr: 2\n", "optim.lr: the key appears twice", "line 3");
    file_error(t, "optim:\n  lr: [1\n", "YAML syntax error", "line");
    file_error(t, "- a\n- b\n", "must be a mapping", "line 1");
    set_error(t, "optim.lr", "expected key=value", "optim.lr");
    set_error(t, "=3", "expected key=value", "=3");
    set_error(t, "optim.lrr=1", "unknown key 'optim.lrr'", "optim has: lr");
    set_error(t, "optimizer.lr=1", "unknown key 'optimizer.lr'", "no section 'optimizer'");
    set_error(t, "optim=1", "'optim' is a section", "optim.KEY");
    set_error(t, "optim.lr=abc", "optim.lr: expected a number", "'abc'");
    set_error(t, "parallel.tp=0", "parallel.tp: 0 is outside", "[1, 1024]");
    set_error(t, "optim.eps=0", "optim.eps: 0 is outside", "(0, 1]");
    set_error(t, "device=tpu", "device: 'tpu' is not one of", "auto|cpu|cpu64|cuda");
    set_error(t, "data.val=[a, [b]]", "data.val: expected a list of plain values", "data.val");
    file_error(t, "fp8:\n  history: 3\n", "unknown key 'fp8.history'", "fp8 has: enabled, lm_head, history_len, algo, margin");
    file_error(t, "fp8:\n  enabled: maybe\n", "fp8.enabled: expected true or false", "line 2");
    file_error(t, "fp8:\n  margin: -1\n", "fp8.margin: -1 is outside", "[0, 32]");
    set_error(t, "fp8.history_len=0", "fp8.history_len: 0 is outside", "[1, 65536]");
    set_error(t, "fp8.history_len=1.5", "fp8.history_len: expected an integer", "'1.5'");
    set_error(t, "fp8.algo=mean", "fp8.algo: 'mean' is not one of", "max|most_recent");
    set_error(t, "fp8.calibration_steps=-2", "fp8.calibration_steps: -2 is not allowed", ">= 0");
    set_error(t, "fp8.log_every=-1", "fp8.log_every: -1 is not allowed", ">= 0");
    const char *neither[] = {"data.train=x.bin", "run_dir=r"};
    validate_error(t, neither, 2, "model.path / model.config");
    const char *no_data[] = {"model.path=a", "run_dir=r"};
    validate_error(t, no_data, 2, "data.train");
    const char *no_dir[] = {"model.path=a", "data.train=x"};
    validate_error(t, no_dir, 2, "run_dir");
    const char *no_val[] = {"model.path=a", "data.train=x", "run_dir=r", "train.eval_every=10"};
    validate_error(t, no_val, 4, "train.eval_every");
    const char *warm[] = {"model.path=a", "data.train=x", "run_dir=r", "train.steps=10", "optim.warmup_steps=11"};
    validate_error(t, warm, 5, "optim.warmup_steps");
}

/* The fp8 section: its defaults (FP8 off, TransformerEngine's recipe), and the FP8 variant of the
 * Gemma-2B config, which is the BF16 one with FP8 on. */
static void test_fp8(tctx *t) {
    gt_run_config rc, base;
    gt_err err;
    gt_run_config_defaults(&rc);
    gt_check_true(&t->c, !rc.fp8_enabled && !rc.fp8_lm_head && rc.fp8_history_len == 1024 && !strcmp(rc.fp8_algo, "max") &&
                             rc.fp8_margin == 0.0 && rc.fp8_calibration_steps == 0 && rc.fp8_log_every == 10,
                  "fp8 defaults: enabled %d history_len %lld algo %s margin %g calibration %lld log_every %lld",
                  rc.fp8_enabled, rc.fp8_history_len, rc.fp8_algo, rc.fp8_margin, rc.fp8_calibration_steps,
                  rc.fp8_log_every);
    gt_run_config_free(&rc);
    gt_run_config_defaults(&rc);
    gt_run_config_defaults(&base);
    int ok = gt_run_config_load_file(&rc, "configs/gemma-2b-1gpu-fp8.yaml", &err) == 0 &&
             gt_run_config_load_file(&base, "configs/gemma-2b-1gpu.yaml", &err) == 0;
    gt_check_true(&t->c, ok, "gemma-2b-1gpu-fp8.yaml: %s", ok ? "" : err.msg);
    gt_check_true(&t->c, ok && rc.fp8_enabled && rc.fp8_history_len == 1024 && !strcmp(rc.fp8_algo, "max") &&
                             rc.fp8_calibration_steps == 10 && rc.fp8_log_every == 10,
                  "gemma-2b-1gpu-fp8.yaml: fp8 on, history 1024, max, 10 calibration steps");
    gt_check_true(&t->c, ok && rc.seq_len == base.seq_len && rc.micro_batch == base.micro_batch &&
                             rc.grad_accum == base.grad_accum && rc.lr == base.lr && rc.steps == base.steps &&
                             !base.fp8_enabled && strcmp(rc.run_dir, base.run_dir),
                  "gemma-2b-1gpu-fp8.yaml is gemma-2b-1gpu.yaml with FP8 and its own run_dir");
    gt_check_true(&t->c, gt_run_config_override(&rc, "fp8.algo=most_recent", &err) == 0 &&
                             gt_run_config_override(&rc, "fp8.history_len=1", &err) == 0 &&
                             gt_run_config_override(&rc, "fp8.margin=1.5", &err) == 0 && rc.fp8_history_len == 1 &&
                             !strcmp(rc.fp8_algo, "most_recent") && rc.fp8_margin == 1.5,
                  "--set fp8.algo=most_recent fp8.history_len=1 fp8.margin=1.5 (Megatron's recipe): %s", err.msg);
    gt_run_config_free(&rc);
    gt_run_config_free(&base);
}

/* Every bundled run config loads and validates (their data and models are checked at run time). */
static void test_bundled(tctx *t) {
    glob_t g;
    int found = glob("configs/*.yaml", 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    gt_check_true(&t->c, found >= 5, "configs/*.yaml: %d files, expected the 5 bundled ones", found);
    for (int i = 0; i < found; i++) {
        gt_run_config rc;
        gt_err err;
        gt_run_config_defaults(&rc);
        int ok = gt_run_config_load_file(&rc, g.gl_pathv[i], &err) == 0 && gt_run_config_validate(&rc, &err) == 0;
        gt_check_true(&t->c, ok, "%s: %s", g.gl_pathv[i], ok ? "" : err.msg);
        gt_run_config_free(&rc);
    }
    if (found) globfree(&g);
}

int main(void) {
    tctx t = {{0}, "/tmp/gt_run_config_XXXXXX"};
    int fd = mkstemp(t.path);
    GT_ASSERT(fd >= 0, "mkstemp failed");
    close(fd);
    test_tiny_cpu(&t);
    test_bundled(&t);
    test_round_trip(&t);
    test_errors(&t);
    test_fp8(&t);
    unlink(t.path);
    return gt_check_done(&t.c, "run_config");
}
