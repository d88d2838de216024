/* The files of a checkpoint or export directory that make it an HF model directory
 * (config.json, generation_config.json, model.safetensors.index.json), and the creation of its
 * safetensors files at their final size with their headers, ready for every writer's pwrite(). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ckpt_internal.h"

/* The transformers release whose generation_config.json format is written (as model/config_save.c). */
#define GT_GEN_TRANSFORMERS_VERSION "4.57.1"

static json_t *token(int id) { return id < 0 ? json_null() : json_integer(id); }

static int write_json(const char *dir, const char *name, json_t *o, gt_err *err) {
    char path[GT_CKPT_PATH];
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    GT_ASSERT(text, "jansson: json_dumps failed");
    int rc = gt_path_join(path, sizeof path, dir, name, err);
    if (rc == 0) rc = gt_write_text(path, text, err);
    free(text);
    return rc;
}

static json_t *generation_config(const gt_config *cfg) {
    json_t *o = json_object();
    GT_ASSERT(o, "jansson: out of memory");
    json_object_set_new(o, "_from_model_config", json_true());
    json_object_set_new(o, "bos_token_id", token(cfg->bos_token_id));
    json_object_set_new(o, "eos_token_id", token(cfg->eos_token_id));
    json_object_set_new(o, "pad_token_id", token(cfg->pad_token_id));
    json_object_set_new(o, "transformers_version", json_string(GT_GEN_TRANSFORMERS_VERSION));
    return o;
}

int ck_write_hf_files(const gt_config *cfg, gt_dtype wdtype, const ck_catalog *c, const char *dir, gt_err *err) {
    gt_config out = *cfg;
    out.dtype = wdtype; /* config.json says what the weights are stored in */
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, "config.json", err) || gt_config_save(&out, path, err)) return -1;
    if (write_json(dir, "generation_config.json", generation_config(cfg), err)) return -1;
    char *index = ck_index_json(c);
    if (!index) return 0;
    int rc = gt_path_join(path, sizeof path, dir, "model.safetensors.index.json", err);
    if (rc == 0) rc = gt_write_text(path, index, err);
    free(index);
    return rc;
}

static int create_one(const ck_file *f, const char *path, gt_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return gt_fail(err, "%s: cannot create: %s", path, strerror(errno));
    int rc = gt_pwrite_all(fd, f->header, f->hbytes, 0, path, err);
    /* The data region is sized now (a sparse file until the writers fill it). */
    if (rc == 0 && ftruncate(fd, (off_t)f->size) != 0)
        rc = gt_fail(err, "%s: cannot size to %llu bytes: %s", path, (unsigned long long)f->size, strerror(errno));
    if (rc == 0 && fsync(fd) != 0) rc = gt_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0) rc = gt_fail(err, "%s: close failed: %s", path, strerror(errno));
    return rc;
}

int ck_create_files(const ck_catalog *c, const char *dir, gt_err *err) {
    char path[GT_CKPT_PATH];
    for (int f = 0; f < c->nfiles; f++)
        if (gt_path_join(path, sizeof path, dir, c->files[f].name, err) || create_one(&c->files[f], path, err)) return -1;
    return 0;
}

int ck_open_files(const ck_catalog *c, const char *dir, int *fds, gt_err *err) {
    char path[GT_CKPT_PATH];
    for (int f = 0; f < c->nfiles; f++) fds[f] = -1;
    for (int f = 0; f < c->nfiles; f++) {
        if (gt_path_join(path, sizeof path, dir, c->files[f].name, err)) break;
        fds[f] = open(path, O_WRONLY | O_CLOEXEC);
        if (fds[f] >= 0) continue;
        gt_fail(err, "%s: cannot open for writing: %s", path, strerror(errno));
        break;
    }
    if (c->nfiles == 0 || fds[c->nfiles - 1] >= 0) return 0;
    for (int f = 0; f < c->nfiles; f++) {
        if (fds[f] >= 0) close(fds[f]);
        fds[f] = -1;
    }
    return -1;
}

int ck_close_files(const ck_catalog *c, const char *dir, int *fds, gt_err *err) {
    int rc = 0;
    for (int f = 0; f < c->nfiles; f++) {
        if (fds[f] < 0) continue;
        /* Each writer flushes its own writes: on a shared file system only it can. */
        if (fsync(fds[f]) != 0 && rc == 0)
            rc = gt_fail(err, "%s/%s: fsync failed: %s", dir, c->files[f].name,
                         errno == ENOSPC ? "no space left on the device (disk full)" : strerror(errno));
        if (close(fds[f]) != 0 && rc == 0)
            rc = gt_fail(err, "%s/%s: close failed: %s", dir, c->files[f].name, strerror(errno));
        fds[f] = -1;
    }
    return rc;
}
