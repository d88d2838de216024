/* gemmatron inspect DIR: a readable summary of a checkpoint, an HF model directory or a run
 * directory (the run summary of train/run_summary.h, its checkpoints, which one `latest` names,
 * which one a resume would take).
 * Exit status 0 when DIR is complete and usable, 1 when it is not (the reason is printed). */
#include "inspect_cmd.h"

#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../core/fs.h"
#include "../../model/fp8_state.h"
#include "../../model/safetensors.h"
#include "../ckpt/checkpoint.h"
#include "../run_summary.h"
#include "cli.h"

static void human(double bytes, char *buf, size_t len) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

static void print_model(const gt_config *c) {
    int64_t params = (int64_t)c->vocab_size * c->hidden_size + (2 * (int64_t)c->num_hidden_layers + 1) * c->hidden_size;
    params += (int64_t)c->num_hidden_layers *
              ((int64_t)(c->num_attention_heads * 2 + c->num_key_value_heads * 2) * c->head_dim * c->hidden_size +
               3 * (int64_t)c->intermediate_size * c->hidden_size);
    printf("model: gemma, %d layers, hidden %d, ffn %d, heads %d (kv %d), head_dim %d, vocab %d, %s, "
           "%.4g M parameters\n",
           c->num_hidden_layers, c->hidden_size, c->intermediate_size, c->num_attention_heads,
           c->num_key_value_heads, c->head_dim, c->vocab_size, c->act == GT_GELU_ERF ? "gelu" : "gelu_pytorch_tanh",
           (double)params / 1e6);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* One line per safetensors file of dir: size, tensors, dtypes. */
static void print_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[256];
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) && n < 256;) {
        size_t l = strlen(de->d_name);
        if (l > 12 && !strcmp(de->d_name + l - 12, ".safetensors")) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    printf("files:\n");
    for (int i = 0; i < n; i++) {
        char path[GT_CKPT_PATH], size[32], dts[64] = "";
        struct stat sb;
        gt_st st;
        gt_err e;
        gt_path_join(path, sizeof path, dir, names[i], NULL);
        human(stat(path, &sb) == 0 ? (double)sb.st_size : 0, size, sizeof size);
        if (gt_st_open(&st, path, &e)) {
            printf("  %-36s %10s  UNREADABLE: %s\n", names[i], size, e.msg);
        } else {
            int seen[GT_DTYPE_COUNT] = {0};
            for (int t = 0; t < st.ntensors; t++) seen[st.tensors[t].dtype] = 1;
            for (int k = 0; k < GT_DTYPE_COUNT; k++)
                if (seen[k]) snprintf(dts + strlen(dts), sizeof dts - strlen(dts), "%s%s", dts[0] ? "," : "", gt_dtype_name((gt_dtype)k));
            printf("  %-36s %10s  %5d tensors  %s\n", names[i], size, st.ntensors, dts);
            gt_st_close(&st);
        }
        free(names[i]);
    }
}

/* Scales of the file's FP8 state: the smallest and largest, and of which tensors. */
static void print_scales(const gt_st *st, const gt_st_tensor *sc, int count) {
    float *s = gt_malloc((size_t)count * sizeof *s);
    gt_err e;
    if (gt_st_read_f32(st, sc, 0, 1, 0, count, s, &e)) {
        printf("  fp8 scales: UNREADABLE: %s\n", e.msg);
        free(s);
        return;
    }
    int lo = 0, hi = 0;
    for (int t = 1; t < count; t++) {
        if (s[t] < s[lo]) lo = t;
        if (s[t] > s[hi]) hi = t;
    }
    char nlo[GT_FP8_NAME_LEN], nhi[GT_FP8_NAME_LEN];
    gt_fp8_tensor_name(count, lo, nlo, sizeof nlo);
    gt_fp8_tensor_name(count, hi, nhi, sizeof nhi);
    printf("  fp8 scales: min %.6g (%s), max %.6g (%s)\n", s[lo], nlo, s[hi], nhi);
    free(s);
}

/* The amaxes of the file's histories [len, count]: the largest, and the smallest recorded one (> 0;
 * 0 is an empty slot). */
static void print_amax(const gt_st *st, const gt_st_tensor *h) {
    int64_t n = h->numel;
    float *a = gt_malloc((size_t)n * sizeof *a);
    gt_err e;
    if (gt_st_read_f32(st, h, 0, h->shape[0], 0, h->shape[1], a, &e)) {
        printf("  fp8 amax: UNREADABLE: %s\n", e.msg);
        free(a);
        return;
    }
    float lo = INFINITY, hi = 0;
    int64_t recorded = 0;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] > hi) hi = a[i];
        if (a[i] > 0 && a[i] < lo) lo = a[i];
        recorded += a[i] > 0;
    }
    if (recorded) printf("  fp8 amax: %lld recorded of %lld history slots, min %.6g, max %.6g\n", (long long)recorded,
                         (long long)n, lo, hi);
    else printf("  fp8 amax: none recorded yet (fresh state)\n");
    free(a);
}

