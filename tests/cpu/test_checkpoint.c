/* Checkpoints on one process (CPU backends): save then load restores parameters, master weights,
 * moments and counters bitwise and the next steps give bitwise the same losses; the files are what
 * DESIGN.md §5 says (HF names, BF16/F32 weights, sharding with an index, trainer_state.json,
 * latest); keep-K; a truncated or partial checkpoint is refused with a clear message and
 * find_latest falls back to the previous one; a checkpoint of another model is refused; the
 * float32 backend's checkpoint resumes on the float64 one. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../model/safetensors.h"
#include "../../train/ckpt/ckpt_internal.h"
#include "ckpt_harness.h"
#include "check.h"

typedef struct {
    gt_check c;
    gt_grid grid;
    char base[64]; /* a fresh directory under /tmp */
} ctx;

/* base/<formatted> into buf (GT_CKPT_PATH bytes); returns buf. */
static char *pth(const ctx *x, char *buf, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static char *pth(const ctx *x, char *buf, const char *fmt, ...) {
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(buf, GT_CKPT_PATH, "%s/%s", x->base, rel);
    return buf;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Runs a shell command built like printf. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[GT_CKPT_PATH * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    GT_ASSERT(system(cmd) == 0, "%s failed", cmd);
}

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

static void save(ctx *x, harness *h, const char *run, long long step, gt_dtype dt, int keep, uint64_t shard) {
    gt_ckpt_state st = h_state(h, step, 1, 1);
    gt_ckpt_options opt = {run, dt, keep, shard};
    gt_err err;
    GT_ASSERT(!gt_checkpoint_save(&h->m, &h->o, &x->grid, &st, &opt, NULL, &err), "save: %s", err.msg);
}

static void test_roundtrip(ctx *x) {
    gt_check *c = &x->c;
    harness a, b;
    char run[GT_CKPT_PATH], dir[GT_CKPT_PATH], p[GT_CKPT_PATH];
    h_open(&a, "tests/fixtures/gqa", gt_cpu_ops(), 0, 1, 1);
    for (int s = 1; s <= 3; s++) h_step(&a, s);
    save(x, &a, pth(x, run, "rt"), 3, GT_BF16, 0, 0);
    pth(x, dir, "rt/checkpoint-000003");
    char *latest = NULL;
    gt_err err;
    GT_ASSERT(!gt_read_text(pth(x, p, "rt/latest"), &latest, &err), "%s", err.msg);
    gt_check_true(c, !strcmp(latest, "checkpoint-000003\n"), "latest is '%s'", latest);
    free(latest);
    const char *files[] = {"config.json", "generation_config.json", "model.safetensors", "optimizer.safetensors",
                           "trainer_state.json"};
    for (int i = 0; i < 5; i++)
        gt_check_true(c, exists(pth(x, p, "rt/checkpoint-000003/%s", files[i])), "%s missing", p);
    gt_check_true(c, !exists(pth(x, p, "rt/checkpoint-000003.tmp")), "tmp dir left");
    gt_check_true(c, !exists(pth(x, p, "rt/checkpoint-000003/fp8_state.safetensors")), "fp8 state without FP8");
    gt_check_true(c, h_weights_error(&a, dir, 1) == 0, "BF16 weights are not the rounded parameters");
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, dir, &err), "%s", err.msg);
    gt_check_true(c, cfg.dtype == GT_BF16 && cfg.hidden_size == 64, "config.json: dtype %d", (int)cfg.dtype);

    h_open(&b, "tests/fixtures/gqa", gt_cpu_ops(), 0, 1, 0);
    gt_ckpt_state st;
    gt_check_true(c, !gt_checkpoint_load(&b.m, &b.o, &x->grid, dir, &st, &err), "load: %s", err.msg);
    gt_check_true(c, h_same(&a, &b), "loaded state differs from the saved one");
    gt_ckpt_state want = h_state(&a, 3, 1, 1);
    gt_check_true(c, st.step == 3 && st.opt_step == 3 && st.data_pos.epoch == want.data_pos.epoch &&
                         st.data_pos.index == want.data_pos.index && st.tokens_seen == want.tokens_seen &&
                         st.seed == 42 && st.shuffle_seed == 1234 && st.shuffle && st.seq_len == H_T &&
                         st.sched.lr == want.sched.lr && st.sched.min_lr_ratio == want.sched.min_lr_ratio &&
                         st.sched.warmup == 2 && st.sched.steps == 20 && st.sched.kind == GT_LR_COSINE,
                  "trainer state does not read back");
    gt_check_true(c, st.run_config && !strcmp(st.run_config, want.run_config), "run config does not read back");
    gt_ckpt_state_free(&st);
    int same = 1;
    for (int s = 4; s <= 6; s++) same &= h_step(&a, s) == h_step(&b, s);
    gt_check_true(c, same && h_same(&a, &b), "steps after resume are not bitwise the same");
    printf("ok   round trip: state bitwise, 3 more steps bitwise equal\n");
    h_close(&a);
    h_close(&b);
}

