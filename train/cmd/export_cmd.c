/* gemmatron export --checkpoint DIR --out HF_DIR [--dtype bf16|fp32] [--max-shard-size SIZE] [--weights-only]
 *
 * Writes a plain HF model directory (config.json, generation_config.json, model.safetensors, or
 * model-0000i-of-0000n.safetensors + index above SIZE, default 5GB, as HF) that transformers'
 * from_pretrained loads as it is. DIR is a gemmatron checkpoint, whose FP32 master weights
 * (optimizer.safetensors) are the source, or any HF Gemma directory, whose weights are. The dtype
 * defaults to that of DIR's weights. A checkpoint must be complete and match its checksums.json;
 * --weights-only takes a checkpoint's model weights instead (and says so). One process, streaming: one bounded chunk of rows in memory
 * at a time. HF_DIR must not exist; the export is written to HF_DIR.tmp and renamed when complete. */
#include "export_cmd.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/fs.h"
#include "../../model/safetensors.h"
#include "../ckpt/ckpt_internal.h"
#include "cli.h"

#define CHUNK_ELEMS ((size_t)1 << 22)

typedef struct {
    const char *src, *out;
    int dtype;            /* -1: the source's */
    uint64_t shard_bytes; /* 0: default */
    int weights_only;     /* a checkpoint's model weights instead of its FP32 masters */
} export_args;

static int parse_dtype(const char *s, gt_dtype *out) {
    if (!strcasecmp(s, "bf16") || !strcasecmp(s, "bfloat16")) *out = GT_BF16;
    else if (!strcasecmp(s, "fp32") || !strcasecmp(s, "f32") || !strcasecmp(s, "float32")) *out = GT_F32;
    else return -1;
    return 0;
}

/* "5GB", "500MB", "64KB" (powers of 1000, as HF's max_shard_size), "2GiB", or plain bytes. */
static int parse_size(const char *s, uint64_t *out) {
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},           {"B", 1},          {"KB", 1000},       {"MB", 1000000},
                 {"GB", 1000000000}, {"KiB", 1 << 10}, {"MiB", 1 << 20},   {"GiB", 1 << 30}};
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].unit)) continue;
        double bytes = v * (double)units[i].mul;
        if (bytes < 1 || bytes > 1e18) return -1;
        *out = (uint64_t)bytes;
        return 0;
    }
    return -1;
}

static int opt_dtype(const char *v, void *field) {
    gt_dtype dt;
    if (parse_dtype(v, &dt)) return -1;
    *(int *)field = (int)dt;
    return 0;
}

static int opt_size(const char *v, void *field) { return parse_size(v, field); }

static const gt_opt export_opts[] = {
    {.name = "--checkpoint", .kind = GT_OPT_STRING, .offset = offsetof(export_args, src), .meta = "DIR", .required = 1,
     .help = "a gemmatron checkpoint (its FP32 master weights are the source) or any HF Gemma directory"},
    {.name = "--out", .kind = GT_OPT_STRING, .offset = offsetof(export_args, out), .meta = "HF_DIR", .required = 1,
     .help = "the HF model directory to write; it must not exist (written to HF_DIR.tmp, renamed when complete)"},
    {.name = "--dtype", .kind = GT_OPT_CUSTOM, .offset = offsetof(export_args, dtype), .meta = "bf16|fp32",
     .def_help = "the dtype of DIR's weights", .parse = opt_dtype, .expect = "bf16 or fp32",
     .help = "dtype of the exported weights"},
    {.name = "--max-shard-size", .kind = GT_OPT_CUSTOM, .offset = offsetof(export_args, shard_bytes), .meta = "SIZE",
     .def_help = "5GB", .parse = opt_size, .expect = "a size such as 5GB, 500MB or 100000",
     .help = "above it the weights are split into model-0000i-of-0000n.safetensors files and an index, as HF "
             "does (KB, MB, GB: powers of 1000; KiB, MiB, GiB; or bytes)"},
    {.name = "--weights-only", .kind = GT_OPT_FLAG, .offset = offsetof(export_args, weights_only), .flag = 1,
     .help = "exports a checkpoint's model safetensors weights (BF16 unless checkpoint.dtype was fp32) instead of its "
             "FP32 master weights, so that a checkpoint without a usable optimizer.safetensors can be exported; "
             "without it an incomplete or corrupt checkpoint is refused"},
};