/* The FP8 delayed-scaling state (train/ckpt/ckpt_fp8.c): tensors, history length, recipe, scales. */
static void print_fp8(const char *dir) {
    char path[GT_CKPT_PATH];
    gt_st st;
    gt_err e;
    if (!gt_file_exists(dir, CK_FP8_FILE)) {
        printf("  fp8 state: none (not trained in FP8)\n");
        return;
    }
    if (gt_path_join(path, sizeof path, dir, CK_FP8_FILE, &e) || gt_st_open(&st, path, &e)) {
        printf("  fp8 state: UNREADABLE: %s\n", e.msg);
        return;
    }
    const gt_st_tensor *h = gt_st_find(&st, "amax_history"), *sc = gt_st_find(&st, "scale");
    const gt_st_tensor *al = gt_st_find(&st, "recipe.amax_compute_algo"), *mg = gt_st_find(&st, "recipe.margin");
    int32_t algo = -1;
    float margin = NAN;
    if (!h || h->ndim != 2 || !sc || sc->ndim != 1 || sc->shape[0] != h->shape[1] || h->shape[1] % 12 ||
        !al || al->dtype != GT_I32 || al->numel != 1 || !mg || mg->dtype != GT_F32 || mg->numel != 1 ||
        gt_st_read_raw(&st, al, &algo, &e) || gt_st_read_raw(&st, mg, &margin, &e)) {
        printf("  fp8 state: UNREADABLE: %s lacks amax_history [len, 12 L], scale or the recipe\n", path);
        gt_st_close(&st);
        return;
    }
    int count = (int)h->shape[1];
    printf("  fp8 state: %d tensors (%d layers x 4 GEMMs x input/weight/grad_output), amax history length %lld, "
           "algo %s, margin %g\n", count, count / 12, (long long)h->shape[0],
           algo == 0 ? "max" : algo == 1 ? "most_recent" : "unknown", margin);
    const gt_st_tensor *cs = gt_st_find(&st, "calibration.steps");
    int64_t steps = -1;
    if (cs && cs->dtype == GT_I64 && cs->numel == 1 && gt_st_read_raw(&st, cs, &steps, &e) == 0)
        printf("  fp8 state: calibrated on %lld step(s) of batches (gemmatron calibrate)\n", (long long)steps);
    print_amax(&st, h);
    print_scales(&st, sc, count);
    gt_st_close(&st);
}

static void print_state(const gt_ckpt_state *s, gt_dtype wd) {
    static const char *kinds[] = {"cosine", "linear", "constant"};
    printf("training: step %lld (%lld skipped), %.0f tokens seen, data epoch %lld index %lld (seq_len %lld, %s, "
           "shuffle seed %lld), init seed %lld\n",
           s->step, s->skipped, s->tokens_seen, (long long)s->data_pos.epoch, (long long)s->data_pos.index,
           s->seq_len, s->shuffle ? "shuffled" : "in order", s->shuffle_seed, s->seed);
    printf("schedule: %s, peak lr %g, warmup %lld, %lld steps, min ratio %g; lr at this step %.4g\n",
           kinds[s->sched.kind], s->sched.lr, s->sched.warmup, s->sched.steps, s->sched.min_lr_ratio,
           s->step > 0 ? gt_lr_at(&s->sched, s->step) : 0.0);
    printf("written by: tp=%d dp=%d; optimizer adamw step %d (%d skipped); weights %s\n", s->tp, s->dp, s->opt_step,
           s->opt_skipped, gt_dtype_name(wd));
}

/* A checkpoint or HF directory. Returns 0 when complete. verified: 0 check the checksums here, 1 the
 * caller did, 2 the caller found none. */