static void test_f32_sharded(ctx *x) {
    gt_check *c = &x->c;
    harness a, b;
    char run[GT_CKPT_PATH], dir[GT_CKPT_PATH], p[GT_CKPT_PATH];
    h_open(&a, "tests/fixtures/mqa", gt_cpu_ops(), 0, 1, 1);
    h_step(&a, 1);
    save(x, &a, pth(x, run, "sh"), 1, GT_F32, 0, 20000);
    pth(x, dir, "sh/checkpoint-000001");
    gt_check_true(c, exists(pth(x, p, "sh/checkpoint-000001/model.safetensors.index.json")) &&
                         exists(pth(x, p, "sh/checkpoint-000001/model-00002-of-00014.safetensors")) &&
                         !exists(pth(x, p, "sh/checkpoint-000001/model.safetensors")),
                  "sharded checkpoint without an index, or not 14 files of <= 20000 bytes (a larger tensor alone)");
    gt_check_true(c, h_weights_error(&a, dir, 0) == 0, "F32 sharded weights differ from the parameters");
    /* The checkpoint is an HF directory: the HF loader reads it as it is. */
    h_open(&b, "tests/fixtures/mqa", gt_cpu_ops(), 0, 1, 0);
    gt_err err;
    gt_check_true(c, !gt_model_load_hf(&b.m, dir, &err), "HF load of the checkpoint: %s", err.msg);
    unsigned char *u = h_bytes(&a, a.m.params, GT_ACT), *v = h_bytes(&b, b.m.params, GT_ACT);
    gt_check_true(c, !memcmp(u, v, a.m.lay.count * 4), "HF load of an F32 checkpoint differs");
    free(u);
    free(v);
    printf("ok   F32 weights in shards + index, loadable as an HF directory\n");
    h_close(&a);
    h_close(&b);
}

static int count_checkpoints(const char *run) {
    long long *steps;
    int n;
    GT_ASSERT(!ck_list_steps(run, &steps, &n, NULL), "cannot list %s", run);
    free(steps);
    return n;
}

/* Reads everything written to f. */
static void slurp(FILE *f, char *buf, size_t len) {
    rewind(f);
    size_t got = fread(buf, 1, len - 1, f);
    buf[got] = 0;
    fclose(f);
}