const gt_cli_cmd gt_export_cli = {
    .name = "export",
    .summary = "a checkpoint (or HF directory) as a plain HF model directory for transformers",
    .about = "Writes config.json, generation_config.json and the safetensors weights that transformers' "
             "from_pretrained loads as they are. One process, streaming: one bounded chunk of rows in memory "
             "at a time.",
    .examples = "gemmatron export --checkpoint runs/tiny-cpu/checkpoint-000200 --out tiny-hf\n"
                "gemmatron export --checkpoint runs/tiny-cpu/checkpoint-000200 --out tiny-hf --weights-only\n"
                "gemmatron export --checkpoint runs/gemma/checkpoint-001000 --out gemma-ft --dtype bf16 "
                "--max-shard-size 2GB",
    GT_CLI_OPTS(export_opts),
};

/* The source tensors: a checkpoint's master weights, else an HF directory's weights. */
typedef struct {
    gt_st st;
    const char *suffix; /* ".master" or "" */
    gt_dtype dtype;     /* of the source's weights (BF16 or F32 for the default output dtype) */
} source;

/* A checkpoint's FP32 master weights: only from a complete checkpoint whose content matches its
 * checksums. */
static int open_masters(source *s, const char *dir, gt_err *err) {
    char path[GT_CKPT_PATH], tsp[GT_CKPT_PATH];
    gt_err e;
    int had;
    if (gt_checkpoint_validate(dir, &e))
        return gt_fail(err, "%s is an incomplete checkpoint, not exported: %s (--weights-only exports the weights of "
                            "its model safetensors instead of the FP32 master weights)", dir, e.msg);
    if (ck_sums_verify(NULL, dir, 0, &had, err)) return -1;
    if (!had) printf("note: %s has no %s (saved by an older gemmatron): its content is not verified\n", dir, CK_SUMS_FILE);
    gt_ckpt_state st;
    gt_dtype wd = GT_BF16;
    if (gt_path_join(tsp, sizeof tsp, dir, "trainer_state.json", err) || ck_state_load(tsp, &st, NULL, NULL, &wd, err))
        return -1;
    gt_ckpt_state_free(&st);
    if (gt_path_join(path, sizeof path, dir, "optimizer.safetensors", err) || gt_st_open(&s->st, path, err)) return -1;
    s->suffix = ".master";
    s->dtype = wd;
    return 0;
}

static int open_source(source *s, const char *dir, const gt_config *cfg, int weights_only, gt_err *err) {
    int ckpt = gt_file_exists(dir, "trainer_state.json") || gt_file_exists(dir, "optimizer.safetensors");
    if (ckpt && !weights_only) return open_masters(s, dir, err);
    s->suffix = "";
    s->dtype = cfg->dtype == GT_BF16 ? GT_BF16 : GT_F32;
    if (ckpt) {
        int had;
        if (ck_sums_verify(NULL, dir, 1, &had, err)) return -1;
        printf("export: --weights-only: from the %s weights of %s's model safetensors, not its FP32 master weights%s\n",
               gt_dtype_name(s->dtype), dir, had ? "" : " (no checksums: saved by an older gemmatron, not verified)");
    }
    return gt_st_open(&s->st, dir, err);
}

static void encode(const float *x, size_t n, gt_dtype dt, void *out) {
    if (dt == GT_F32) {
        memcpy(out, x, n * sizeof *x);
        return;
    }
    uint16_t *h = out;
    for (size_t i = 0; i < n; i++) h[i] = gt_f32_to_bf16(x[i]);
}

