/* Writing the trained model as an HF checkpoint directory (config.json + model.safetensors) that
 * `gemmatron eval` and transformers' from_pretrained load as they are. One tensor is held in host
 * memory at a time: the safetensors header is written first, then each tensor at its offset. */
#include "export_hf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../model/safetensors.h"

#define MAX_TENSORS 4096

/* The HF tensors of the model, each once, in layout order. */
static int tensor_list(const gt_model *m, gt_st_entry *e, gt_dtype dtype) {
    int np, n = 0;
    gt_piece *pieces = gt_layout_pieces(&m->lay, &m->cfg, &np);
    for (int i = 0; i < np; i++) {
        int seen = 0;
        for (int j = 0; j < n && !seen; j++) seen = !strcmp(e[j].name, pieces[i].name);
        if (seen) continue;
        GT_ASSERT(n < MAX_TENSORS, "more than %d tensors", MAX_TENSORS);
        size_t len = strlen(pieces[i].name) + 1;
        char *name = gt_malloc(len);
        memcpy(name, pieces[i].name, len);
        int64_t rows, cols;
        int ndim;
        GT_ASSERT(!gt_hf_tensor_dims(&m->cfg, name, &rows, &cols, &ndim), "no HF shape for %s", name);
        e[n] = (gt_st_entry){name, dtype, ndim, {0}, NULL};
        e[n].shape[0] = ndim == 1 ? cols : rows;
        e[n].shape[1] = cols;
        n++;
    }
    free(pieces);
    return n;
}

static void encode(const float *x, size_t n, gt_dtype dtype, void *out) {
    if (dtype == GT_F32) {
        memcpy(out, x, n * sizeof(float));
        return;
    }
    uint16_t *h = out;
    for (size_t i = 0; i < n; i++) h[i] = dtype == GT_BF16 ? gt_f32_to_bf16(x[i]) : gt_f32_to_f16(x[i]);
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off, const char *path, gt_err *err) {
    const char *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return gt_fail(err, "%s: write failed: %s", path, strerror(errno));
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int write_tensors(const gt_model *m, int fd, const gt_st_entry *e, int n, const uint64_t *off,
                         const char *path, gt_err *err) {
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t rows, cols;
        int ndim;
        gt_hf_tensor_dims(&m->cfg, e[i].name, &rows, &cols, &ndim);
        size_t count = (size_t)(rows * cols);
        float *full = gt_malloc(count * sizeof(float));
        void *bytes = gt_malloc(count * gt_dtype_size(e[i].dtype));
        gt_model_export_tensor(m, 0, e[i].name, full);
        encode(full, count, e[i].dtype, bytes);
        rc = pwrite_all(fd, bytes, count * gt_dtype_size(e[i].dtype), off[i], path, err);
        free(bytes);
        free(full);
    }
    return rc;
}

static int write_safetensors(const gt_model *m, const char *path, gt_err *err) {
    gt_dtype dtype = m->cfg.dtype == GT_BF16 || m->cfg.dtype == GT_F16 ? m->cfg.dtype : GT_F32;
    gt_st_entry *e = gt_calloc(MAX_TENSORS, sizeof *e);
    uint64_t *off = gt_calloc(MAX_TENSORS, sizeof *off);
    int n = tensor_list(m, e, dtype);
    void *header = NULL;
    size_t hbytes = 0;
    uint64_t total = 0;
    int rc = gt_st_header(path, e, n, &header, &hbytes, off, &total, err);
    int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rc == 0 && fd < 0) rc = gt_fail(err, "%s: cannot create: %s", path, strerror(errno));
    if (rc == 0) rc = pwrite_all(fd, header, hbytes, 0, path, err);
    if (rc == 0) rc = write_tensors(m, fd, e, n, off, path, err);
    if (rc == 0 && fsync(fd) != 0) rc = gt_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = gt_fail(err, "%s: close failed: %s", path, strerror(errno));
    for (int i = 0; i < n; i++) free((char *)e[i].name);
    free(header);
    free(off);
    free(e);
    return rc;
}

/* Removes dir and the files this writer puts in it (nothing else is expected there). */
static void remove_export(const char *dir) {
    static const char *files[] = {"config.json", "model.safetensors", "config.json.tmp"};
    char p[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

int gt_export_hf(const gt_model *m, const char *dir, gt_err *err) {
    if (m->lay.tp_size != 1) {
        return gt_fail(err, "%s: writing a tensor-parallel model (tp=%d) is left to the checkpoint "
                            "writer; this one writes tp=1 models",
                       dir, m->lay.tp_size);
    }
    char tmp[4096], old[4096], st[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", dir) >= (int)sizeof tmp ||
        snprintf(old, sizeof old, "%s.old", dir) >= (int)sizeof old) {
        return gt_fail(err, "%s: path too long", dir);
    }
    remove_export(tmp);
    if (mkdir(tmp, 0755) != 0) return gt_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    snprintf(st, sizeof st, "%s/model.safetensors", tmp);
    int rc = gt_config_save(&m->cfg, tmp, err);
    if (rc == 0) rc = write_safetensors(m, st, err);
    /* The complete new directory replaces the old one; a crash before this leaves the old one. */
    remove_export(old);
    if (rc == 0 && access(dir, F_OK) == 0 && rename(dir, old) != 0) {
        rc = gt_fail(err, "%s: cannot move the previous export aside: %s", dir, strerror(errno));
    }
    if (rc == 0 && rename(tmp, dir) != 0) rc = gt_fail(err, "%s: cannot rename %s into place: %s", dir, tmp, strerror(errno));
    if (rc != 0) remove_export(tmp);
    remove_export(old);
    return rc;
}