static void test_keep_and_fallback(ctx *x) {
    gt_check *c = &x->c;
    harness a, b;
    char run[GT_CKPT_PATH], p[GT_CKPT_PATH], path[GT_CKPT_PATH];
    gt_err err;
    pth(x, run, "kf");
    h_open(&a, "tests/fixtures/mha", gt_cpu_ops(), 0, 1, 1);
    sh("mkdir -p %s/checkpoint-000099.tmp && touch %s/checkpoint-000099.tmp/junk", run, run);
    for (int s = 1; s <= 5; s++) {
        h_step(&a, s);
        save(x, &a, run, s, GT_BF16, 2, 0);
    }
    gt_check_true(c, count_checkpoints(run) == 2 && exists(pth(x, p, "kf/checkpoint-000004")) &&
                         exists(pth(x, p, "kf/checkpoint-000005")),
                  "keep=2 did not keep exactly the last two");
    gt_check_true(c, !exists(pth(x, p, "kf/checkpoint-000099.tmp")), "stale .tmp directory not removed");
    /* truncate the newest: refused, naming the file; find_latest falls back with a warning */
    sh("truncate -s -100 %s/checkpoint-000005/optimizer.safetensors", run);
    int bad = gt_checkpoint_validate(pth(x, p, "kf/checkpoint-000005"), &err);
    gt_check_true(c, bad && contains(err.msg, "optimizer.safetensors") && contains(err.msg, "truncated"),
                  "truncated checkpoint: '%s'", err.msg);
    FILE *warn = tmpfile();
    GT_ASSERT(warn, "tmpfile failed");
    int found = gt_checkpoint_find_latest(run, path, sizeof path, warn, &err);
    char wbuf[4096];
    slurp(warn, wbuf, sizeof wbuf);
    gt_check_true(c, found == 1 && contains(path, "checkpoint-000004"), "fallback found %d '%s'", found, path);
    gt_check_true(c, contains(wbuf, "checkpoint-000005 is not usable") && contains(wbuf, "falling back"),
                  "no fallback warning: '%s'", wbuf);
    h_open(&b, "tests/fixtures/mha", gt_cpu_ops(), 0, 1, 0);
    gt_ckpt_state st;
    bad = gt_checkpoint_load(&b.m, &b.o, &x->grid, pth(x, p, "kf/checkpoint-000005"), &st, &err);
    gt_check_true(c, bad && contains(err.msg, "checkpoint-000005"), "load of a truncated checkpoint: '%s'", err.msg);
    /* a checkpoint without trainer_state.json is incomplete; none left usable is an error */
    sh("rm %s/checkpoint-000004/trainer_state.json", run);
    found = gt_checkpoint_find_latest(run, path, sizeof path, NULL, &err);
    gt_check_true(c, found == -1 && contains(err.msg, "none of its 2 checkpoint(s) is usable"), "'%s'", err.msg);
    /* a corrupt header */
    h_step(&a, 6);
    save(x, &a, run, 6, GT_BF16, 0, 0);
    sh("printf 'garbage!' | dd of=%s/checkpoint-000006/model.safetensors bs=1 seek=8 conv=notrunc 2>/dev/null", run);
    bad = gt_checkpoint_validate(pth(x, p, "kf/checkpoint-000006"), &err);
    gt_check_true(c, bad && contains(err.msg, "model.safetensors"), "corrupt header: '%s'", err.msg);
    printf("ok   keep=2, stale tmp removed, truncated/partial/corrupt refused, fallback with a warning\n");
    h_close(&a);
    h_close(&b);
}

static void test_latest_and_resave(ctx *x) {
    gt_check *c = &x->c;
    harness a;
    char run[GT_CKPT_PATH], path[GT_CKPT_PATH];
    gt_err err;
    pth(x, run, "lr");
    h_open(&a, "tests/fixtures/gqa", gt_cpu_ops(), 0, 1, 1);
    h_step(&a, 1);
    save(x, &a, run, 1, GT_BF16, 0, 0);
    save(x, &a, run, 1, GT_BF16, 0, 0); /* the same step again replaces it */
    h_step(&a, 2);
    save(x, &a, run, 2, GT_BF16, 0, 0);
    /* latest names the one to take even when a later (abandoned) one exists */
    sh("printf 'checkpoint-000001\\n' > %s/latest", run);
    int found = gt_checkpoint_find_latest(run, path, sizeof path, NULL, &err);
    gt_check_true(c, found == 1 && contains(path, "checkpoint-000001"), "latest not followed: %s", path);
    sh("rm %s/latest", run);
    found = gt_checkpoint_find_latest(run, path, sizeof path, NULL, &err);
    gt_check_true(c, found == 1 && contains(path, "checkpoint-000002"), "without latest: %s", path);
    gt_check_true(c, gt_checkpoint_find_latest(pth(x, run, "none"), path, sizeof path, NULL, &err) == 0,
                  "an empty run dir has a checkpoint");
    printf("ok   latest followed, newest taken without it, same step saved twice\n");
    h_close(&a);
}