/* Copies tensor i of the catalog from the source, chunk by chunk of whole rows. */
static int copy_tensor(const source *s, const ck_catalog *c, int i, const int *fds, const char *dir, float *f32,
                       void *raw, gt_err *err) {
    char name[CK_NAME_LEN + 16];
    snprintf(name, sizeof name, "%s%s", c->tname[i], s->suffix);
    int64_t shape[2] = {c->ndim[i] == 1 ? c->cols[i] : c->rows[i], c->cols[i]};
    const gt_st_tensor *t;
    if (gt_st_expect(&s->st, name, c->ndim[i], shape, &t, err)) return -1;
    const ck_entry *e = ck_entry_of(c, CK_WEIGHT, i);
    size_t es = gt_dtype_size(e->dtype);
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, c->files[e->file].name, err)) return -1;
    int64_t cols = c->cols[i], step = (int64_t)(CHUNK_ELEMS / (size_t)cols);
    if (step < 1) step = 1;
    for (int64_t r = 0; r < c->rows[i]; r += step) {
        int64_t n = c->rows[i] - r < step ? c->rows[i] - r : step;
        if (gt_st_read_f32(&s->st, t, r, n, 0, cols, f32, err)) return -1;
        encode(f32, (size_t)(n * cols), e->dtype, raw);
        if (gt_pwrite_all(fds[e->file], raw, (size_t)(n * cols) * es, e->offset + (uint64_t)(r * cols) * es, path, err))
            return -1;
    }
    return 0;
}

static int write_export(const source *s, const gt_config *cfg, gt_dtype dt, const ck_catalog *c, const char *tmp,
                        gt_err *err) {
    if (mkdir(tmp, 0755) != 0) return gt_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    if (ck_create_files(c, tmp, err)) return -1;
    int *fds = gt_calloc((size_t)c->nfiles, sizeof *fds);
    int rc = ck_open_files(c, tmp, fds, err);
    size_t widest = CHUNK_ELEMS;
    for (int i = 0; i < c->ntensors; i++)
        if ((size_t)c->cols[i] > widest) widest = (size_t)c->cols[i];
    float *f32 = gt_malloc(widest * sizeof *f32);
    void *raw = gt_malloc(widest * sizeof *f32);
    for (int i = 0; rc == 0 && i < c->ntensors; i++) rc = copy_tensor(s, c, i, fds, tmp, f32, raw, err);
    free(raw);
    free(f32);
    gt_err cerr;
    if (ck_close_files(c, tmp, fds, &cerr) && rc == 0) {
        *err = cerr;
        rc = -1;
    }
    free(fds);
    if (rc == 0) rc = ck_write_hf_files(cfg, dt, c, tmp, err);
    if (rc == 0) rc = gt_fsync_dir(tmp, err);
    return rc;
}

static int run_export(const export_args *a, gt_err *err) {
    gt_config cfg;
    char path[GT_CKPT_PATH], tmp[GT_CKPT_PATH];
    struct stat sb;
    if (stat(a->out, &sb) == 0)
        return gt_fail(err, "%s: already exists; export writes a new directory (remove it or choose another)", a->out);
    if (gt_path_join(path, sizeof path, a->src, "config.json", err) || gt_config_load(&cfg, path, err) ||
        gt_config_validate(&cfg, path, err))
        return -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", a->out) >= (int)sizeof tmp) return gt_fail(err, "%s: path too long", a->out);
    source s;
    if (open_source(&s, a->src, &cfg, a->weights_only, err)) return -1;
    gt_dtype dt = a->dtype >= 0 ? (gt_dtype)a->dtype : s.dtype;
    ck_catalog c;
    int rc = ck_catalog_build(&c, &cfg, dt, -1, a->shard_bytes, err);
    if (rc == 0) {
        gt_remove_tree(tmp, NULL);
        rc = write_export(&s, &cfg, dt, &c, tmp, err);
        if (rc == 0 && rename(tmp, a->out) != 0) rc = gt_fail(err, "%s: cannot rename %s into place: %s", a->out, tmp, strerror(errno));
        if (rc) gt_remove_tree(tmp, NULL);
        else printf("exported %s (%d tensors, %s, %d file%s) to %s\n", a->src, c.ntensors, gt_dtype_name(dt),
               c.model_files, c.model_files > 1 ? "s" : "", a->out);
        ck_catalog_free(&c);
    }
    gt_st_close(&s.st);
    return rc;
}

int gt_cmd_export(int argc, char **argv) {
    export_args a = {NULL, NULL, -1, 0, 0};
    gt_err err;
    int code = gt_cli_args(&gt_export_cli, argc, argv, &a);
    if (code != GT_CLI_GO) return code;
    if (run_export(&a, &err)) {
        fprintf(stderr, "gemmatron: %s\n", err.msg);
        return 1;
    }
    return 0;
}