static int inspect_model_dir(const char *dir, int verified) {
    char path[GT_CKPT_PATH];
    gt_config cfg;
    gt_err e;
    int ckpt = gt_file_exists(dir, "trainer_state.json");
    printf("%s: %s\n", ckpt ? "checkpoint" : "HF model directory", dir);
    if (gt_path_join(path, sizeof path, dir, "config.json", &e) || gt_config_load(&cfg, path, &e)) {
        printf("INCOMPLETE: %s\n", e.msg);
        return 1;
    }
    print_model(&cfg);
    gt_ckpt_state st;
    gt_dtype wd = GT_BF16;
    if (ckpt && gt_path_join(path, sizeof path, dir, "trainer_state.json", &e) == 0 &&
        ck_state_load(path, &st, NULL, NULL, &wd, &e) == 0) {
        print_state(&st, wd);
        gt_ckpt_state_free(&st);
    }
    print_files(dir);
    print_fp8(dir);
    int bad = ckpt ? gt_checkpoint_validate(dir, &e) : ck_check_weights(dir, &cfg, &e);
    if (bad) {
        printf("INCOMPLETE: %s\n", e.msg);
        return 1;
    }
    int had = 0;
    if (ckpt && !verified && ck_sums_verify(NULL, dir, 0, &had, &e)) {
        printf("%s\n", e.msg); /* PATH: CORRUPT: ... */
        return 1;
    }
    const char *what = ckpt ? " (resumable; loads in transformers as it is)" : " (every tensor present with its shape)";
    const char *sums = !ckpt ? "" : verified == 1 || had ? "; every file matches its checksum"
                                                    : "; no " CK_SUMS_FILE " (saved by an older gemmatron): content not verified";
    printf("complete%s%s\n", what, sums);
    return 0;
}

/* A run directory: the run summary, its checkpoints, `latest`, and the one a resume would take. */
static int inspect_run_dir(const char *dir, const long long *steps, int n) {
    char name[64], path[GT_CKPT_PATH];
    gt_err e;
    gt_run_summary sum; /* its load lists the steps as the caller did, so it fails only as that did */
    if (gt_run_summary_load(dir, &sum, &e) == 0) {
        gt_run_summary_print(&sum, dir, stdout);
        printf("\n");
    }
    printf("run directory: %s\n", dir);
    if (sum.latest[0])
        printf("latest -> %s\n", sum.latest);
    else
        printf("latest: none\n");
    gt_run_summary_free(&sum);
    for (int i = 0; i < n; i++) {
        ck_dir_name(name, sizeof name, steps[i]);
        gt_path_join(path, sizeof path, dir, name, NULL);
        int had = 0, bad = gt_checkpoint_validate(path, &e) || ck_sums_verify(NULL, path, 0, &had, &e);
        printf("  %s  %s%s%s\n", name, bad ? "NOT USABLE: " : "complete", bad ? e.msg : "",
               bad || had ? "" : " (no checksums: saved by an older gemmatron)");
    }
    int unverified;
    int found = gt_checkpoint_find_verified(NULL, dir, path, sizeof path, NULL, &unverified, &e);
    if (found <= 0) {
        printf("resume: %s\n", found == 0 ? "nothing to resume from" : e.msg);
        return 1;
    }
    printf("resume would take: %s\n\n", path);
    return inspect_model_dir(path, unverified ? 2 : 1);
}

typedef struct {
    const char *dir;
} inspect_args;

static const gt_opt inspect_opts[] = {
    {.name = "DIR", .kind = GT_OPT_OPERAND, .offset = offsetof(inspect_args, dir), .required = 1,
     .help = "a checkpoint, an HF model directory or a run directory"},
};

const gt_cli_cmd gt_inspect_cli = {
    .name = "inspect",
    .summary = "summary of a checkpoint, HF model or run directory, and whether it is complete",
    .about = "Prints the model, the training state, the files, the FP8 state and whether every tensor is "
             "there; for a run directory first the run summary (steps, tokens, training time, best eval loss "
             "and its step, checkpoints kept, the final model, the command that resumes the run; from "
             "metrics.h5, the checkpoints and config.yaml, so also of a killed run), then its checkpoints, "
             "which one `latest` names and which one a resume would take. Exit status 0 when DIR is complete and usable, 1 when it is not (the reason is printed).",
    .examples = "gemmatron inspect runs/tiny-cpu\n"
                "gemmatron inspect runs/tiny-cpu/final",
    GT_CLI_OPTS(inspect_opts),
};

int gt_cmd_inspect(int argc, char **argv) {
    inspect_args a = {0};
    int code = gt_cli_args(&gt_inspect_cli, argc, argv, &a);
    if (code != GT_CLI_GO) return code;
    const char *dir = a.dir;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "gemmatron: %s: not a directory\n", dir);
        return 1;
    }
    long long *steps;
    int n;
    gt_err e;
    if (ck_list_steps(dir, &steps, &n, &e)) {
        fprintf(stderr, "gemmatron: %s\n", e.msg);
        return 1;
    }
    /* a run directory holds what train writes first (config.yaml, metrics.h5) or a checkpoint */
    int run = n > 0 || gt_file_exists(dir, "latest") || gt_file_exists(dir, "metrics.h5") ||
              gt_file_exists(dir, "config.yaml");
    int rc = run ? inspect_run_dir(dir, steps, n) : inspect_model_dir(dir, 0);
    free(steps);
    return rc;
}