static void test_other_model(ctx *x) {
    gt_check *c = &x->c;
    harness a, b;
    char run[GT_CKPT_PATH], p[GT_CKPT_PATH];
    h_open(&a, "tests/fixtures/mha", gt_cpu_ops(), 0, 1, 1);
    save(x, &a, pth(x, run, "om"), 0, GT_BF16, 0, 0);
    h_open(&b, "tests/fixtures/gqa", gt_cpu_ops(), 0, 1, 0);
    gt_ckpt_state st;
    gt_err err;
    int bad = gt_checkpoint_load(&b.m, &b.o, &x->grid, pth(x, p, "om/checkpoint-000000"), &st, &err);
    gt_check_true(c, bad && contains(err.msg, "a checkpoint of another model"), "other model: '%s'", err.msg);
    printf("ok   refused: %s\n", err.msg);
    h_close(&a);
    h_close(&b);
}

/* float32 backend -> float64 backend: values widened exactly; then cpu64 -> cpu64 bitwise (F64 state). */
static void test_cpu64(ctx *x) {
    gt_check *c = &x->c;
    harness a, b, d;
    char run[GT_CKPT_PATH], p[GT_CKPT_PATH];
    pth(x, run, "c64");
    h_open(&a, "tests/fixtures/gqa", gt_cpu_ops(), 0, 1, 1);
    h_step(&a, 1);
    save(x, &a, run, 1, GT_F32, 0, 0);
    h_open(&b, "tests/fixtures/gqa", gt_cpu64_ops(), 0, 1, 0);
    gt_ckpt_state st;
    gt_err err;
    gt_check_true(c, !gt_checkpoint_load(&b.m, &b.o, &x->grid, pth(x, p, "c64/checkpoint-000001"), &st, &err), "%s",
                  err.msg);
    gt_ckpt_state_free(&st);
    size_t n = a.m.lay.count;
    float *fa = gt_malloc(n * 4);
    double *db = gt_malloc(n * 8);
    a.m.ops->download_raw(a.be, fa, a.o.var, n * 4);
    b.m.ops->download_raw(b.be, db, b.o.var, n * 8);
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= (double)fa[i] == db[i];
    gt_check_true(c, same, "float state not widened exactly");
    h_step(&b, 2);
    save(x, &b, run, 2, GT_F32, 0, 0);
    h_open(&d, "tests/fixtures/gqa", gt_cpu64_ops(), 0, 1, 0);
    gt_check_true(c, !gt_checkpoint_load(&d.m, &d.o, &x->grid, pth(x, p, "c64/checkpoint-000002"), &st, &err), "%s",
                  err.msg);
    gt_ckpt_state_free(&st);
    gt_check_true(c, h_same(&b, &d) && h_step(&b, 3) == h_step(&d, 3), "cpu64 resume is not bitwise");
    printf("ok   cpu -> cpu64 widened exactly; cpu64 F64 state bitwise\n");
    free(fa);
    free(db);
    h_close(&a);
    h_close(&b);
    h_close(&d);
}

int main(int argc, char **argv) {
    ctx x;
    memset(&x, 0, sizeof x);
    gt_err err;
    GT_ASSERT(!gt_grid_init(&x.grid, &argc, &argv, 1, &err), "%s", err.msg);
    snprintf(x.base, sizeof x.base, "/tmp/gt-ckpt-XXXXXX");
    GT_ASSERT(mkdtemp(x.base), "mkdtemp failed");
    test_roundtrip(&x);
    test_f32_sharded(&x);
    test_keep_and_fallback(&x);
    test_latest_and_resave(&x);
    test_other_model(&x);
    test_cpu64(&x);
    gt_grid_free(&x.grid);
    if (!x.c.failed) sh("rm -rf %s", x.base);
    return gt_check_done(&x.c, "checkpoint");
}
